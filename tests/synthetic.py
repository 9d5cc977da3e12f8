"""Sweep directories built from result records directly, without training (tests, benchmarks).

The records follow the agreed format (sweeper/job/record.py, notes of the MNIST tasks): linear jobs
record the loss per step; classification jobs the loss every few steps with `loss_steps`, and the
per-epoch train/test accuracy and loss. Each sweep has the job list (`jobs.json`) its sweeper would have written.
"""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from sweeper.job.record import RECORD_NAME, Record, read_record, write_record
from sweeper.job.manifest import ListedJob, Manifest, claim

TASKS = {
    "linear": {"objective": "final_loss", "direction": "minimize"},
    "softmax": {"objective": "test_accuracy", "direction": "maximize"},
    "cnn": {"objective": "test_accuracy", "direction": "maximize"},
}


def write_job_list(sweep: Path, task: str, optimizer: str, jobs: list[dict[str, Any]], preset: str | None = None,
                   n_trials: int | None = None, **fixed: Any) -> None:
    """The sweep's job list (jobs.json) as the sweeper writes it: one entry per job, each with the
    hyperparameters it runs with (`fixed` ones added to each); with n_trials, a search that has
    asked for `jobs` of its n_trials trials so far."""
    entries = [ListedJob(num=num, dir=str(num), overrides=[f"{k}={v}" for k, v in values.items()],
                        fingerprint=f"synthetic{num:07d}", task=task, optimizer=optimizer,
                        hparams={**fixed, **values}, preset=preset, trial=num if n_trials else None, **TASKS[task])
               for num, values in enumerate(jobs)]
    sweeper = "OptunaSweeper" if n_trials else "CheckedSweeper"
    claim(sweep, Manifest(sweeper=sweeper, search=bool(n_trials), total=n_trials or len(jobs), jobs=entries))


CONFIG_ORDER = ["lr", "momentum", "beta1", "beta2", "epsilon", "batch_size", "epochs", "steps", "gpus", "nodes", "seed"]


def write_job(job_dir: Path, task: str, optimizer: str, hparams: dict[str, Any], metrics: dict[str, Any],
              history: dict[str, list], status: str = "ok", train_time_s: float | None = 1.0,
              error: str | None = None, overrides: list[str] | None = None) -> None:
    """A job directory as a job leaves it: `.hydra/overrides.yaml` and `result.json`, its hyperparameters
    in the order a job records them (conf/config.yaml's)."""
    overrides = overrides if overrides is not None else [f"{k}={v}" for k, v in hparams.items()]
    hparams = dict(sorted(hparams.items(), key=lambda item: CONFIG_ORDER.index(item[0]) if item[0] in CONFIG_ORDER else 99))
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    record = Record(status=status, task=task, optimizer=optimizer, hparams=hparams, metrics=metrics,
                    history=history, train_time_s=train_time_s, started="2026-01-01T00:00:00.000+00:00",
                    finished="2026-01-01T00:00:10.000+00:00", overrides=overrides,
                    versions={"python": "3.11"}, git_commit=None, host="synthetic", error=error,
                    **TASKS[task])
    write_record(job_dir, record)


def linear_curve(lr: float, beta1: float = 0.9, beta2: float = 0.999, steps: int = 1000,
                 diverge_at: int | None = None) -> list[float]:
    """A loss per step that falls faster with a larger lr, or grows until it stops being finite."""
    if diverge_at is not None:
        return [23.66 * 1.9 ** t for t in range(diverge_at)]
    rate = lr * (1.5 - beta1) * (2 - beta2) * 0.5
    return [23.66 * math.exp(-rate * t) + 1e-9 * lr for t in range(steps)]


def linear_job(job_dir: Path, optimizer: str, diverge_at: int | None = None, **hparams: Any) -> None:
    hparams = {"steps": 1000, **hparams}
    curve = linear_curve(hparams["lr"], hparams.get("beta1", 0.9), hparams.get("beta2", 0.999),
                         hparams["steps"], diverge_at)
    diverged = diverge_at is not None
    metrics = {"final_loss": None if diverged else curve[-1], "W": None if diverged else -1.0,
               "b": None if diverged else 1.0}
    write_job(job_dir, "linear", optimizer, hparams, metrics, {"loss": curve},
              status="diverged" if diverged else "ok", train_time_s=0.03)


