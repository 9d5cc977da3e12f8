"""The course's published results (published.yaml beside this module) and our job for each row.

A row names a configuration; our job for it is one of its exercise's jobs whose task, optimizer
and hyperparameters are the row's. `epochs`, `steps`, `devices` and the number of MNIST images are
the set-up: a job that ran less (fewer epochs, a subset of the images, CPU replicas) is shown
beside the row and marked, never compared as if it were the published set-up.
"""
from __future__ import annotations

import dataclasses
import decimal
import itertools
import math
import re
import statistics
from pathlib import Path
from typing import Any, cast

from omegaconf import OmegaConf

from sweeper.status import FINISHED, Status
from sweeper.sweep.by_config import one_more_run
from sweeper.sweep.jobs import Job

PUBLISHED = Path(__file__).with_name("published.yaml")
SETUP_KEYS = ("epochs", "steps", "devices")        # how much was run, not which configuration
MNIST_SIZES = {"train_samples": 60_000, "test_samples": 10_000}
_ROW_FIELDS = {"metric", "value", "unit", "bound", "statement", "info"}
_EPOCHS_TO = re.compile(r"^epochs_to_(\w+?)_([0-9.]+)$")   # epochs_to_test_accuracy_0.99


class Verdict:
    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not reproduced"
    NOT_RUN = "not run"
    REDUCED = "reduced set-up"       # shown, not compared


@dataclasses.dataclass
class Row:
    config: dict[str, Any]           # task, optimizer, hyperparameters, epochs, steps, gpus, devices
    metric: str
    value: float
    unit: str = ""
    bound: str | None = None         # <, >, ~ ; None: a number
    statement: str | None = None     # the course's words for a bound
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    tolerance: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def published_text(self) -> str:
        if self.bound:
            return f"{self.statement} ({self.bound} {self.value:g}{' ' + self.unit if self.unit == '%' else ''})"
        return f"{self.value:g}{'%' if self.unit == '%' else ' s' if self.unit == 's' else ''}"

    @property
    def tolerance_text(self) -> str:
        if self.bound == "~":
            t = self.tolerance
            return f"within x{t['factor']:g}" if "factor" in t else f"within ±{t.get('absolute', 0):g}"
        if self.bound:
            return ""
        if "relative" in self.tolerance:
            return f"±{self.tolerance['relative']:.0%}"
        pp = " pp" if self.unit == "%" else ""
        return f"±{self.tolerance.get('absolute', 0):g}{pp}"


@dataclasses.dataclass
class Exercise:
    key: str
    title: str
    setup: str
    rows: list[Row]
    notes: list[str]
    figures: list[str]
    best_of_grid: bool = False
    model: str | None = None          # a make_model to show as a layer table
    shared: dict[str, Any] = dataclasses.field(default_factory=dict)  # the configuration every row has


@dataclasses.dataclass
class Match:
    """A published row and what we have for it."""

    row: Row
    job: Job | None
    ours: float | None                # in the row's unit
    verdict: str
    reduced: list[str]                # why the job is not the published set-up
    why: str = ""                     # for `not run`: the job's status or that there is none
    repeats: list[Job] = dataclasses.field(default_factory=list)  # the job and its repeats (other seeds), finished
    values: list[float] = dataclasses.field(default_factory=list)  # their values, where finite: `ours` is the mean

    @property
    def ours_text(self) -> str:
        if self.job is None or self.job.record is None:
            return self.why
        if self.ours is None:
            return self.why or "no value"
        if len(self.values) < 2:
            return _number(self.ours, self.row.unit)
        std = statistics.stdev(self.values)
        unit = " pp" if self.row.unit == "%" else ""
        of = f" of {len(self.repeats)}" if len(self.values) < len(self.repeats) else ""
        return f"{_number(self.ours, self.row.unit)} ± {std:.2f}{unit} (n={len(self.values)}{of})" if unit else \
            f"{_number(self.ours, self.row.unit)} ± {std:.2g} (n={len(self.values)}{of})"

    @property
    def spread_text(self) -> str:
        """Whether the published number lies where one more of our runs would land (95%), of repeats."""
        if len(self.values) < 2 or self.row.bound or self.verdict in (Verdict.NOT_RUN, Verdict.REDUCED):
            return ""  # a reduced set-up is not compared
        low, high = one_more_run(self.values)
        inside = "yes" if low <= self.row.value <= high else "no"
        return f"{inside} ({_number(low, self.row.unit)} to {_number(high, self.row.unit)})"

    @property
    def difference_text(self) -> str:
        if self.verdict in (Verdict.NOT_RUN, Verdict.REDUCED):  # a reduced run is not compared
            return ""
        if self.row.bound:
            if self.ours is None and self.why != "diverged":
                return ""
            return "holds" if _holds(self.row, self.ours) else "does not hold"
        if self.ours is None:
            return ""
        difference = self.ours - self.row.value
        return f"{difference:+.2f} pp" if self.row.unit == "%" else f"{difference:+.3g}"


