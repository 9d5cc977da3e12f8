"""What the command line refuses (sweeper/refusals.py), each with one line on stderr, exit status 2,
no traceback and nothing written (the run happens in an empty directory that must stay empty)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweeper.errors import Refused, Unfinished, refuse, said
from sweeper.sweep.jobs import NotASweep
from tests.conftest import ROOT, refused, run_cli



@pytest.mark.parametrize("args, line", [
    (["task=linear", "epochs=5"],
     "error: epochs=5 does not apply to this job (task=linear optimizer=gd take lr, steps): remove it"),
    (["optimizer=gd", "momentum=0.5"],
     "error: momentum=0.5 does not apply to this job (task=linear optimizer=gd take lr, steps): remove it"),
    (["task=softmax", "steps=5"],
     "error: steps=5 does not apply to this job (task=softmax optimizer=gd take lr, batch_size, epochs, seed): "
     "remove it"),
    (["-m", "gpus=1,2,4"],
     "error: gpus applies to none of the 3 jobs (task=linear optimizer=gd take lr, steps): remove it"),
])
def test_a_hyperparameter_that_applies_to_no_job(tmp_path, args, line):
    assert refused(tmp_path, *args) == line


@pytest.mark.slow
def test_a_hyperparameter_that_applies_to_some_jobs_is_said_once(tmp_path):
    result = run_cli(str(ROOT / "run.py"), "-m", "optimizer=gd,momentum", "momentum=0.8", "steps=5",
                     "logging.tensorboard=false", f"hydra.sweep.dir={tmp_path}/sweep", timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    notes = [line for line in result.stderr.splitlines() if "momentum" in line]
    assert notes == ["note: applies to some jobs only: momentum (task=linear optimizer=gd take lr, steps)"]
    assert len(list((tmp_path / "sweep").glob("*/result.json"))) == 2


@pytest.mark.parametrize("args, line", [
    (["task=cnn", "nodes=2"],
     "error: nodes=2 trains one job over several Slurm tasks: it runs only on the Slurm launcher "
     "(python run.py -m hydra/launcher=slurm ...)"),
    (["-m", "task=cnn", "nodes=2", "hydra/launcher=local"],
     "error: nodes=2 trains one job over several Slurm tasks: it runs only on the Slurm launcher "
     "(python run.py -m hydra/launcher=slurm ...)"),
    (["-m", "task=cnn", "nodes=2", "hydra/launcher=slurm", "hydra.launcher.jobs_per_task=4"],
     "error: nodes=2: a job over several workers has its Slurm job to itself, it cannot be packed with others "
     "(packing=none, or hydra.launcher.jobs_per_task=1)"),
    (["-m", "task=linear", "hydra/launcher=slurm", "hydra.launcher.tasks_per_node=2"],
     "error: hydra.launcher.tasks_per_node=2: task=linear trains in one process; task=cnn trains over several "
     "workers"),
    (["-m", "task=softmax", "nodes=2", "hydra/launcher=slurm"],
     "error: nodes=2: task=softmax trains in one process; task=cnn trains over several workers"),
    (["-m", "hparams_search=ex2_optuna", "task=cnn", "nodes=2", "hydra/launcher=slurm"],
     "error: nodes=2: a search's trials report every epoch to be pruned, which a job over several workers does "
     "not do; search on one node, then train the best on several (nodes=2 without the search)"),
    (["-m", "task=cnn", "nodes=0", "hydra/launcher=slurm"],
     "error: nodes=0 is invalid: nodes must be an integer > 0 (e.g. nodes=2)"),
])
def test_a_job_over_several_workers_where_it_cannot_run(tmp_path, args, line):
    """In process, on the local launcher, packed with others (a fused group forms only there), or
    with a task that trains in one process: one line before anything runs."""
    assert refused(tmp_path, *args) == line


def test_a_preset_value_the_user_did_not_give_is_not_refused(compose_cfg):
    from sweeper.refusals import not_applying

    cfg = compose_cfg("experiment=ex4_gpus", "gpus=2")
    assert not_applying(cfg, ["experiment=ex4_gpus", "gpus=2"]) == []
    assert not_applying(compose_cfg("task=linear"), ["task=linear"]) == []


@pytest.mark.parametrize("arg, line", [
    ("learning_rate=0.1", "error: learning_rate is not a key of the config: did you mean lr=0.1?"),
    ("optimiser=adam", "error: optimiser is not a key of the config: did you mean optimizer=adam?"),
    ("bata1=0.9", "error: bata1 is not a key of the config: did you mean beta1=0.9?"),
    ("hparam_search=ex1_optuna", "error: hparam_search is not a key of the config: did you mean "
                                 "hparams_search=ex1_optuna?"),
])
def test_a_misspelt_key_gets_the_nearest_one(tmp_path, arg, line):
    assert refused(tmp_path, arg) == line
    assert refused(tmp_path, "-m", arg) == line


@pytest.mark.parametrize("preset, jobs", [("ex1_adam", 64), ("ex4_gpus", 3)])
def test_a_grid_preset_without_multirun(tmp_path, preset, jobs):
    assert refused(tmp_path, f"experiment={preset}") == (
        f"error: experiment={preset} is a grid of {jobs} jobs: add -m (python run.py -m experiment={preset})")


def test_a_nested_key_that_bypasses_a_hyperparameter(tmp_path):
    line = "error: optimizer.learning_rate=0.5 bypasses lr: set lr=0.5 instead"
    assert refused(tmp_path, "optimizer.learning_rate=0.5") == line
    assert refused(tmp_path, "-m", "optimizer.learning_rate=0.5,0.1") == line
    assert refused(tmp_path, "optimizer=adam", "optimizer.beta_1=0.8") == (
        "error: optimizer.beta_1=0.8 bypasses beta1: set beta1=0.8 instead")
    assert refused(tmp_path, "task.run.steps=5") == "error: task.run.steps=5 bypasses steps: set steps=5 instead"


def test_a_nested_key_that_is_no_hyperparameter_is_left_alone(compose_cfg):
    from sweeper.refusals import check_bypass

    check_bypass(compose_cfg("optimizer._target_=keras.optimizers.SGD"), ["optimizer._target_=keras.optimizers.SGD"])


def test_a_search_space_on_the_grid_sweeper(tmp_path):
    assert refused(tmp_path, "-m", "lr=interval(0.01,0.1)") == (
        "error: lr=interval(0.01,0.1) is a search space, which a grid cannot list: use a search preset "
        "(hparams_search=ex1_optuna, ex2_optuna, ex3_40epochs_asha) or a list of values (lr=0.01,0.1)")


def test_a_bad_value_leaves_no_run_directory(tmp_path):
    assert refused(tmp_path, "lr=-1") == "error: lr=-1 is invalid: lr must be a number > 0 (e.g. lr=0.01)"


def test_a_refused_run_keeps_a_directory_that_held_something(tmp_path):
    work, old = tmp_path / "work", tmp_path / "old"
    work.mkdir()
    old.mkdir()
    (old / "notes.txt").write_text("mine")
    refused(work, "lr=-1", f"hydra.run.dir={old}")
    assert [p.name for p in old.iterdir()] == ["notes.txt"]


def test_a_grid_preset_whose_grid_the_command_line_fixes_is_one_job(compose_cfg):
    from sweeper.refusals import grid_size

    assert grid_size(compose_cfg("experiment=ex4_gpus")) == 3
    assert grid_size(compose_cfg("experiment=ex4_gpus", "gpus=2")) == 1
    assert grid_size(compose_cfg("optimizer=adam")) == 1


@pytest.mark.parametrize("args, line", [
    (["data.trian_samples=100"], "error: data.trian_samples is not a key of the config: did you mean "
                                 "data.train_samples=100?"),
    (["logging.tensorbord=false"], "error: logging.tensorbord is not a key of the config: did you mean "
                                   "logging.tensorboard=false?"),
    (["loging.tensorboard=false"], "error: loging.tensorboard is not a key of the config: did you mean "
                                   "logging.tensorboard=false?"),  # the node misspelt: the key kept
    (["task=cnn", "task.run.dropuot=0.1"], "error: task.run.dropuot is not a key of the config: did you mean "
                                           "+task.run.dropout=0.1?"),  # an argument of the task's function
    (["task=cnn", "task.run.zzzz=1"], "error: task.run.zzzz is not a key of the config: the keys of task.run are "
                                      "batch_size, data, devices, epochs, gpus, logging, nodes, seed"),  # cnn's, not linear's steps
    (["+data.trian_samples=100"], "error: +data.trian_samples=100: tasks.mnist.load takes no argument "
                                  "'trian_samples': did you mean data.train_samples=100?"),
    (["task=cnn", "+task.run.foo=1"], "error: +task.run.foo=1: tasks.cnn.run takes no argument 'foo': it takes "
                                      "data, batch_size, epochs, seed, gpus, devices, nodes, logging, dropout"),
    (["task=cnn", "+task.run.dropuot=0"], "error: +task.run.dropuot=0: tasks.cnn.run takes no argument 'dropuot': "
                                          "did you mean +task.run.dropout=0?"),
    (["task=cnn", "+task.run.progress=x"], "error: +task.run.progress=x: tasks.cnn.run takes no argument "
                                           "'progress': it takes data, batch_size, epochs, seed, gpus, devices, nodes, "
                                           "logging, dropout"),  # the framework gives it, never the config
    (["logging.tensorboard=maybe"], "error: logging.tensorboard='maybe' is invalid: logging.tensorboard must be "
                                    "true or false (e.g. logging.tensorboard=false)"),
])
def test_a_misspelt_or_added_nested_key_is_one_line(tmp_path, args, line):
    """Hydra's advice (`+data.trian_samples=100`) is refused too, before anything runs, with or without -m."""
    assert refused(tmp_path, *args) == line
    assert refused(tmp_path, "-m", *args, "seed=1,2") == line


