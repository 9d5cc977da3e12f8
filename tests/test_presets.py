"""Every preset composes and runs for real, with tiny sizes: one multirun over all the presets of
conf/experiment/ (`experiment=glob(*)`, one job each, with the preset's own values), and each search
of conf/hparams_search/ for two trials."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import ROOT, preset, run_cli
from tests.mnist_files import write_mnist

pytestmark = pytest.mark.slow

TRAIN, TEST = 64, 32
# Tiny sizes on the command line: they win over every preset's own values.
TINY = {"steps": 20, "epochs": 1, "data.train_samples": TRAIN, "data.test_samples": TEST,
        "logging.tensorboard": False}
EXPERIMENTS = sorted(path.stem for path in (ROOT / "conf" / "experiment").glob("*.yaml"))
SEARCHES = sorted(path.stem for path in (ROOT / "conf" / "hparams_search").glob("*.yaml"))


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("mnist"), train=TRAIN, test=TEST)


def multirun(sweep: Path, mnist: Path, *overrides: str, leave_out: tuple[str, ...] = ()):
    tiny = [f"{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in TINY.items()
            if key not in leave_out]
    return run_cli("run.py", "-m", *overrides, *tiny, f"data.dir={mnist}", f"hydra.sweep.dir={sweep}",
                   timeout=240)


def job_records(sweep: Path) -> dict[str, dict]:
    """Every job directory of the sweep (sweep/<n>/) -> its result.json."""
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir() and path.name.isdigit())
    return {path.name: json.loads((path / "result.json").read_text()) for path in jobs}


def test_every_experiment_preset_runs_one_job_with_its_own_values(tmp_path, mnist):
    assert len(EXPERIMENTS) >= 11, EXPERIMENTS
    sweep = tmp_path / "presets"
    result = multirun(sweep, mnist, "experiment=glob(*)")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # One job per preset: the sweep's grid is the command line's; the presets' own grids
    # (hydra.sweeper.params: 4 to 192 jobs each) are not expanded.
    records = job_records(sweep)
    assert sorted(records, key=int) == [str(n) for n in range(len(EXPERIMENTS))]
    by_preset = {}
    for record in records.values():
        [chosen] = [o.split("=", 1)[1] for o in record["overrides"] if o.startswith("experiment=")]
        by_preset[chosen] = record
    assert sorted(by_preset) == EXPERIMENTS

    for name, record in by_preset.items():
        values, task, optimizer = preset("experiment", name)
        hparams, metrics = record["hparams"], record["metrics"]
        assert (name, record["status"]) == (name, "ok"), record.get("error")
        assert (name, record["task"], record["optimizer"]) == (name, task, optimizer)
        assert record["preset"] == f"experiment={name}" and record["schema_version"] == 2
        # The preset's values apply, but for those the command line sets (ex3_40epochs, ex4_gpus: 40 epochs).
        for key, value in values.items():
            expected = TINY.get(key, value)
            if key in hparams:
                assert (name, key, hparams[key]) == (name, key, expected)
        assert math.isfinite(metrics[record["objective"]])
        if task == "linear":
            assert hparams["steps"] == 20 and len(record["history"]["loss"]) == 20
        else:  # MNIST: the tiny files, one epoch
            assert hparams["epochs"] == 1 and len(record["history"]["test_accuracy"]) == 1
            assert (metrics["train_samples"], metrics["test_samples"]) == (TRAIN, TEST)

    # ex4_gpus picks the Slurm launcher in its file, but the launcher of a multirun is the primary
    # config's: every preset ran in this process, ex4_gpus with the default gpus=0 (its grid 1,2,4
    # is not expanded), on one CPU replica.
    launcher = OmegaConf.load(sweep / "multirun.yaml").hydra.launcher._target_
    assert launcher == "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    assert not (sweep / ".submitit").exists()
    ex4 = by_preset["ex4_gpus"]
    assert ex4["hparams"]["gpus"] == 0 and ex4["metrics"]["replicas"] == 1
    assert ex4["hparams"]["batch_size"] == 16 and ex4["hparams"]["lr"] == pytest.approx(1e-4)


def _bounds(spec: str) -> tuple[float, float]:
    """`tag(log, interval(0.0001, 1.0))` -> (0.0001, 1.0)."""
    low, high = re.search(r"interval\(\s*([^,]+),\s*([^)]+)\)", spec).groups()
    return float(low), float(high)


@pytest.mark.parametrize("name", SEARCHES)
def test_each_search_preset_runs_two_trials(tmp_path, mnist, name):
    sweep = tmp_path / name
    _, task, optimizer = preset("hparams_search", name)
    # A search's trials all train one task: a size it does not take is refused, as on a grid.
    result = multirun(sweep, mnist, f"hparams_search={name}", "hydra.sweeper.n_trials=2",
                      leave_out=("epochs",) if task == "linear" else ("steps",))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    searched = OmegaConf.load(ROOT / "conf" / "hparams_search" / f"{name}.yaml").hydra.sweeper.params

    records = job_records(sweep)
    assert sorted(records) == ["0", "1"]
    for record in records.values():
        assert record["status"] == "ok", record.get("error")
        assert (record["task"], record["optimizer"]) == (task, optimizer)
        for key, spec in searched.items():
            if "interval" in spec:
                low, high = _bounds(spec)
                assert low <= record["hparams"][key] <= high
            else:  # a grid's listed values
                assert record["hparams"][key] in [float(value) for value in spec.split(",")]
    assert len({record["hparams"]["lr"] for record in records.values()}) == 2  # each trial its own point

    # Optuna got each job's objective, in the task's direction: its best is the best record's.
    objective = {record["objective"] for record in records.values()}.pop()
    values = [record["metrics"][objective] for record in records.values()]
    direction = OmegaConf.load(ROOT / "conf" / "task" / f"{task}.yaml").task.direction
    best_of = {"minimize": min, "maximize": max}[direction]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(best_of(values))
