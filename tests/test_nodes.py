"""One job over several Slurm tasks (nodes=2, hydra.launcher.tasks_per_node=2) on the two-node test
cluster (`make slurm-up`): the cnn task on the CPU, synthetic digits, trained data-parallel."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from sweeper.job.record import read_record
from sweeper.launching.accounting import read_file as read_accounting_file
from tests.conftest import ROOT, checkout_env, run_cli
from tests.cluster import final_state, read_job_ids, slurm_multirun

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# 300 images, 16 per replica: 10 steps of 32 (two replicas) per epoch; no dropout, so that the
# workers' replicas draw no random numbers and the runs compare exactly.
JOB = ("task=cnn", "devices=cpu", "batch_size=16", "epochs=2", "+task.run.dropout=0", "logging.keep_state=true",
       "logging.tensorboard=false")
ON_SLURM = ("hydra.launcher.worker_timeout_s=30",)
CHECKSUM = re.compile(r"^worker (\d+) \((\S+)\): final weights sha256 (\w+)$", re.M)


def weights(job_dir: Path) -> list[np.ndarray]:
    """The model's weights in the job's saved state (logging.keep_state=true), in the model's order."""
    import tensorflow as tf

    state = job_dir / "state"
    reader = tf.train.load_checkpoint(str(state / json.loads((state / "progress.json").read_text())["checkpoint"]))
    key = "optimizer/_trainable_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"
    return [reader.get_tensor(key.format(i)) for i in range(8)]


@pytest.fixture(scope="module")
def one_worker(tiny, tmp_path_factory) -> list[np.ndarray]:
    """The weights of the same job on one worker, one device, with the same global batch (32)."""
    run_dir = tmp_path_factory.mktemp("one")
    result = run_cli(str(ROOT / "run.py"), *JOB, "batch_size=32", f"data.dir={tiny}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stdout + result.stderr
    return weights(run_dir)


def step_of(job_id: str) -> str:
    """The job step's tasks, nodes and node list, as sacct has them."""
    out = subprocess.run(["sacct", "-n", "-P", "-o", "NTasks,NNodes,NodeList", "-j", f"{job_id}.0"],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def checksums(sweep: Path, job_id: str) -> dict[int, tuple[str, str]]:
    """Each worker's node and final weights' checksum, from its Slurm task's log."""
    logs = "".join(path.read_text() for path in (sweep / ".submitit" / job_id).glob(f"{job_id}_*_log.out"))
    return {int(rank): (node, digest) for rank, node, digest in CHECKSUM.findall(logs)}


@pytest.mark.parametrize("layout, workers_on", [
    (["nodes=2"], 2),
    (["hydra.launcher.tasks_per_node=2"], 1),
], ids=["two nodes", "two tasks on one node"])
def test_one_job_trains_over_two_workers_as_one_worker_with_the_global_batch(
        slurm_cluster, tiny, one_worker, tmp_path, layout, workers_on):
    sweep = tmp_path / "sweep"
    result = slurm_multirun(sweep, *JOB, *ON_SLURM, *layout, f"data.dir={tiny}")
    assert result.returncode == 0, result.stdout + result.stderr
    record = read_record(sweep / "0" / "result.json")
    assert record.status == "ok" and record.metrics["workers"] == 2 and record.metrics["replicas"] == 2
    assert len(record.metrics["nodes"]) == workers_on and record.metrics["devices"] == ["/device:CPU:0"]
    assert len(record.history["train_loss"]) == 2
    job_id = read_job_ids(sweep)[0]["slurm_job_id"]
    assert final_state(job_id) == "COMPLETED"
    tasks, nodes, nodelist = step_of(job_id).split("|")
    assert (tasks, nodes) == ("2", str(workers_on)) and len(nodelist.split(",")) == workers_on
    done = checksums(sweep, job_id)
    assert sorted(done) == [0, 1] and done[0][1] == done[1][1], done
    assert len({node for node, _ in done.values()}) == workers_on
    for ours, alone in zip(weights(sweep / "0"), one_worker):
        np.testing.assert_allclose(ours, alone, rtol=1e-4, atol=1e-6)
    # its cost counts every node: the CPUs it held on all of them (issue 30)
    (attempt,) = read_accounting_file(sweep / "0")[job_id]["attempts"]
    held = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "AllocCPUS,NNodes", "-j", job_id], capture_output=True,
                          text=True, timeout=10).stdout.strip()
    assert f"{attempt['cpus']}|{attempt['nodes']}" == held and attempt["nodes"] == workers_on
    assert attempt["cpus"] >= 2  # a CPU for each of its two workers, on one node or two


def worker_pid(job_id: str, rank: int) -> int | None:
    """The pid of the Python process of rank `rank` in the job's first step (all nodes are this machine)."""
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        env = dict(item.decode(errors="replace").split("=", 1) for item in environ if b"=" in item)
        if (name.startswith("python") and env.get("SLURM_JOB_ID") == job_id and env.get("SLURM_STEP_ID") == "0"
                and env.get("SLURM_PROCID") == str(rank)):
            return int(entry.name)
    return None


def test_a_lost_worker_fails_the_job_at_once_and_resume_finishes_it(slurm_cluster, tiny, tmp_path):
    """Worker 1 SIGKILLed after the first epoch's state is saved: the chief's collective fails, the
    record says `failed` naming the worker well within the timeout, and `resume` trains the job to
    its end from the saved epoch on both workers."""
    sweep = tmp_path / "sweep"
    job = (*JOB, *ON_SLURM, "epochs=3", "nodes=2", f"data.dir={tiny}")
    running = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=slurm",
                                f"hydra.sweep.dir={sweep}", *job], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=checkout_env())
    try:
        deadline = time.monotonic() + 180
        while not (sweep / "0" / "state" / "progress.json").exists():
            assert time.monotonic() < deadline and running.poll() is None, "no epoch was saved"
            time.sleep(0.05)
        job_id = read_job_ids(sweep)[0]["slurm_job_id"]
        pid = worker_pid(job_id, 1)
        assert pid is not None, "worker 1 runs"
        os.kill(pid, signal.SIGKILL)
        killed = time.time()
        output, _ = running.communicate(timeout=120)
    finally:
        running.kill()
    record = read_record(sweep / "0" / "result.json")
    assert record.status == "failed", output
    assert re.match(r"WorkerLost: worker 1 \(\S+\) was lost", record.error or ""), record.error
    assert datetime.fromisoformat(record.finished).timestamp() - killed < 30  # within the timeout
    saved = json.loads((sweep / "0" / "state" / "progress.json").read_text())["epoch"]
    assert saved >= 1

    resumed = run_cli("-m", "sweeper", "resume", str(sweep), timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    record = read_record(sweep / "0" / "result.json")
    assert record.status == "ok" and record.attempts == 2 and record.metrics["workers"] == 2
    assert len(record.history["train_loss"]) == 3
    job_id = read_job_ids(sweep)[0]["slurm_job_id"]
    lines = "".join(path.read_text() for path in (sweep / ".submitit" / job_id).glob("*_0_log.out"))
    assert f"epoch {saved + 1}/3" in lines and "epoch 1/3" not in lines, "continued from the saved epoch"
