"""The search sweeper (hydra/sweeper=optuna_search) for real: trials pruned by the median pruner
on MNIST, a search killed half-way and resumed, trials reporting from Slurm jobs, and the bad input
it refuses."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from sweeper.job.trial import JOURNAL_NAME, open_storage
from sweeper.sweep import manifest
from sweeper.report.tables import problems_table, summary_lines
from sweeper.sweep.collate import collate
from sweeper.sweep.jobs import read_sweep
from tests.conftest import ROOT, checkout_env, records, run_cli
from tests.mnist_files import real_mnist_dir
from tests.test_refusals import refused

pytestmark = pytest.mark.slow


def study_of(sweep: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(str(sweep / JOURNAL_NAME)))


@pytest.mark.mnist
def test_median_pruner_stops_the_softmax_trials_that_are_behind(sweeper_cli, tmp_path):
    sweep = tmp_path / "pruned"
    result = run_cli("run.py", "-m", "hparams_search=ex2_optuna", "hydra/sweeper/pruner=median",
                     "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=1",
                     "lr=tag(log, interval(0.00001, 0.1))", "epochs=3", "data.train_samples=1000",
                     "data.test_samples=500", f"data.dir={real_mnist_dir()}", "logging.tensorboard=false",
                     f"hydra.sweep.dir={sweep}", timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = records(sweep, by="number")
    assert sorted(found) == list(range(6))
    pruned = [n for n, record in found.items() if record.status == "pruned"]
    # The pruner's first two trials run to the end; some of the others are pruned, not all.
    assert found[0].status == found[1].status == "ok" and 0 < len(pruned) < 4, {n: r.status for n, r in found.items()}
    for n in pruned:  # its history up to the epoch where it stopped, its metrics from that epoch
        history = found[n].history["test_accuracy"]
        assert 1 <= len(history) < 3 and found[n].metrics["test_accuracy"] == history[-1]
    for n, record in found.items():
        if record.status == "ok":
            assert len(record.history["test_accuracy"]) == 3
    # The study agrees with the records: pruned there, pruned here; its best is the best record's.
    study = study_of(sweep, "ex2_optuna")
    states = {t.number: t.state.name for t in study.trials}
    assert {n for n, state in states.items() if state == "PRUNED"} == set(pruned)
    best = max((r.metrics["test_accuracy"], n) for n, r in found.items() if r.status == "ok")
    assert study.best_trial.number == best[1]
    # The [k/N] lines, the summary, the collated table say `pruned`.
    lines = [line for line in result.stdout.splitlines() if line.startswith("[") and " -> pruned " in line]
    assert len(lines) == len(pruned)
    assert f"sweep: 6 jobs: {6 - len(pruned)} ok, {len(pruned)} pruned in " in result.stdout
    table = collate(sweep)
    assert sorted(table.loc[table.status == "pruned", "job"].astype(int)) == sorted(pruned)
    status = sweeper_cli("status", str(sweep))
    assert status.stdout.strip().endswith(f"6 jobs: {6 - len(pruned)} ok, {len(pruned)} pruned ({sweep})")
    again = sweeper_cli("resume", str(sweep))  # pruned is finished: nothing to run again
    assert again.returncode == 0 and again.stdout.startswith("nothing to resume: 6 jobs:"), again.stdout


def _kill_while_a_trial_runs(command: list[str], sweep: Path, done: int) -> None:
    """Start the search; SIGKILL it (and its jobs) while the trial after the first `done` runs."""
    process = subprocess.Popen(command, cwd=ROOT, env=checkout_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        started = {path.parent.name for path in sweep.glob("*/.attempts")}
        finished = {path.parent.name for path in sweep.glob("*/result.json")}
        if len(finished) >= done and started - finished:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the search ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_killed_search_resumes_its_study(sweeper_cli, tmp_path):
    sweep = tmp_path / "killed"
    _kill_while_a_trial_runs([sys.executable, "run.py", "-m", "hparams_search=ex1_optuna", "hydra.sweeper.n_trials=4",
                              "hydra.sweeper.n_jobs=1", "steps=8000", "logging.tensorboard=false",
                              f"hydra.sweep.dir={sweep}"], sweep, done=2)
    killed = study_of(sweep, "ex1_optuna").trials
    running = [t.number for t in killed if t.state.name == "RUNNING"]
    assert len(running) == 1 and len([t for t in killed if t.state.name == "COMPLETE"]) >= 2
    [dead] = running

    result = sweeper_cli("resume", str(sweep))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"trial {dead} was running when the search stopped: marked failed, asked again" in result.stdout

    trials = study_of(sweep, "ex1_optuna").trials
    assert [t.number for t in trials] == list(range(len(trials)))  # numbers continue
    assert [t.number for t in trials if t.state.name == "FAIL"] == [dead]
    assert len([t for t in trials if t.state.name == "COMPLETE"]) == 4  # the total asked: n_trials
    found = records(sweep, by="number")
    assert sorted(found) == [t.number for t in trials if t.number != dead]
    for n, record in found.items():  # no trial ran twice: one start each, its own point
        assert record.attempts == 1 and record.hparams["lr"] == pytest.approx(trials[n].params["lr"])
    assert len({t.params["lr"] for t in trials}) == len(trials)  # the resumed seeded sampler asks new points
    assert (sweep / str(dead) / ".attempts").read_text().strip() == "1"
    listed = manifest.read_manifest(sweep)
    assert [job.trial for job in listed.jobs] == [t.number for t in trials] and listed.total == len(trials)
    # The best trial, read back from the storage, is the best record's.
    best = min((record.metrics["final_loss"], n) for n, record in found.items())
    assert study_of(sweep, "ex1_optuna").best_trial.number == best[1]
    assert OmegaConf.load(sweep / "optimization_results.yaml").best_trial == best[1]
    # The killed trial's job is `failed`, as its trial is, in status and collate (not `missing`).
    status = sweeper_cli("status", str(sweep))
    assert status.stdout.strip().endswith(f"{len(trials)} jobs: 4 ok, 1 failed ({sweep})"), status.stdout
    table = collate(sweep)
    assert table.loc[table.job.astype(int) == dead, "status"].tolist() == ["failed"]
    jobs = read_sweep(sweep)
    assert summary_lines(jobs)[0] == f"Covers **4 of {len(trials)} jobs** with a record; {len(trials)} jobs: 4 ok, 1 failed."
    assert problems_table(table, jobs.jobs).reason.tolist() == [
        "running when its search was killed: its trial marked failed, its budget asked again"]


def test_a_database_url_holds_the_study_and_the_jobs_report_to_it(tmp_path):
    sweep, database = tmp_path / "sqlite", f"sqlite:///{tmp_path}/search.db"
    result = run_cli("run.py", "-m", "hparams_search=ex1_optuna", f"hydra.sweeper.storage={database}",
                     "hydra.sweeper.n_trials=3", "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1",
                     "steps=100", "logging.tensorboard=false", f"hydra.sweep.dir={sweep}", timeout=200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not (sweep / JOURNAL_NAME).exists()
    study = optuna.load_study(study_name="ex1_optuna", storage=database)
    assert [t.state.name for t in study.trials] == [records(sweep, by="number")[t.number].status.replace("ok", "complete").upper()
                                                   for t in study.trials]
    assert all(t.intermediate_values for t in study.trials)  # every job reported to the database


@pytest.mark.slurm
def test_a_search_on_slurm_prunes_from_the_jobs(tmp_path):
    """Trials run as Slurm jobs and report to the journal in the sweep directory from there. The grid
    sampler's seed puts lr=0.01 first; lr=1e-6 then falls behind it at its first report."""
    sweep = tmp_path / "slurm"
    result = run_cli("run.py", "-m", "hydra/launcher=slurm", "hparams_search=ex1_optuna", "hydra/sweeper/sampler=grid",
                     "hydra.sweeper.sampler.seed=1", "~hydra.sweeper.sampler.n_startup_trials",
                     "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.n_jobs=1",
                     "lr=choice(0.01,0.000001)", "beta1=0.9", "beta2=0.999", "steps=500", "logging.tensorboard=false",
                     f"hydra.sweep.dir={sweep}", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = records(sweep, by="number")
    assert {n: (r.hparams["lr"], r.status) for n, r in found.items()} == {0: (0.01, "ok"), 1: (1e-06, "pruned")}
    assert all("SLURM_JOB_ID" in r.environment for r in found.values())
    assert len(found[1].history["loss"]) < 500
    states = [t.state.name for t in study_of(sweep, "ex1_optuna").trials]
    assert states == ["COMPLETE", "PRUNED"]
    assert "sweep: 2 jobs: 1 ok, 1 pruned in " in result.stdout
    entries = json.loads((sweep / "jobs.json").read_text())["jobs"]
    assert [job["trial"] for job in entries] == [0, 1] and all(job["slurm_job_id"] for job in entries)


def test_a_cmaes_search_on_exercise_1(tmp_path):
    """hydra/sweeper/sampler=cmaes (the cmaes package, in the `optuna` extra): after its random
    start-up trial, Optuna's CMA-ES proposes the trials (they carry its generation)."""
    sweep = tmp_path / "cmaes"
    result = run_cli("run.py", "-m", "hparams_search=ex1_optuna", "hydra/sweeper/sampler=cmaes",
                     "hydra.sweeper.sampler.n_startup_trials=1", "hydra.sweeper.n_trials=4", "steps=200",
                     "logging.tensorboard=false", f"hydra.sweep.dir={sweep}", timeout=200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    trials = study_of(sweep, "ex1_optuna").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert ["cma:generation" in t.system_attrs for t in trials] == [False, True, True, True]
    found = records(sweep, by="number")
    for trial in trials:  # each job trained the point CMA-ES asked, in the preset's space
        assert found[trial.number].hparams["lr"] == pytest.approx(trial.params["lr"])
        assert 1e-4 <= trial.params["lr"] <= 1 and 0.5 <= trial.params["beta1"] <= 0.99
    assert "sweep: 4 jobs: 4 ok in " in result.stdout


def test_the_cmaes_sampler_without_its_package_is_one_line(tmp_path):
    """Where cmaes is not installed (here: hidden from the import system), nothing runs."""
    hide = ("import runpy, sys; sys.modules['cmaes'] = None; sys.argv[0] = sys.argv[1]; del sys.argv[1]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    result = run_cli("-c", hide, str(ROOT / "run.py"), "-m", "hparams_search=ex1_optuna", "hydra/sweeper/sampler=cmaes",
                     cwd=tmp_path, timeout=120)
    assert (result.returncode, result.stderr.strip()) == (2, "error: the cmaes sampler needs the cmaes package: "
                                                          "pip install cmaes, or hydra/sweeper/sampler=tpe")
    assert list(tmp_path.iterdir()) == [], "nothing is written"


@pytest.mark.parametrize("args, line", [
    (["hydra/sweeper/pruner=medain"], "error: unknown pruner 'medain': the pruners are hyperband, median, none, "
     "percentile, successive_halving (hydra/sweeper/pruner=median)"),
    (["hydra/sweeper/sampler=nsga2"], "error: unknown sampler 'nsga2': the samplers are cmaes, grid, random, tpe "
     "(hydra/sweeper/sampler=tpe)"),
    (["hydra/sweeper/sampler=grid", "beta1=choice(0.8,0.9)", "beta2=0.999"],
     "error: the grid sampler cannot list lr (an interval): give values (lr=choice(0.1,0.01)) or another sampler "
     "(hydra/sweeper/sampler=tpe)"),
    (["hydra.sweeper.storage=sqlite:////no/such/dir/search.db"],
     "error: storage sqlite:////no/such/dir/search.db cannot be opened (OperationalError: (sqlite3.OperationalError) "
     "unable to open database file): give hydra.sweeper.storage a database URL Optuna can open "
     "(sqlite:///search.db), or null for a journal file in the sweep directory"),
])
def test_bad_search_input_is_one_line_and_nothing_runs(tmp_path, args, line):
    assert refused(tmp_path, "-m", "hparams_search=ex1_optuna", *args) == line