def _number(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.2f}%"
    if unit == "s":
        return f"{value:.1f} s"
    if unit == "epochs":
        return f"{value:g}"
    return f"{value:.3g}"


def _expand(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """A row whose configuration holds lists is one row per combination ("any momentum")."""
    keys = [k for k, v in fields.items() if isinstance(v, list)]
    if not keys:
        return [fields]
    return [fields | dict(zip(keys, combo)) for combo in itertools.product(*(fields[k] for k in keys))]


def _row(fields: dict[str, Any], shared: dict[str, Any], tolerance: dict[str, dict[str, Any]]) -> Row:
    config = shared | {k: v for k, v in fields.items() if k not in _ROW_FIELDS}
    bound = fields.get("bound")
    tol = tolerance.get("default_bound" if bound == "~" else fields["metric"], {}) if bound in (None, "~") else {}
    return Row(config, fields["metric"], float(fields["value"]), str(fields.get("unit", "")), bound,
               fields.get("statement"), dict(fields.get("info") or {}), dict(tol))


def load_published(path: Path = PUBLISHED) -> list[Exercise]:
    data = cast("dict[str, Any]", OmegaConf.to_container(OmegaConf.load(path), resolve=False))  # a mapping's file
    exercises = []
    for node in data["exercises"]:
        shared, tolerance = dict(node.get("config") or {}), dict(node.get("tolerance") or {})
        rows = [_row(fields, shared, tolerance) for raw in node["rows"] for fields in _expand(raw)]
        exercises.append(Exercise(node["key"], node["title"], node.get("setup", ""), rows, list(node.get("notes") or []),
                                  list(node.get("figures") or []), bool(node.get("best_of_grid")), node.get("model"), shared))
    return exercises


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0)
    same: bool = a == b
    return same


def _known(job: Job) -> dict[str, Any]:
    """What a job is: task, optimizer and hyperparameters, from its record or its job list."""
    if job.summary is not None:
        return {"task": job.summary.task, "optimizer": job.summary.optimizer, **job.summary.hparams}
    if job.entry is not None:
        return {"task": job.entry.task, "optimizer": job.entry.optimizer, **job.entry.hparams}
    return {}


def _ran_on(job: Job) -> str | None:
    """`cpu` where the job's replicas were logical CPUs, `gpu` where GPUs; None before it ran."""
    names = (job.summary.metrics.get("devices") if job.summary else None) or []
    if not names:
        return None
    return "cpu" if all("CPU" in str(n).upper() for n in names) else "gpu"


def _reduced(row: Row, job: Job, known: dict[str, Any]) -> list[str] | None:
    """Why the job is less than the published set-up ([] if it is the same); None if it ran more
    (more epochs or steps) and so is not the row's job at all."""
    reasons = []
    for key in ("epochs", "steps"):
        if key in row.config and key in known and known[key] != row.config[key]:
            if known[key] > row.config[key]:
                return None
            reasons.append(f"{known[key]} of {row.config[key]} {key}")
    if row.config.get("devices") == "gpu" and _ran_on(job) == "cpu":
        reasons.append("CPU replicas, not GPUs")
    metrics = job.summary.metrics if job.summary else {}
    for key, full in MNIST_SIZES.items():
        if isinstance(metrics.get(key), int) and metrics[key] < full:
            reasons.append(f"{metrics[key]:,} of {full:,} {key.replace('_samples', '')} images")
    return reasons


def _rank(job: Job, reduced: list[str]) -> tuple[bool, bool, int, int]:
    """The job to show for a row: a finished one, the published set-up, then the most epochs/images."""
    finished = job.status in FINISHED
    metrics = job.summary.metrics if job.summary else {}
    epochs = job.summary.hparams.get("epochs", 0) if job.summary else 0
    return (not finished, bool(reduced), -epochs, -(metrics.get("train_samples") or 0))


