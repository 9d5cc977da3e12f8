"""Repeats (issue 31): `repeats=N` runs each configuration with N seeds; `collate --by-config`, the
report and the course tell each configuration as mean ± std over its repeats."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sweeper

from tests.conftest import ROOT, checkout_env, run_cli, write_user_task

# A task of the user's, without TensorFlow: its score moves with the seed, and one repeat diverges
# (hidden=8 with seed 3), as a task says of itself.
MODULE = '''\
from __future__ import annotations

import numpy as np

from sweeper import Outcome


def run(*, hidden: int, seed: int) -> Outcome:
    score = 0.5 + hidden / 256 + 0.05 * np.random.default_rng(seed).normal()
    if hidden == 8 and seed == 3:
        return Outcome(status="diverged", metrics={"score": float("nan")}, history={"loss": [1.0, float("nan")]}, train_time_s=0.0)
    return Outcome(status="ok", metrics={"score": float(score)}, history={"loss": [1.0, 1.0 - score]}, train_time_s=0.0)
'''
TASK = '''\
# @package _global_
hidden: 16
task:
  name: noisy
  objective: score
  direction: maximize
  run:
    _target_: noisy.run
    hidden: ${hidden}
    seed: ${seed}
'''


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    return write_user_task(tmp_path, "noisy", MODULE, TASK)


def sweep(user_dir: Path, *args: str):
    env = checkout_env()
    env["PYTHONPATH"] = f"{user_dir}:{ROOT}"
    flags = [a for a in args if a.startswith("-")]
    return run_cli(str(ROOT / "run.py"), "--config-dir", "conf", *flags, "task=noisy",
                   *(a for a in args if a not in flags), cwd=user_dir, env=env)


def cli(user_dir: Path, *args: str):
    env = checkout_env()
    env["PYTHONPATH"] = f"{user_dir}:{ROOT}"
    return run_cli("-m", "sweeper", *args, cwd=user_dir, env=env)


def scores(out: Path) -> dict[tuple[int, int], dict]:
    """Each job's (hidden, seed) -> its record, read from the files."""
    found = {}
    for path in out.glob("*/result.json"):
        record = json.loads(path.read_text())
        found[(record["hparams"]["hidden"], record["hparams"]["seed"])] = record
    return found


def test_repeats_run_each_configuration_with_its_seeds_and_collate_by_configuration(user_dir: Path) -> None:
    out = user_dir / "grid"
    done = sweep(user_dir, "-m", "hidden=8,64", "repeats=4", f"hydra.sweep.dir={out}")
    assert done.returncode == 0 and "7 ok, 1 diverged" in done.stdout, done.stdout + done.stderr
    records = scores(out)
    assert sorted(records) == [(h, s) for h in (8, 64) for s in range(4)]
    assert all("repeats" not in " ".join(r["overrides"]) for r in records.values())  # a job is one run

    by = cli(user_dir, "collate", str(out), "--by-config")
    assert by.returncode == 0, by.stderr
    table = pd.read_csv(out / "results_by_config.csv")
    assert list(table.hidden) == [8, 64] and list(table.n) == [4, 4] and list(table.seeds) == ["0,1,2,3"] * 2
    for hidden, ok, diverged in ((8, 3, 1), (64, 4, 0)):
        row = table[table.hidden == hidden].iloc[0]
        assert (row.n_ok, row.n_diverged) == (ok, diverged)  # counted apart, not averaged in
        values = [records[(hidden, s)]["metrics"]["score"] for s in range(4) if records[(hidden, s)]["status"] == "ok"]
        assert row.score_mean == pytest.approx(np.mean(values))
        assert row.score_std == pytest.approx(np.std(values, ddof=1))
        half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
        assert (row.score_ci95_low, row.score_ci95_high) == (pytest.approx(np.mean(values) - half),
                                                            pytest.approx(np.mean(values) + half))
    assert "±" in (out / "results_by_config.md").read_text()
    pd.testing.assert_frame_equal(sweeper.results(out, by_config=True), table, check_dtype=False)  # a notebook's call


def test_the_report_ranks_configurations_by_their_mean(user_dir: Path) -> None:
    out = user_dir / "grid"
    assert sweep(user_dir, "-m", "hidden=8,64", "repeats=4", f"hydra.sweep.dir={out}").returncode == 0
    report = cli(user_dir, "report", str(out))
    assert report.returncode == 0, report.stderr
    text = (out / "report" / "report.md").read_text()
    records = scores(out)
    best = [records[(64, s)]["metrics"]["score"] for s in range(4)]
    second = [records[(8, s)]["metrics"]["score"] for s in range(3)]
    line = next(line for line in text.splitlines() if line.startswith("| noisy"))
    assert f"score = {np.mean(best):.3g} ± {np.std(best, ddof=1):.3g} (n=4)" in line
    assert f"hidden=8: {np.mean(second):.3g} ± {np.std(second, ddof=1):.3g} (n=3 of 4)" in line
    assert "95% intervals" in line
    assert "up to 4 seeds each" in text
    assert (out / "report" / "loss_noisy_gd.png").exists()


