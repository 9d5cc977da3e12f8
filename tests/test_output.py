"""What a user reads: no TensorFlow start-up lines, one `[k/N]` line per job under every launcher
and sweeper, a summary, and each job's lines in its run.log. Through the real command line."""
from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from sweeper.job import manifest
from sweeper.training.tf import START_UP_LINES, without_start_up_lines
from tests.conftest import ROOT, checkout_env, records, run_cli, skip_or_fail
from tests.mnist_files import real_mnist_dir

pytestmark = pytest.mark.filterwarnings("ignore")

# Any TensorFlow C++ log line (`I0000 00:00:... file.cc:12] ...`) or absl's notice.
TF_LINE = re.compile(r"^[IWEF]\d{4} \S+ +\d+ \S+:\d+\]|absl::InitializeLog|To enable the following instructions")


def _start_up_lines(*texts: str) -> list[str]:
    """The lines of `texts` that are TensorFlow's start-up lines (START_UP_LINES) or any other line
    of its C++ log (TF_LINE)."""
    return [line for text in texts for line in text.splitlines() if START_UP_LINES.search(line) or TF_LINE.search(line)]


def _err_files(sweep) -> str:
    """The standard error of every submitit task of a sweep (the local and slurm launchers'
    `.submitit/**/*_log.err`)."""
    return "".join(path.read_text() for path in sorted((sweep / ".submitit").rglob("*_log.err")))


def _user_env() -> dict:
    """The environment of a user who set nothing for TensorFlow (conftest sets a log level)."""
    return checkout_env(without_prefix="TF_CPP")


def test_start_up_lines_are_recognised_and_others_kept():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796153922.971310   22459 port.cc:153] oneDNN custom operations are on. You may see\n"
            "I0000 00:00:1796153922.971836   22459 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
            "E0000 00:00:1796153928.761094   22459 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
            "I0000 00:00:1796153923.107143   22459 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
            "to use available CPU instructions in performance-critical operations.\n"
            "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
            "appropriate compiler flags.\n"
            "E0000 00:00:1796153928.761094   22459 other.cc:1] a real error\n"
            "a Python warning\n")
    assert without_start_up_lines(text) == ("E0000 00:00:1796153928.761094   22459 other.cc:1] a real error\n"
                                            "a Python warning\n")
    assert not START_UP_LINES.search("E0000 00:00:1.0 1 x.cc:1] failed call to cuDevice")


def _started_before(tree: ast.AST, node: ast.stmt) -> bool:
    """Whether the function (or module) holding `node` calls import_tensorflow() or import_keras()
    before it (the import then finds TensorFlow started quietly, and names the module for its types)."""
    for body in ast.walk(tree):
        if isinstance(body, (ast.FunctionDef, ast.Module)) and node in body.body:
            return any(isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                       and call.func.id in ("import_tensorflow", "import_keras") and call.lineno < node.lineno
                       for statement in body.body for call in ast.walk(statement))
    return False


def test_tensorflow_and_keras_are_imported_only_through_tf_py():
    """A bare `import keras` before `import_tensorflow` started TensorFlow without its log level and
    outside the catching of its start-up lines: every fused sweep printed them, and its XLA lines."""
    bare = []
    for path in sorted([*(ROOT / "sweeper").rglob("*.py"), *(ROOT / "tasks").rglob("*.py")]):
        if path == ROOT / "sweeper" / "training" / "tf.py":
            continue
        tree = ast.parse(path.read_text())
        type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if id(node) not in type_only and any(n.split(".")[0] in ("keras", "tensorflow") for n in names) \
                    and not _started_before(tree, node):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == [], "import them with sweeper.training.tf's import_tensorflow / import_keras"


