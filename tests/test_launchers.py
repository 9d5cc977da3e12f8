"""The `local` and `slurm` launchers: per-job resources, Hydra's own launcher test suites, the
local launcher's cap on jobs running at once."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from hydra.types import HydraContext, RunMode
from hydra.version import VersionBase
from omegaconf import OmegaConf, open_dict

from hydra_plugins.launcher_plugins.submitit_launchers import LocalLauncher, SlurmLauncher
from sweeper import allocation
from sweeper.job import planned as planned_module
from sweeper.job.fingerprint import fingerprint
from sweeper.job.spec import job_from_hydra
from sweeper.launching.compose import Planner, job_configs
from sweeper.launching.packed import plan_here
from sweeper.launching.resources import job_resources
from sweeper.training.devices import DeviceError
from sweeper.training.workers import from_allocation, port_of
from tests.conftest import ROOT, checkout_env, run_cli


@pytest.fixture(autouse=True)
def _jobs_import_this_checkout(monkeypatch):
    # Job processes (and the apps of Hydra's integration tests, run from a temporary directory)
    # must find this checkout's hydra_plugins and sweeper, not those of another install.
    monkeypatch.setenv("PYTHONPATH", checkout_env()["PYTHONPATH"])


@pytest.fixture(autouse=True)
def _no_version_base_yet() -> None:
    # Hydra's suites expect a process where no app has set a version_base yet; the compose API
    # used by earlier tests leaves its version_base=1.3 behind (which turns off chdir to job dirs).
    VersionBase.set_instance(type.__call__(VersionBase))  # a new one (not the singleton): unspecified


@pytest.fixture
def sweep_of():
    """sweep_of(["gpus=1"], ["gpus=2"], master=[...]) -> each job's config, as the launcher sees it."""

    def _configs(*job_overrides, master=()):
        loader = GlobalHydra.instance().config_loader()
        primary = loader.load_configuration("config", overrides=list(master), run_mode=RunMode.MULTIRUN)
        str(primary.hydra.sweep.dir)  # resolved (the time in it fixed) first, as Hydra's sweeper does
        return loader, primary, job_configs(loader, primary, [list(o) for o in job_overrides])

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        yield _configs
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("cls", [LocalLauncher, SlurmLauncher])
def test_discovery(cls):
    assert cls.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


def test_each_job_gets_the_resources_of_its_own_config(sweep_of, monkeypatch):
    monkeypatch.setenv("SBATCH_ACCOUNT", "course42")
    _, _, configs = sweep_of(["gpus=0"], ["gpus=1"], ["gpus=2"], ["gpus=4"], master=["hydra/launcher=slurm"])
    params = [job_resources(cfg) for cfg in configs]
    assert [p["gpus_per_node"] for p in params] == [None, 1, 2, 4]
    assert [p["cpus_per_task"] for p in params] == [1, 4, 8, 16]       # 4 CPUs per GPU by default
    assert {p["account"] for p in params} == {"course42"}                # from sbatch's own variable
    assert {p["partition"] for p in params} == {None}
    assert {p["max_num_timeout"] for p in params} == {3}
    assert not {"wait", "max_array_size", "cpus_per_gpu", "_target_"} & params[0].keys()
    assert {(p["timeout_min"], p["signal_delay_s"]) for p in params} == {(120, 120)}


def test_a_short_time_limit_gets_its_timeout_signal_before_its_end(sweep_of):
    # 120 s before a 2-minute limit would be at the start: the job would die of the signal.
    _, _, configs = sweep_of(["gpus=0"], master=["hydra/launcher=slurm", "hydra.launcher.timeout_min=2"])
    assert [job_resources(cfg)["signal_delay_s"] for cfg in configs] == [60]


