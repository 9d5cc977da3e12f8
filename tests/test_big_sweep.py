"""A big grid's start and run (sweeper/launching/compose.py, sweeper/sweep/planning.py,
sweeper/launching/in_process.py): each job planned by a dictionary merge is the job composed in
full, the job list is written as a stream and reads as the document written before, planning holds
no config per job, a job run in process leaves Hydra's own files, and a grid run a batch at a time
runs each job once."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tracemalloc

import msgspec
import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import run_job, setup_globals
from hydra.experimental.callback import Callback
from hydra._internal.callbacks import Callbacks
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf, open_dict

from sweeper.job.fingerprint import container, former_of, identity
from sweeper.job.fused_groups import fusion_key
from sweeper.job.planned import plan_job
from sweeper.job.record import read_record
from sweeper.launching import in_process
from sweeper.launching.compose import Planner
from sweeper.job import manifest
from sweeper.sweep.planning import plan_sweep
from tests.conftest import ROOT, checkout_env, run_cli


@pytest.fixture
def loader_and_master(tmp_path):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", [f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                                           run_mode=RunMode.MULTIRUN)
        yield loader, master
    GlobalHydra.instance().clear()


JOBS = [["optimizer=adam", "lr=0.1", "beta1=0.8"], ["optimizer=adam", "lr=0.01", "beta2=0.95", "steps=20"],
        ["optimizer=momentum", "lr=0.5", "momentum=0.8"], ["optimizer=gd", "lr=5", "seed=3"],
        ["optimizer=adam", "lr=0.1", "beta1=0.8", "data.train_samples=100"], ["task=softmax", "lr=0.2", "batch_size=16"],
        ["optimizer=adam", "lr=0.3", "epsilon=1e-8", "logging.tensorboard=false"]]


def test_each_planned_job_is_the_job_composed_in_full(loader_and_master):
    loader, master = loader_and_master
    planner = Planner(loader, master)
    for num, overrides in enumerate(JOBS):
        planned, resolved = planner.plan(planner.job(num, overrides))
        composed = loader.load_sweep_config(master, overrides)
        with open_dict(composed.hydra.job):
            composed.hydra.job.num = num
        full = plan_job(composed)
        assert (planned.num, planned.dir, planned.directory, planned.overrides) == (
            full.num, full.dir, full.directory, full.overrides)
        assert planned.fingerprint == identity(composed)[0] and former_of(resolved) == identity(composed)[1]
        assert resolved == container(composed)
        assert fusion_key(composed, resolved) == fusion_key(composed)
    assert len(planner.combinations) == 6  # the hyperparameters alone do not compose anew
    assert all(c.landings for c in planner.combinations.values())  # each resolved by a dictionary merge


def test_a_value_computed_from_a_hyperparameter_is_resolved_job_by_job(loader_and_master):
    loader, master = loader_and_master
    planner = Planner(loader, master)
    overrides = ["+note=lr_${lr}"]  # not the value itself: the probes cannot stand in for it
    for num, lr in enumerate(("0.1", "0.2")):
        planned, resolved = planner.plan(planner.job(num, [*overrides, f"lr={lr}"]))
        assert resolved["note"] == f"lr_{lr}"
        composed = loader.load_sweep_config(master, [*overrides, f"lr={lr}"])
        assert planned.fingerprint == identity(composed)[0]
    assert [c.landings for c in planner.combinations.values()] == [None]


def test_a_hyperparameter_given_as_an_interpolation_is_resolved(loader_and_master):
    loader, master = loader_and_master
    planner = Planner(loader, master)
    for num, overrides in enumerate([["optimizer=adam", "lr=0.1"], ["optimizer=adam", "lr=${beta1}", "beta1=0.8"]]):
        planned, resolved = planner.plan(planner.job(num, overrides))
        assert planned.fingerprint == identity(loader.load_sweep_config(master, overrides))[0]
    assert resolved["lr"] == 0.8 and resolved["optimizer"]["learning_rate"] == 0.8


def _listed(n: int) -> manifest.Manifest:
    return manifest.Manifest(sweeper=manifest.GRID, search=False, total=n, jobs=[manifest.ListedJob(
        num=i, dir=str(i), overrides=[f"lr={i}"], fingerprint=f"f{i}", task="linear", optimizer="gd",
        hparams={"lr": i, "steps": 10}, objective="final_loss", direction="minimize") for i in range(n)])


def test_a_streamed_job_list_reads_as_the_document_written_before(tmp_path):
    listed = _listed(5)
    old = json.dumps(msgspec.to_builtins(listed), indent=1) + "\n"  # as lists were written before
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "jobs.json").write_text(old)
    manifest.claim(tmp_path / "new", listed)
    streamed = (tmp_path / "new" / "jobs.json").read_text()
    assert json.loads(streamed) == json.loads(old)  # the same entries in the same order
    assert manifest.read_manifest(tmp_path / "old") == manifest.read_manifest(tmp_path / "new") == listed
    assert len(streamed.splitlines()) == 5 + 2  # a job a line, between the header and the end


def _peak_per_job(loader, master, n: int, sweep) -> float:
    overrides = [[f"lr={i + 1}", f"steps={i % 7 + 1}"] for i in range(n)]
    tracemalloc.start()
    try:
        jobs, done = plan_sweep(HydraContext(config_loader=loader, callbacks=None), master, None, overrides, sweep,
                                sweeper=manifest.GRID, keep_config=False)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(jobs) == n and not done and all(job.config is None for job in jobs)
    assert manifest.read_manifest(sweep).total == n
    return peak / n


def test_planning_holds_no_config_per_job(loader_and_master, tmp_path):
    """Planning 500 and 2,500 jobs: the memory it takes per job stays what a planned job without
    its config takes (a config is ~100 kB), not more at the larger size."""
    loader, master = loader_and_master
    small = _peak_per_job(loader, master, 500, tmp_path / "small")
    large = _peak_per_job(loader, master, 2500, tmp_path / "large")
    assert large < 3000 and large < 1.5 * small, (small, large)


class _Calls(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_job_start(self, config, **kwargs) -> None:
        self.calls.append(f"start {config.hydra.job.num}")

    def on_job_end(self, config, job_return, **kwargs) -> None:
        self.calls.append(f"end {config.hydra.job.num} {job_return.return_value}")


@pytest.fixture
def root_logging_restored():
    """Hydra's job logging adds a file handler in the job's directory, which the test removes: the
    handlers the root logger had before come back, or later tests' log lines go to a deleted file."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers, root.level = handlers, level