@pytest.mark.parametrize("args, line", [
    (["data.train_samples=abc"], "error: data.train_samples='abc' is invalid: data.train_samples must be an integer > 0 "
                                 "or null (all) (e.g. data.train_samples=1000)"),
    (["lr=fast"], "error: lr='fast' is invalid: lr must be a number > 0 (e.g. lr=0.01)"),
    (["task=cnn", "epochs=1.5"], "error: epochs=1.5 is invalid: epochs must be an integer > 0 (e.g. epochs=1)"),
    (["task=cnn", "batch_size='32'"], "error: batch_size='32' is invalid: batch_size must be an integer > 0 (e.g. batch_size=1)"),
    (["data.dir=3"], "error: data.dir=3 is invalid: data.dir must be a string or null"),
    (["task.direction=up"], "error: task.direction='up' is invalid: task.direction must be minimize or maximize"),
    (["task=cnn", "+task.run.dropout=abc"], "error: task.run.dropout='abc' is invalid: task.run.dropout must be a number"),
])
def test_a_value_of_the_wrong_type_is_one_line(tmp_path, args, line):
    """Every node is typed (sweeper/schema.py): the key, the value and the type, before anything
    runs, with or without -m, whichever launcher."""
    assert refused(tmp_path, *args) == line
    assert refused(tmp_path, "-m", *args, "seed=1,2") == line