def mnist_history(lr: float, batch_size: int, epochs: int, train_size: int = 60000,
                  every: int = 50) -> dict[str, list]:
    """Per-epoch accuracy/loss that improve with lr up to a point, and the loss every few steps."""
    skill = min(lr, 0.5) * 20 / (1 + batch_size / 256)
    train_acc = [0.92 - 0.5 * math.exp(-skill * e) for e in range(1, epochs + 1)]
    test_acc = [a - 0.01 for a in train_acc]
    steps_per_epoch = math.ceil(train_size / batch_size)
    loss_steps = list(range(every, steps_per_epoch * epochs + 1, every))
    loss = [2.3 * math.exp(-skill * s / steps_per_epoch) + 0.25 for s in loss_steps]
    return {"loss": loss, "loss_steps": loss_steps,
            "train_accuracy": train_acc, "test_accuracy": test_acc,
            "train_loss": [1.5 * (1 - a) + 0.1 for a in train_acc], "test_loss": [1.5 * (1 - a) + 0.12 for a in test_acc]}


def mnist_job(job_dir: Path, task: str, optimizer: str, status: str = "ok", train_time_s: float = 20.0,
              replicas: int | None = None, error: str | None = None, device: str = "GPU", **hparams: Any) -> None:
    hparams = {"epochs": 5, "batch_size": 32, **hparams}
    history = mnist_history(hparams["lr"], hparams["batch_size"], hparams["epochs"]) if status != "failed" else {}
    metrics: dict[str, Any] = {}
    if status == "ok":
        metrics = {"test_accuracy": history["test_accuracy"][-1], "test_loss": history["test_loss"][-1],
                   "train_loss": history["train_loss"][-1], "samples_per_s": 60000 * hparams["epochs"] / train_time_s,
                   "params": 7850}
        if replicas is not None:
            metrics.update(replicas=replicas, devices=[f"/device:{device}:{i}" for i in range(replicas)])
    elif status == "diverged":
        history = {"loss": history["loss"][:7] + [1e30], "loss_steps": history["loss_steps"][:8],
                   "train_accuracy": [0.1], "test_accuracy": [0.098], "train_loss": [None], "test_loss": [None]}
        metrics = {"test_accuracy": 0.098, "test_loss": None}
    write_job(job_dir, task, optimizer, hparams, metrics, history, status=status,
              train_time_s=train_time_s if status != "failed" else None, error=error)


# ------------------------------------------------------------------ the sweeps the tests report on

ADAM_GRID = {"lr": [0.1, 0.01, 0.001, 0.0001], "beta1": [0.8, 0.9, 0.95, 0.99], "beta2": [0.8, 0.9, 0.95, 0.99]}


def _grid(values: dict[str, list]) -> list[dict[str, Any]]:
    return [dict(zip(values, combination)) for combination in itertools.product(*values.values())]


def adam_grid_sweep(sweep: Path) -> list[dict[str, Any]]:
    """The ex1_adam grid, complete: 64 linear jobs; lr=0.1 with beta2=0.8 diverges."""
    jobs = _grid(ADAM_GRID)
    write_job_list(sweep, "linear", "adam", jobs, preset="experiment=ex1_adam", epsilon=1e-7, steps=1000)
    for number, hparams in enumerate(jobs):
        diverge = 40 + number if hparams["lr"] == 0.1 and hparams["beta2"] == 0.8 else None
        linear_job(sweep / str(number), "adam", diverge_at=diverge, **hparams, epsilon=1e-7)
    return jobs


SOFTMAX_GRID = {"lr": [0.5, 0.1, 0.01], "batch_size": [32, 64, 128, 256]}


def softmax_grid_sweep(sweep: Path, *, partial: bool = False) -> list[dict[str, Any]]:
    """lr x batch_size of the softmax task, 12 jobs of 5 epochs. partial: jobs 8-11 not started,
    job 7 without a record, job 5 failed, job 0 diverged, job 6's record cut short."""
    jobs = _grid(SOFTMAX_GRID)
    write_job_list(sweep, "softmax", "gd", jobs, epochs=5)
    for number, hparams in enumerate(jobs):
        job_dir = sweep / str(number)
        if partial and number >= 8:
            continue
        if partial and number == 7:
            (job_dir / ".hydra").mkdir(parents=True)
            continue
        status = "ok"
        error = None
        if partial and number == 5:
            status, error = "failed", "ResourceExhaustedError: OOM when allocating tensor with shape[64,784]"
        if partial and number == 0:
            status = "diverged"
        mnist_job(job_dir, "softmax", "gd", status=status, error=error, train_time_s=60000 / hparams["batch_size"] / 50,
                  **hparams, epochs=5)
        if partial and number == 6:
            (job_dir / "result.json").write_text('{"status": "ok", "task"')
    return jobs


GPU_TIMES = {1: 120.0, 2: 64.0, 4: 36.0}