def test_command_line_launcher_settings_win(sweep_of, monkeypatch):
    monkeypatch.setenv("SBATCH_PARTITION", "gpu")
    master = ["hydra/launcher=slurm", "hydra.launcher.partition=a100", "hydra.launcher.cpus_per_gpu=2",
              "hydra.launcher.cpus_per_task=6"]
    _, _, configs = sweep_of(["gpus=1"], ["gpus=4"], master=master)
    params = [job_resources(cfg) for cfg in configs]
    assert [p["partition"] for p in params] == ["a100", "a100"]
    assert [p["cpus_per_task"] for p in params] == [6, 8]              # max(cpus_per_task, gpus x cpus_per_gpu)


def test_a_job_over_several_workers_asks_for_its_nodes_and_tasks(sweep_of):
    """nodes=N: N nodes, one task each, each with the job's GPUs; tasks_per_node=K: K tasks per
    node, the node's GPUs K times the job's; Slurm waits for a lost worker's peers a minute past
    the collectives' timeout before it ends the step."""
    master = ["hydra/launcher=slurm", "task=cnn", "hydra.launcher.worker_timeout_s=30"]
    _, _, configs = sweep_of(["nodes=1"], ["nodes=2", "gpus=2"], ["hydra.launcher.tasks_per_node=2", "gpus=1"],
                             master=master)
    params = [job_resources(cfg) for cfg in configs]
    assert [(p["nodes"], p["tasks_per_node"], p["gpus_per_node"], p["cpus_per_task"]) for p in params] == [
        (1, 1, None, 1), (2, 1, 2, 8), (1, 2, 2, 4)]
    assert [p.get("srun_args") for p in params] == [None, ["--wait=90"], ["--wait=90"]]
    assert "worker_timeout_s" not in params[0]


def test_workers_find_each_other_from_slurms_variables():
    assert allocation.tasks_per_node("2(x3),1") == [2, 2, 2, 1] and allocation.tasks_per_node("1") == [1]
    assert from_allocation({"SLURM_STEP_NUM_TASKS": "1"}) is None and from_allocation({}) is None
    env = {"SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NODELIST": "a,b", "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
           "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "77"}
    try:
        workers = from_allocation(env, timeout_s=30)
    except FileNotFoundError:  # no scontrol here to expand the node list
        pytest.skip("needs scontrol (Slurm's client)")
    assert workers is not None
    port = port_of("77", 4)
    assert workers.addresses() == [f"a:{port}", f"a:{port + 1}", f"b:{port + 2}", f"b:{port + 3}"]
    assert (workers.rank, workers.nodes, workers.on_this_node, workers.timeout_s) == (3, ["a", "b"], 2, 30)
    assert port_of("78", 4) != port  # another job on the node listens elsewhere
    # Slurm's order of a node list (node9 before node10), which SLURM_PROCID follows
    assert allocation.hostnames("node[9-10],gpu7") == ["node9", "node10", "gpu7"]
    with pytest.raises(DeviceError, match="Slurm lists 2 tasks on nodes a,b for a step of 4"):
        from_allocation({**env, "SLURM_STEP_TASKS_PER_NODE": "1(x2)"})


def test_gpus_asked_for_a_worker_but_absent_fail_in_one_line():
    from sweeper.training.workers import Workers, strategy

    from sweeper.training.tf import import_tensorflow

    if import_tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("a GPU is here: this is the machine without one")
    workers = Workers(rank=1, hosts=("a", "b"), port=20000, local_rank=0)
    with pytest.raises(DeviceError, match=r"^gpus=1 but 0 GPU\(s\) visible to worker 1 \(b\) .*add devices=cpu$"):
        strategy(workers, 1, "gpu")
    with pytest.raises(DeviceError, match="each worker trains one CPU replica"):
        strategy(workers, 2, "cpu")


def _resolved(cfg) -> dict:
    """The job's own config and the Hydra settings a launcher reads, resolved (in place: their
    interpolations refer to the whole config)."""
    def value(node, key):
        return OmegaConf.to_container(node[key], resolve=True) if OmegaConf.is_config(node[key]) else node[key]

    return {**{key: value(cfg, key) for key in cfg if key != "hydra"},
            **{f"hydra.{key}": value(cfg.hydra, key) for key in ("job", "overrides", "sweep", "launcher")}}


def test_job_configs_are_what_hydra_composes(sweep_of):
    jobs = [["lr=0.1", "optimizer=adam"], ["lr=0.01", "beta1=0.8", "optimizer=adam"], ["optimizer=gd", "lr=0.5"],
            ["gpus=2", "optimizer=adam"], ["lr=0.1", "optimizer=adam"]]
    master = ["hydra/launcher=slurm", "hydra.sweep.subdir=${hydra.job.override_dirname}"]
    loader, primary, configs = sweep_of(*jobs, master=master)
    for num, (overrides, fast) in enumerate(zip(jobs, configs)):
        composed = loader.load_sweep_config(primary, overrides)
        with open_dict(composed.hydra.job):
            composed.hydra.job.num = num
        assert _resolved(fast) == _resolved(composed)
        assert fast.hydra.sweep.subdir == ",".join(sorted(overrides))


LAUNCHERS = [pytest.param("local", ["hydra.launcher.timeout_min=2"], id="local"),
             pytest.param("slurm", ["hydra.launcher.timeout_min=2"], id="slurm", marks=pytest.mark.slurm)]


@pytest.mark.slow
@pytest.mark.parametrize("launcher_name, overrides", LAUNCHERS)
class TestLauncher(LauncherTestSuite):
    """Hydra's own launcher tests, as the stock submitit plugin runs them for its launchers."""


def _integration_flags(launcher: str) -> list[str]:
    return ["-m", "hydra/hydra_logging=disabled", "hydra/job_logging=disabled", f"hydra/launcher={launcher}",
            "hydra.launcher.timeout_min=1"]


@pytest.mark.slow
@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [
    pytest.param({}, _integration_flags("local"), id="local"),
    pytest.param({}, _integration_flags("slurm"), id="slurm", marks=pytest.mark.slurm),
])
class TestLauncherIntegration(IntegrationTestSuite):
    """Hydra's own integration tests of a launcher: apps run as a user runs them."""