def test_a_job_run_in_process_leaves_the_files_hydra_leaves(loader_and_master, tmp_path, root_logging_restored):
    """in_process.run_job (Hydra's run_job with fewer copies) against Hydra's own, on the same job:
    the same `.hydra/` files, byte for byte, the same callbacks, the same JobReturn, the same
    HydraConfig seen by the task (read-only), and the task's log line in run.log."""
    loader, master = loader_and_master
    planner = Planner(loader, master)
    job = planner.job(3, ["optimizer=adam", "lr=0.1", "beta1=0.8"])
    directory = planner.plan(job)[0].directory
    setup_globals()
    seen = []
    files, returns = [], []
    for run in ("hydra", "ours"):
        callbacks = _Calls()
        context = HydraContext(config_loader=loader, callbacks=Callbacks())
        context.callbacks.callbacks = [callbacks]  # type: ignore[attr-defined]
        cfg = pickle.loads(pickle.dumps(planner.config(job)))
        def task(task_cfg):
            logging.getLogger("task").info("the task's line")  # lands in run.log
            seen.append((OmegaConf.to_yaml(task_cfg), OmegaConf.to_yaml(HydraConfig.get()),
                         OmegaConf.is_readonly(HydraConfig.get()), HydraConfig.get().runtime.output_dir))
            return task_cfg.lr * 2
        if run == "hydra":
            ret = run_job(task, cfg, "hydra.sweep.dir", "hydra.sweep.subdir", context)
        else:
            ret = in_process.run_job(context, task, cfg, directory)
        files.append({p.name: p.read_bytes() for p in sorted((directory / ".hydra").iterdir())})
        assert ["[task][INFO] - the task's line" in p.read_text() for p in directory.glob("*.log")] == [True]
        returns.append((ret.return_value, ret.overrides, ret.working_dir, OmegaConf.to_yaml(ret.cfg),
                        OmegaConf.to_yaml(ret.hydra_cfg), callbacks.calls))
        shutil.rmtree(directory)
    assert sorted(files[0]) == ["config.yaml", "hydra.yaml", "overrides.yaml"] and files[0] == files[1]
    assert returns[0] == returns[1] and returns[1][-1] == ["start 3", "end 3 0.2"]
    assert seen[0] == seen[1]


@pytest.mark.slow
def test_a_grid_run_in_batches_runs_each_job_once_fused_within_its_batch(tmp_path):
    """In process, configs are given a batch at a time (256; here hydra.sweeper.max_batch_size=3):
    every job runs once with its own record, `.hydra/` files and run.log; fused groups stay within
    their batch; the job list is in job order."""
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "optimizer=adam", "steps=5", "lr=0.1,0.01,0.001,0.0001", "beta1=0.8,0.9",
                     "logging.tensorboard=false", "hydra.sweeper.max_batch_size=3", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-2000:]
    listed = manifest.read_manifest(sweep)
    assert [job.num for job in listed.jobs] == list(range(8)) and listed.total == 8
    records = [read_record(sweep / str(num) / "result.json") for num in range(8)]
    assert all(record.status.value == "ok" for record in records)
    assert [record.fused for record in records] == [3, 3, 3, 3, 3, 3, 2, 2]  # batches 0-2, 3-5, 6-7
    for num, job in enumerate(listed.jobs):
        assert job.hparams == {"lr": records[num].hparams["lr"], "beta1": records[num].hparams["beta1"],
                               "beta2": 0.999, "epsilon": 1e-07, "steps": 5}
        assert sorted(p.name for p in (sweep / str(num) / ".hydra").iterdir()) == [
            "config.yaml", "hydra.yaml", "overrides.yaml"]
        assert (sweep / str(num) / "run.log").read_text().count(" -> ok ") == 1


@pytest.mark.slow
def test_a_grid_of_many_fused_groups_stays_under_1_gb(tmp_path):
    """1,000 jobs in 200 fused groups (issue 29): each group traces its own loop; what TensorFlow
    kept of each trace (2.5-5 MB a group) took the grid to 1.19 GB peak RSS before it was freed."""
    steps = ",".join(str(n) for n in range(1, 201))  # 200 values: 200 groups of 5 jobs
    rates = ",".join(f"0.00{n}" for n in range(1, 6))
    child = subprocess.Popen([sys.executable, "run.py", "-m", "task=linear", "optimizer=adam", f"steps={steps}",
                              f"lr={rates}", "logging.tensorboard=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                             cwd=ROOT, env=checkout_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's peak alone (ru_maxrss: kB)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(list((tmp_path / "sweep").glob("*/result.json"))) == 1000
    assert usage.ru_maxrss < 1024 * 1024, f"peak RSS {usage.ru_maxrss / 1024:.0f} MB"