def gpu_sweep(sweep: Path, devices: str = "gpu") -> None:
    """cnn with gpus=1,2,4 (batch size 256): training times that scale less than linearly.
    devices="cpu": the same on logical CPU replicas, as `devices=cpu` runs it (exercise 4 without GPUs)."""
    hparams = dict(lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7, batch_size=256, epochs=3)
    if devices == "cpu":
        hparams["devices"] = "cpu"
    write_job_list(sweep, "cnn", "adam", [{"gpus": gpus} for gpus in GPU_TIMES], **hparams)
    for number, gpus in enumerate(GPU_TIMES):
        mnist_job(sweep / str(number), "cnn", "adam", train_time_s=GPU_TIMES[gpus], replicas=gpus,
                  device=devices.upper(), **hparams, gpus=gpus)


NODE_TIMES = {1: 100.0, 2: 60.0}  # ex4_nodes: 4 GPUs on each of 1 and 2 nodes


def nodes_sweep(sweep: Path) -> None:
    """cnn with gpus=4 on nodes=1,2 (ex4_nodes): 4 and 8 GPUs in all."""
    hparams = dict(lr=0.0001, beta1=0.9, beta2=0.999, epsilon=1e-7, batch_size=16, epochs=3, gpus=4)
    write_job_list(sweep, "cnn", "adam", [{"nodes": nodes} for nodes in NODE_TIMES], **hparams)
    for number, nodes in enumerate(NODE_TIMES):
        mnist_job(sweep / str(number), "cnn", "adam", train_time_s=NODE_TIMES[nodes], replicas=4 * nodes,
                  device="GPU", **hparams, nodes=nodes)


def optuna_sweep(sweep: Path, trials: list[dict[str, Any]], n_trials: int) -> None:
    """An Optuna search over the softmax task: the trials given have run, of n_trials."""
    write_job_list(sweep, "softmax", "momentum", trials, preset="hparams_search=ex2_optuna", n_trials=n_trials)
    for number, hparams in enumerate(trials):
        mnist_job(sweep / str(number), "softmax", "momentum", **hparams)


EX2_SWEEPS = {"ex2_gd": ("gd", {"lr": [0.7, 0.5]}),
              "ex2_momentum": ("momentum", {"lr": [0.1, 0.5], "momentum": [0.8, 0.9]}),
              "ex2_adagrad": ("adagrad", {"lr": [0.5]}),
              "ex2_adam": ("adam", {"lr": [0.1], "beta1": [0.8], "beta2": [0.8], "epsilon": [1e-9]})}


def course_sweep(sweep: Path, task: str, optimizer: str, values: dict[str, list], train_samples: int,
                 **fixed: Any) -> None:
    """A sweep of a course directory: the grid of `values` with `fixed`, on train_samples of the
    60,000 training images (fewer is a reduced set-up)."""
    jobs = _grid(values)
    write_job_list(sweep, task, optimizer, jobs, preset=f"experiment={sweep.name}", **fixed)
    for number, hparams in enumerate(jobs):
        mnist_job(sweep / str(number), task, optimizer, **fixed, **hparams)
        record = sweep / str(number) / "result.json"
        data = json.loads(record.read_text())
        data["metrics"].update(train_samples=train_samples, test_samples=10_000)
        record.write_text(json.dumps(data))


def ex2_course(directory: Path, train_samples: int = 500) -> None:
    """Exercise 2's sweeps of a course directory (the smoke profile's names), one epoch at batch 100."""
    for name, (optimizer, values) in EX2_SWEEPS.items():
        course_sweep(directory / name, "softmax", optimizer, values, train_samples, batch_size=100, epochs=1)


def ex3_course(directory: Path, train_samples: int = 256) -> None:
    """Exercise 3's sweeps of a course directory, as the smoke profile names them."""
    course_sweep(directory / "ex3_1epoch", "cnn", "adam", {"lr": [1e-3], "batch_size": [16, 250]}, train_samples,
                 epochs=1)
    course_sweep(directory / "ex3_40epochs", "cnn", "adam", {"lr": [1e-4], "batch_size": [16]}, train_samples,
                 epochs=2)


def adam_grid(jobs: int) -> list[dict[str, float]]:
    """The hyperparameters of `jobs` linear Adam jobs: lr 0.001, 0.002, ..., 10 steps each."""
    return [{"lr": round(0.001 * (1 + number), 6), "steps": 10} for number in range(jobs)]


def write_adam_jobs(sweep: Path, numbers: range | list[int], final: float | None = None) -> None:
    """The records of jobs `numbers` of adam_grid's sweep; `final`: a rerun's final loss, other than the first's."""
    for number in numbers:
        linear_job(sweep / str(number), "adam", **adam_grid(number + 1)[number])
        if final is not None:
            record = read_record(sweep / str(number) / RECORD_NAME)
            record.metrics["final_loss"] = final
            write_record(sweep / str(number), record)