def _lifetime(log: Path) -> tuple[str, str]:
    """When a submitit job process started and exited, from its log."""
    times = re.findall(r"submitit INFO \((.+?)\) - (Starting with|Exiting after)", log.read_text())
    return times[0][0], times[-1][0]


@pytest.mark.slow
def test_local_launcher_runs_at_most_max_parallel_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "steps=5,10", "hydra/launcher=local", "hydra.launcher.max_parallel=1",
                     f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    first, second = sorted(_lifetime(log) for log in sweep.glob(".submitit/*/*_log.out"))
    assert first[1] <= second[0], "the second job started before the first one ended"
    assert all((sweep / str(n) / "result.json").exists() for n in range(2))


@pytest.mark.slow
def test_local_launcher_packs_jobs_into_processes(tmp_path):
    """jobs_per_task on the local launcher: 4 jobs in two processes of 2, each job with its
    own directory, `.hydra/` files and record; a job that raises fails alone."""
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "optimizer._target_=keras.optimizers.SGD,keras.optimizers.NoSuch",
                     "steps=5,10", "hydra/launcher=local", "hydra.launcher.jobs_per_task=2", f"hydra.sweep.dir={sweep}")
    assert result.returncode != 0 and "4 jobs: 2 ok, 2 failed" in result.stdout, result.stdout + result.stderr
    assert len(list(sweep.glob(".submitit/*/*_log.out"))) == 2  # two processes
    from sweeper.job.record import read_record

    statuses = [read_record(sweep / str(n) / "result.json").status for n in range(4)]
    assert statuses == ["ok", "ok", "failed", "failed"]
    assert all((sweep / str(n) / ".hydra" / "config.yaml").exists() for n in range(4))