@pytest.mark.slow
def test_linear_run_prints_no_tensorflow_start_up_lines(tmp_path):
    out = run_cli("run.py", f"hydra.run.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stderr
    assert "task=linear optimizer=gd -> ok" in out.stdout
    assert out.stderr == ""  # no TensorFlow line, nor any other kind of noise


def _mnist_dir() -> str:
    data = os.environ.get("MNIST_DIR")
    if not data:
        skip_or_fail("MNIST_DIR is not set")
    return data


@pytest.mark.slow
def test_softmax_run_prints_no_tensorflow_start_up_lines(tmp_path):
    data = _mnist_dir()
    out = run_cli("run.py", "task=softmax", f"data.dir={data}", "data.train_samples=500", "data.test_samples=100",
                  f"hydra.run.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stderr
    assert "-> ok test_accuracy=" in out.stdout
    assert out.stderr == ""


@pytest.mark.slow
def test_a_gpu_job_without_a_gpu_still_says_so(tmp_path):
    out = run_cli("run.py", "task=cnn", "gpus=1", f"data.dir={_mnist_dir()}", "data.train_samples=100",
                  "data.test_samples=100", f"hydra.run.dir={tmp_path}", env=_user_env())
    assert out.returncode == 1
    assert out.stdout.splitlines()[0].startswith("task=cnn gpus=1 data.train_samples=100 data.test_samples=100 -> "
                                                 "failed DeviceError: gpus=1 but 0 GPU(s) visible")
    assert out.stdout.splitlines()[1:] == [f"run directory: {tmp_path}"] and out.stderr == ""


JOB_LINE = re.compile(r"^\[(\d+)/(\d+)\] (.*) -> (\w+) (.*) \(\d+\.\d\d s\)$")


def _job_lines(stdout: str) -> list[tuple[int, int, str, str]]:
    return [(int(m[1]), int(m[2]), m[3], m[4]) for m in map(JOB_LINE.match, stdout.splitlines()) if m]


def _timeless(stdout: str) -> list[str]:
    """The lines a command printed, each time it measured written `T`: what is left is exact."""
    return re.sub(r"\d+\.\d+ s\b", "T s", stdout).splitlines()


@pytest.mark.slow
def test_local_launcher_prints_each_job_and_the_summary(tmp_path):
    sweep = tmp_path / "local"
    out = run_cli("run.py", "-m", "hydra/launcher=local", "experiment=ex1_gd", "lr=0.02,0.01", "steps=20",
                  f"hydra.sweep.dir={sweep}", env=_user_env())
    assert out.returncode == 0, out.stderr
    # The jobs run side by side: they end (and are numbered) in either order. No other line: not
    # Hydra's `#k : <overrides>`, nor the preset every job shares.
    jobs = ["lr=0.02 steps=20 -> ok final_loss=0.6177 (T s)", "lr=0.01 steps=20 -> ok final_loss=1.006 (T s)"]
    summary = f"sweep: 2 jobs: 2 ok in T s wall time; collate: python -m sweeper collate {sweep}"
    assert _timeless(out.stdout) in ([f"[1/2] {jobs[0]}", f"[2/2] {jobs[1]}", summary],
                                     [f"[1/2] {jobs[1]}", f"[2/2] {jobs[0]}", summary]), out.stdout


@pytest.mark.slow
def test_optuna_search_prints_each_trial_and_the_summary(tmp_path):
    sweep = tmp_path / "search"
    out = run_cli("run.py", "-m", "hparams_search=ex1_optuna", "hydra.sweeper.n_trials=2", "steps=20",
                  f"hydra.sweep.dir={sweep}", env=_user_env())
    assert out.returncode == 0, out.stderr
    lines = _job_lines(out.stdout)
    assert [(k, n, status) for k, n, _, status in lines] == [(1, 2, "ok"), (2, 2, "ok")], out.stdout
    assert all(label.startswith("lr=") and "hparams_search" not in label for _, _, label, _ in lines)
    assert "sweep: 2 jobs: 2 ok in " in out.stdout and f"collate: python -m sweeper collate {sweep}" in out.stdout
    assert " : lr=" not in out.stdout + out.stderr
    assert "Launching" not in out.stdout + out.stderr  # Hydra's `Launching 1 jobs locally` before each trial
    # Sampled values at 4 significant digits in the line; whole in the record.
    values = [value for _, _, label, _ in lines for value in re.findall(r"(?:lr|beta1|beta2)=(\S+)", label)]
    assert len(values) == 6 and all(len(re.sub(r"^0\.0*|[.-]|e.*$", "", v)) <= 4 for v in values), values
    by_number = records(sweep, by="number")
    assert all(len(o.split("=")[1]) > 8 for o in by_number[0].overrides if o.startswith("lr=")), by_number[0].overrides
    # The best trial (numbered from 0) named with its line (numbered from 1), whose values it repeats.
    best = re.search(r"^best: trial (\d) \(\[(\d)/2\]\): (.*) -> \S+; ", out.stdout, re.M)
    assert best and int(best[2]) == int(best[1]) + 1, out.stdout
    assert lines[int(best[2]) - 1][2].startswith(best[3]), out.stdout


@pytest.mark.slow
def test_in_process_grid_prints_no_hydra_job_lines(tmp_path):
    out = run_cli("run.py", "-m", "lr=0.02,0.01", "steps=20", f"hydra.sweep.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stderr
    # Not Hydra's `#k : <overrides>` nor its time-stamped `Launching 2 jobs locally`: these lines only.
    assert _timeless(out.stdout) == ["[1/2] lr=0.02 steps=20 -> ok final_loss=0.6177 (T s)",
                                     "[2/2] lr=0.01 steps=20 -> ok final_loss=1.006 (T s)",
                                     f"sweep: 2 jobs: 2 ok in T s wall time; collate: python -m sweeper collate {tmp_path}"]
    assert out.stderr == ""


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_launcher_prints_each_job_and_ctrl_c_leaves_the_jobs_running(tmp_path):
    """Job 0 finishes and is printed as `[1/2]`; job 1 waits in its setup line; Ctrl-C then stops
    the waiting, not the jobs, and says how to stop or follow them."""
    sweep, log = tmp_path / "slurm", tmp_path / "stdout.txt"
    command = [sys.executable, "run.py", "-m", "hydra/launcher=slurm", f"hydra.sweep.dir={sweep}", "steps=20,30",
               "hydra.launcher.setup=['test \"$SLURM_ARRAY_TASK_ID\" != 1 || sleep 300']"]
    with open(log, "w") as stdout:
        sweep_run = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                     env=_user_env())
    try:
        deadline = time.monotonic() + 120
        while "[1/2]" not in log.read_text():
            assert time.monotonic() < deadline and sweep_run.poll() is None, log.read_text()
            time.sleep(0.5)
        sweep_run.send_signal(signal.SIGINT)
        _, stderr = sweep_run.communicate(timeout=30)
    finally:
        sweep_run.kill()
        listed = manifest.read_manifest(sweep)
        array_ids = sorted({job.scheduler_job_id.split("_")[0] for job in listed.jobs if job.scheduler_job_id})
        subprocess.run(["scancel", *array_ids], timeout=10)
    out = log.read_text()
    assert sweep_run.returncode == 130, out + stderr
    assert re.search(rf"^Waiting for 2 Slurm jobs; Slurm job ids: {array_ids[0]} \(jobs 0-1: ", out, re.M), out
    assert re.search(r"^\[1/2\] steps=20 -> ok final_loss=\S+ \(\d+\.\d\d s\)$", out, re.M), out
    assert f"the Slurm jobs keep running; stop them with: scancel {array_ids[0]}" in out
    assert f"follow them with: python -m sweeper status {sweep.resolve()}" in out
    assert " : steps=" not in out + stderr
    assert [line for line in stderr.splitlines() if TF_LINE.search(line)] == [], stderr
    slurm_err = (sweep / ".submitit").rglob("*_log.err")
    assert not [line for path in slurm_err for line in path.read_text().splitlines() if TF_LINE.search(line)]


@pytest.mark.slow
def test_each_job_run_log_holds_its_own_line_and_the_terminal_has_it_once(tmp_path):
    out = run_cli("run.py", "-m", "lr=0.1,0.01", "steps=20", f"hydra.sweep.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stderr
    for num, lr, other in ((0, "0.1", "0.01"), (1, "0.01", "0.1")):
        run_log = (tmp_path / str(num) / "run.log").read_text()
        assert re.search(rf"\[sweeper.job\]\[INFO\] - \[{num + 1}/2\] lr={lr} steps=20 -> ok final_loss=", run_log), run_log
        assert f"lr={other} " not in run_log
        assert out.stdout.count(f"] lr={lr} steps=20 -> ok") == 1, out.stdout
    assert "[sweeper.job]" not in out.stdout + out.stderr  # the terminal has the plain line, once


@pytest.mark.slow
def test_a_single_run_log_holds_its_line(tmp_path):
    out = run_cli("run.py", "steps=20", f"hydra.run.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stderr
    assert "steps=20 -> ok final_loss=" in (tmp_path / "run.log").read_text()
    assert out.stdout.count("steps=20 -> ok") == 1
    assert out.stdout.splitlines()[-1] == f"run directory: {tmp_path}"  # its folder, last


@pytest.mark.slow
@pytest.mark.mnist
def test_fused_mnist_sweep_prints_no_tensorflow_start_up_lines(tmp_path):
    """The default for a softmax sweep: its jobs fused, trained in process, the optimizer step under XLA."""
    out = run_cli("run.py", "-m", "task=softmax", "lr=0.5,0.1", f"data.dir={real_mnist_dir()}",
                  "data.train_samples=200", "data.test_samples=100", f"hydra.sweep.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert [status for _, _, _, status in _job_lines(out.stdout)] == ["ok", "ok"], out.stdout
    assert [record.fused for record in records(tmp_path).values()] == [2, 2]
    # one progress line per epoch for the group, naming its copies
    assert _epoch_lines(out.stdout) == [("task=softmax [2 fused: lr=0.5 | lr=0.1]", 1, 1)], out.stdout
    assert len(out.stdout.splitlines()) == 4, out.stdout
    assert _start_up_lines(out.stdout, out.stderr) == [], out.stderr


@pytest.mark.slow
@pytest.mark.mnist
def test_packed_local_sweep_prints_no_tensorflow_start_up_lines(tmp_path):
    """Two jobs packed in one task of the local launcher: a worker process of its own, its standard
    error in the task's .err file and echoed on the terminal when it fails."""
    out = run_cli("run.py", "-m", "task=softmax", "lr=0.5,0.1", "hydra/launcher=local", "hydra.launcher.jobs_per_task=2",
                  f"data.dir={real_mnist_dir()}", "data.train_samples=200", "data.test_samples=100",
                  f"hydra.sweep.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(status for _, _, _, status in _job_lines(out.stdout)) == ["ok", "ok"], out.stdout
    assert _start_up_lines(out.stdout, out.stderr, _err_files(tmp_path)) == [], _err_files(tmp_path)


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.mnist
def test_slurm_err_files_hold_no_tensorflow_start_up_lines(tmp_path):
    out = run_cli("run.py", "-m", "task=softmax", "lr=0.5,0.1", "hydra/launcher=slurm", f"data.dir={real_mnist_dir()}",
                  "data.train_samples=200", "data.test_samples=100", f"hydra.sweep.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stdout + out.stderr
    errors = _err_files(tmp_path)
    assert list((tmp_path / ".submitit").rglob("*_log.err")), "no Slurm .err file"
    assert _start_up_lines(out.stdout, out.stderr, errors) == [], errors


@pytest.mark.slow
@pytest.mark.mnist
def test_search_prints_no_tensorflow_start_up_lines(tmp_path):
    out = run_cli("run.py", "-m", "hparams_search=ex2_optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
                  f"data.dir={real_mnist_dir()}", "data.train_samples=200", "data.test_samples=100",
                  f"hydra.sweep.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert [(k, n) for k, n, _, _ in _job_lines(out.stdout)] == [(1, 2), (2, 2)], out.stdout
    assert _start_up_lines(out.stdout, out.stderr) == [], out.stderr


@pytest.mark.slow
def test_a_diverged_job_prints_inf_in_process_and_under_the_local_launcher(tmp_path):
    """The record stores a loss that is not finite as null; the line says `inf` on either path."""
    lines = {}
    for where, launcher in (("in_process", []), ("local", ["hydra/launcher=local"])):
        out = run_cli("run.py", "-m", "lr=5.0", "steps=100", *launcher, f"hydra.sweep.dir={tmp_path / where}",
                      env=_user_env())
        assert out.returncode == 0, out.stdout + out.stderr
        lines[where] = [line.rsplit(" (", 1)[0] for line in out.stdout.splitlines() if line.startswith("[1/1]")]
        assert records(tmp_path / where)["lr=5.0 steps=100"].metrics["final_loss"] is None
    assert lines["in_process"] == lines["local"], lines
    assert lines["local"] == ["[1/1] lr=5.0 steps=100 -> diverged final_loss=inf"], lines


EPOCH_LINE = re.compile(r"^(.*): epoch (\d+)/(\d+): loss .*, test accuracy .*, \d+ images/s, \d+\.\d\d s(, \d+:\d\d left)?$")


def _epoch_lines(stdout: str) -> list[tuple[str, int, int]]:
    """The progress line's per-epoch lines (sweeper/training/progress_line.py): (name, epoch, epochs),
    the name less the `data.*` overrides every job of these sweeps shares."""
    return [(re.sub(r" data\.\S+", "", m[1]), int(m[2]), int(m[3]))
            for m in map(EPOCH_LINE.match, stdout.splitlines()) if m]


@pytest.mark.slow
@pytest.mark.mnist
def test_unfused_mnist_sweep_prints_one_line_per_epoch_per_job_and_no_keras_lines(tmp_path):
    """Off a terminal each job's progress is one line per epoch (in its run.log too), Keras' own
    lines none; then the job's [k/N] line, and the summary."""
    out = run_cli("run.py", "-m", "task=softmax", "lr=0.5,0.1", "hydra.sweeper.fuse=false", "epochs=2",
                  f"data.dir={real_mnist_dir()}", "data.train_samples=200", "data.test_samples=100",
                  f"hydra.sweep.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stdout + out.stderr
    keras_lines = [line for line in (out.stdout + out.stderr).splitlines()
                   if re.search(r"^Epoch \d+/\d+|\d+/\d+ .*step - (loss|accuracy)", line)]
    assert keras_lines == [], keras_lines
    assert len(_job_lines(out.stdout)) == 2, out.stdout
    first, second = "task=softmax lr=0.5 epochs=2", "task=softmax lr=0.1 epochs=2"
    assert _epoch_lines(out.stdout) == [(first, 1, 2), (first, 2, 2), (second, 1, 2), (second, 2, 2)], out.stdout
    assert len(out.stdout.splitlines()) == 7, out.stdout  # four epoch lines, two job lines and the summary
    assert "\r" not in out.stdout and "\x1b" not in out.stdout  # nothing in place off a terminal
    assert [line for line in (tmp_path / "1" / "run.log").read_text().splitlines() if ": epoch " in line] != []
    assert _start_up_lines(out.stdout, out.stderr) == [], out.stderr