@pytest.mark.parametrize("args", [["hydra/launcher=slurm", "seed=1,2"], ["packing=small_jobs", "hydra/launcher=slurm",
                                                                       "seed=1,2"],
                                  ["hparams_search=ex1_optuna"]], ids=" ".join)
def test_a_value_of_the_wrong_type_is_refused_whichever_launcher_or_sweeper(tmp_path, args):
    """Before Slurm is asked, and before a search writes its study's journal."""
    assert refused(tmp_path, "-m", *args, "data.dir=3") == "error: data.dir=3 is invalid: data.dir must be a string or null"


def test_a_new_tasks_file_with_its_own_keys_runs_and_its_arguments_are_typed(tmp_path):
    """A new task is a YAML file (here beside the project's, through Hydra's search path) with keys
    beyond the schema; its `run` node is typed by its function (tasks.linear.run: steps: int)."""
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "mine.yaml").write_text(
        "# @package _global_\n"
        "task:\n  name: mine\n  objective: final_loss\n  direction: minimize\n"
        "  notes: a key of this task only\n"
        "  run:\n    _target_: tasks.linear.run\n    steps: 7\n")
    work = tmp_path / "work"
    work.mkdir()
    search_path = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    assert refused(work, search_path, "task=mine", "task.run.steps=abc") == (
        "error: task.run.steps='abc' is invalid: task.run.steps must be an integer")
    result = run_cli(str(ROOT / "run.py"), search_path, "task=mine", f"hydra.run.dir={tmp_path / 'run'}",
                     "logging.tensorboard=false", cwd=work, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "ok"


def test_an_argument_the_task_takes_may_be_added(compose_cfg):
    from sweeper.refusals import check_additions

    check_additions(compose_cfg("task=cnn", "+task.run.dropout=0"), ["task=cnn", "+task.run.dropout=0"])
    check_additions(compose_cfg("task=softmax", "++data.train_samples=10"), ["++data.train_samples=10"])


def test_a_refusal_is_said_once_where_the_command_started(capsys):
    """Library code raises; the innermost entry (a job's, inside the sweep's) says it, once."""
    with pytest.raises(Refused) as stop:
        with said():
            with said():
                refuse("lr must be a number: write lr=0.1")
    assert capsys.readouterr().err == "error: lr must be a number: write lr=0.1\n"
    assert stop.value.code == 2


def test_a_reader_s_bad_input_refuses_the_command_and_unfinished_jobs_exit_1(capsys):
    """A BadInput (a folder that is no sweep, a damaged job list) reaching an entry refuses the
    command with its line; a sweep's unfinished jobs stop it with exit status 1, said the same way."""
    with pytest.raises(Refused) as stop:
        with said():
            with said():
                raise NotASweep("/tmp/x holds no sweep: give a sweep directory")
    assert capsys.readouterr().err == "error: /tmp/x holds no sweep: give a sweep directory\n"
    assert stop.value.code == 2 and stop.value.__suppress_context__
    with pytest.raises(Unfinished) as ended:
        with said():
            raise Unfinished("1 job did not finish: D/1; finish them with: python -m sweeper resume D")
    assert capsys.readouterr() == ("", "error: 1 job did not finish: D/1; finish them with: python -m sweeper resume D\n")
    assert ended.value.code == 1