class _Counting:
    """Hydra's config loader, counting full compositions (`load_sweep_config`)."""

    def __init__(self, loader):
        self.loader, self.compositions = loader, 0

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def load_sweep_config(self, *args, **kwargs):
        self.compositions += 1
        return self.loader.load_sweep_config(*args, **kwargs)


class _Submits:
    """A launcher of ours as the sweeper sees one: it takes planned jobs."""

    def launch_planned(self, jobs, context):
        return []


def test_a_sweep_to_slurm_composes_each_job_once_and_plans_its_resources(sweep_of, tmp_path):
    """The sweeper plans each job once (one composition per combination of group options), with
    its resources; the launcher submits the planned jobs and composes none."""
    from hydra.types import HydraContext

    from sweeper.sweep.planning import plan_sweep

    loader, primary, _ = sweep_of(master=["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    counting = _Counting(loader)
    overrides = [[f"lr={lr}", f"steps={steps}"] for lr in (0.1, 0.01) for steps in (10, 20)]
    jobs, done = plan_sweep(HydraContext(config_loader=counting, callbacks=None), primary, _Submits(), overrides,
                            tmp_path / "sweep", sweeper="checked")
    assert done == {} and [job.num for job in jobs] == [0, 1, 2, 3]
    assert counting.compositions == 1  # lr and steps are hyperparameters: set on one composition
    assert [(job.resources or {}).get("timeout_min") for job in jobs] == [120] * 4
    assert all(job.config is None for job in jobs)  # nothing held for jobs that run elsewhere
    assert [job.directory for job in jobs] == [tmp_path / "sweep" / str(n) for n in range(4)]


class _NoCallbacks:
    def on_job_start(self, **kwargs):
        pass

    def on_job_end(self, **kwargs):
        pass


def test_a_job_run_by_another_process_keeps_the_fingerprint_planned(sweep_of, tmp_path, monkeypatch):
    """A job's fingerprint is computed once, when the sweep plans it: the job sent to a process of
    its own (our launchers' `__call__`, run here as submitit runs it there) or to a packed task
    records that one. A job sent without it (a launcher given only overrides) computes it from
    the config composed there: the same fingerprint, so that a resume recognises the job."""
    sweep = tmp_path / "sweep"
    loader, primary, _ = sweep_of(master=["hydra/launcher=local", f"hydra.sweep.dir={sweep}"])
    launcher = LocalLauncher()
    launcher.setup(hydra_context=HydraContext(config_loader=loader, callbacks=_NoCallbacks()),
                   task_function=lambda cfg: job_from_hydra(cfg)[0], config=primary)
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "local")
    monkeypatch.setenv("SUBMITIT_LOCAL_JOB_ID", "1")
    overrides = ["lr=0.1", "steps=5"]
    alone = launcher(overrides, "hydra.sweep.dir", 0, "job_id_for_0", Singleton.get_state()).return_value
    assert alone.fingerprint == fingerprint(alone.cfg)

    def computed_again(cfg):
        raise AssertionError("a planned job's fingerprint computed again")

    monkeypatch.setattr(planned_module, "identity", computed_again)
    planner = Planner(loader, primary, resources=True)
    planned = planner.plan(planner.job(0, overrides))[0]
    assert planned.fingerprint == alone.fingerprint
    marked = dataclasses.replace(planned.sent(), fingerprint="planned once")  # what the job's record gets
    ran = launcher(overrides, "hydra.sweep.dir", 0, "job_id_for_0", Singleton.get_state(), marked).return_value
    assert (ran.fingerprint, ran.cfg.lr, ran.directory) == ("planned once", 0.1, sweep / "0")
    packed = plan_here(launcher, [marked]).planned[0]
    assert (packed.fingerprint, packed.cfg.lr, packed.cfg.steps) == ("planned once", 0.1, 5)