def test_a_sweep_given_more_repeats_or_resumed_runs_only_the_missing_seeds(user_dir: Path) -> None:
    out = user_dir / "grid"
    assert sweep(user_dir, "-m", "hidden=16,64", "repeats=2", f"hydra.sweep.dir={out}").returncode == 0
    first = {key: record["started"] for key, record in scores(out).items()}
    more = sweep(user_dir, "-m", "hidden=16,64", "repeats=3", f"hydra.sweep.dir={out}")
    assert more.returncode == 0, more.stderr
    assert more.stdout.count("skipped: done") == 4 and more.stdout.count("-> ok") == 2
    assert {key: record["started"] for key, record in scores(out).items() if key in first} == first
    shutil.rmtree(out / "5")  # seed 2 of hidden=64
    resumed = cli(user_dir, "resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("-> ok") == 1 and "seed=2" in resumed.stdout
    assert sorted(scores(out)) == [(h, s) for h in (16, 64) for s in range(3)]


@pytest.mark.parametrize("args, said", [
    (("-m", "repeats=0"), "error: repeats=0: give the number of seeds per configuration, an integer >= 1 (e.g. repeats=5)"),
    (("-m", "repeats=2", "seed=0,1"), "error: repeats=2 and seed=0,1 both give the seeds: keep one"),
    (("repeats=2",), "error: this command is a grid of 2 jobs: add -m"),
    (("-m", "task=linear", "repeats=3"), "error: repeats=3: task linear does not read the seed"),
    (("-m", "hparams_search=ex2_optuna", "repeats=3"), "error: repeats=3: a search runs each trial once"),
])
def test_bad_repeats_are_one_line_and_write_nothing(user_dir: Path, args: tuple[str, ...], said: str) -> None:
    out = user_dir / "refused"
    done = sweep(user_dir, *args, f"hydra.sweep.dir={out}", f"hydra.run.dir={out}")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith(said), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_the_live_page_shows_the_best_configuration_by_its_mean(user_dir: Path) -> None:
    from tests.serving import serving

    out = user_dir / "grid"
    assert sweep(user_dir, "-m", "hidden=8,64", "repeats=4", f"hydra.sweep.dir={out}").returncode == 0
    with serving(out) as server:
        best = json.loads(server.get("/api/sweep").body)["best"]
        figures = json.loads(server.get("/api/figures").body)["figures"]
    row = dict(zip(best["columns"], best["rows"][0]))
    assert row["jobs"] == " ".join(str(n) for n in range(1, 8, 2)) and row["hidden"] == "64"  # seed-first numbering
    assert row["best"].startswith("score = ") and "(n=4)" in row["best"] and "95% intervals" in row["runner-up"]
    assert any(name.endswith("loss_noisy_gd.png") for name in figures)


def test_a_configuration_counts_each_seed_once_and_keys_that_some_rows_lack() -> None:
    """A folder of sweeps with a grid's seed-0 job and a repeats sweep's (the same run twice), and a
    key one optimizer has and the other lacks (NaN): one row each, a seed counted once, an ok one kept."""
    from sweeper.sweep.by_config import by_config, config_points, has_repeats

    table = pd.DataFrame({
        "job": ["grid/0", "seeds/0", "seeds/1", "seeds/2", "grid/1"],
        "task": "softmax", "optimizer": ["gd", "gd", "gd", "gd", "momentum"],
        "lr": 0.5, "momentum": [np.nan, np.nan, np.nan, np.nan, 0.9], "seed": [0, 0, 1, 2, 0],
        "status": ["failed", "ok", "ok", "diverged", "ok"], "test_accuracy": [np.nan, 0.9, 0.8, np.nan, 0.7]})
    assert has_repeats(table)
    rows = by_config(table)
    assert list(rows.optimizer) == ["gd", "momentum"] and list(rows.n) == [3, 1] and list(rows.seeds) == ["0,1,2", "0"]
    assert list(rows.n_ok) == [2, 1] and list(rows.n_diverged) == [1, 0] and "n_failed" not in rows  # seed 0: the ok one
    assert rows.jobs[0] == "seeds/0 seeds/1 seeds/2"
    assert rows.test_accuracy_mean[0] == pytest.approx(0.85) and rows.test_accuracy_std[0] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    assert math.isnan(rows.test_accuracy_std[1]) and math.isnan(rows.test_accuracy_ci95_low[1])  # one repeat: no spread
    points = config_points(table, "test_accuracy")
    assert list(points.status) == ["ok", "ok"] and list(points.n_other) == [0, 0] and points.jobs[1] == ["grid/1"]