def find_job(row: Row, jobs: list[Job]) -> tuple[Job | None, list[str]]:
    """Our job for a published row, and why it is not the published set-up ([] if it is)."""
    candidates = []
    for job in jobs:
        known = _known(job)
        if not known or any(k not in SETUP_KEYS and (k not in known or not _same(known[k], v))
                            for k, v in row.config.items() if k != "devices"):
            continue
        reduced = _reduced(row, job, known)
        if reduced is not None:
            candidates.append((_rank(job, reduced), job, reduced))
    if not candidates:
        return None, []
    _, job, reduced = min(candidates, key=lambda c: c[0])
    return job, reduced


def _value(row: Row, job: Job) -> float | None:
    """The row's metric from the job's record, in the row's unit; None where there is none."""
    record = job.record
    assert record is not None, "compare asks only a finished job's"
    epochs_to = _EPOCHS_TO.match(row.metric)
    if epochs_to:
        curve = record.history.get(epochs_to.group(1)) or []
        target = float(epochs_to.group(2))
        return next((float(i + 1) for i, v in enumerate(curve) if v is not None and v >= target), None)
    value = record.train_time_s if row.metric == "train_time_s" else record.metrics.get(row.metric)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) * (100 if row.unit == "%" else 1)


def _holds(row: Row, ours: float | None) -> bool:
    """Whether our value satisfies the published bound; a diverged run (None) is larger than any."""
    if ours is None:
        return row.bound == ">"
    if row.bound == "<":
        return ours < row.value
    if row.bound == ">":
        return ours > row.value
    if "factor" in row.tolerance and row.value > 0 and ours > 0:
        return abs(math.log10(ours / row.value)) <= math.log10(row.tolerance["factor"])
    return abs(ours - row.value) <= row.tolerance.get("absolute", 0)


def printed_precision(value: float) -> float:
    """Half a unit of the last digit the course printed (0.01 -> 0.005, 5.7e-11 -> 5e-13): a number
    that rounds to the published one is never called different."""
    text = repr(float(value)).removesuffix(".0")
    exponent = decimal.Decimal(text).as_tuple().exponent
    return 0.5 * 10.0 ** exponent if isinstance(exponent, int) else 0.0


def _within(row: Row, ours: float) -> bool:
    allowed = row.tolerance["relative"] * abs(row.value) if "relative" in row.tolerance else row.tolerance.get("absolute", 0)
    return abs(ours - row.value) <= max(allowed, printed_precision(row.value)) + 1e-12


def repeats_of(job: Job, jobs: list[Job]) -> list[Job]:
    """The finished jobs of `job`'s configuration, one per seed (a grid's seed-0 job and a repeats
    sweep's are the same run): its repeats, the job first."""
    known = {k: v for k, v in _known(job).items() if k != "seed"}
    found, seeds = [job], {_known(job).get("seed")}
    for other in jobs:
        theirs = _known(other)
        if other.status not in FINISHED or other.record is None or theirs.get("seed") in seeds:
            continue
        if {k for k in theirs if k != "seed"} == set(known) and all(_same(theirs[k], v) for k, v in known.items()):
            found.append(other)
            seeds.add(theirs.get("seed"))
    return found


def compare(row: Row, jobs: list[Job], none: str = "no job") -> Match:
    """Our value for a published row: of its job, or the mean of its job's repeats (other seeds);
    `none`: what to say when no job is the row's."""
    job, reduced = find_job(row, jobs)
    if job is None:
        return Match(row, None, None, Verdict.NOT_RUN, [], none)
    if job.status not in FINISHED:
        return Match(row, job, None, Verdict.NOT_RUN, reduced, job.status.text)
    assert job.record is not None, "a finished job's status is its record's"
    repeats = repeats_of(job, jobs) if not row.bound and not _EPOCHS_TO.match(row.metric) else [job]
    values = [v for j in repeats if j.status == Status.OK and (v := _value(row, j)) is not None]
    if len(repeats) > 1:
        match = _compared(row, job, reduced, statistics.mean(values) if values else None)
        match.repeats, match.values = repeats, values
        return match
    return _compared(row, job, reduced, _value(row, job))


def _compared(row: Row, job: Job, reduced: list[str], ours: float | None) -> Match:
    assert job.record is not None, "a finished job's status is its record's"
    why = "diverged" if job.status == Status.DIVERGED else ""
    if ours is None and _EPOCHS_TO.match(row.metric):
        why = f"not reached in {len(job.record.history.get('test_accuracy') or [])} epochs"
    if reduced:
        return Match(row, job, ours, Verdict.REDUCED, reduced, why)
    if row.bound:
        good = _holds(row, ours) if (ours is not None or why == "diverged") else False
    else:
        good = ours is not None and _within(row, ours)
    return Match(row, job, ours, Verdict.REPRODUCED if good else Verdict.NOT_REPRODUCED, reduced, why)
