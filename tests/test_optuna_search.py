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

from sweeper.trial import JOURNAL_NAME, open_storage
from sweeper.job import manifest
from sweeper.sweep.collate import collate
from tests.conftest import ROOT, checkout_env, records, refused, run_cli
from tests.mnist_files import real_mnist_dir

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


def _stop_while_a_trial_runs(command: list[str], sweep: Path, done: int, sig: signal.Signals) -> int:
    """Start the search; send `sig` to it and its jobs (SIGINT: a terminal's Ctrl-C) while the trial
    after the first `done` runs. Returns the exit status."""
    process = subprocess.Popen(command, cwd=ROOT, env=checkout_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        started = {path.parent.name for path in sweep.glob("*/.attempts")}
        finished = {path.parent.name for path in sweep.glob("*/result.json")}
        if len(finished) >= done and started - finished:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the search ended before it could be stopped"
    os.killpg(process.pid, sig)
    return process.wait()


def _search(sweep: Path) -> list[str]:
    return [sys.executable, "run.py", "-m", "hparams_search=ex1_optuna", "hydra.sweeper.n_trials=4",
            "hydra.sweeper.n_jobs=1", "steps=20000", "logging.tensorboard=false", f"hydra.sweep.dir={sweep}"]


def _resumed_to_the_end(sweeper_cli, sweep: Path, stopped: int) -> None:
    """`resume` runs the stopped trial again to its end and asks the rest: every trial complete, each
    job `ok` with its trial's point, the stopped one over two attempts, status and collate agreeing."""
    result = sweeper_cli("resume", str(sweep))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"search ex1_optuna: {stopped} of 4 trials done, 1 to finish, asking {3 - stopped} more" in result.stdout
    assert "sweep: 4 jobs: " in result.stdout and "failed" not in result.stdout
    trials = study_of(sweep, "ex1_optuna").trials
    assert [(t.number, t.state.name) for t in trials] == [(n, "COMPLETE") for n in range(4)]
    found = records(sweep, by="number")
    assert sorted(found) == [0, 1, 2, 3] and {r.status for r in found.values()} == {"ok"}
    for n, record in found.items():  # each trial's own point; only the stopped one started twice
        assert record.attempts == (2 if n == stopped else 1) and record.hparams["lr"] == pytest.approx(trials[n].params["lr"])
        assert record.metrics["final_loss"] == pytest.approx(trials[n].value)
    assert len({t.params["lr"] for t in trials}) == 4  # the resumed seeded sampler asks new points
    listed = manifest.read_manifest(sweep)
    assert [job.trial for job in listed.jobs] == [0, 1, 2, 3] and listed.total == 4
    best = min((record.metrics["final_loss"], n) for n, record in found.items())
    assert study_of(sweep, "ex1_optuna").best_trial.number == best[1]
    assert OmegaConf.load(sweep / "optimization_results.yaml").best_trial == best[1]
    status = sweeper_cli("status", str(sweep))
    assert status.stdout.strip().endswith(f"4 jobs: 4 ok ({sweep})"), status.stdout
    assert collate(sweep).status.tolist() == ["ok"] * 4
    again = sweeper_cli("resume", str(sweep))
    assert again.returncode == 0 and again.stdout.startswith("nothing to resume: 4 jobs: 4 ok"), again.stdout


def test_a_killed_search_resumes_its_study(sweeper_cli, tmp_path):
    sweep = tmp_path / "killed"
    _stop_while_a_trial_runs(_search(sweep), sweep, done=2, sig=signal.SIGKILL)
    killed = study_of(sweep, "ex1_optuna").trials
    assert [t.state.name for t in killed] == ["COMPLETE", "COMPLETE", "RUNNING"]
    _resumed_to_the_end(sweeper_cli, sweep, stopped=2)


@pytest.mark.parametrize("done", [0, 1])  # Ctrl-C in the first trial (before any ended), and in the second
def test_a_search_stopped_by_ctrl_c_resumes_every_trial_to_its_end(sweeper_cli, tmp_path, done):
    sweep = tmp_path / "stopped"
    assert _stop_while_a_trial_runs(_search(sweep), sweep, done=done, sig=signal.SIGINT) == 130
    stopped = study_of(sweep, "ex1_optuna").trials
    assert [t.state.name for t in stopped] == ["COMPLETE"] * done + ["RUNNING"]
    assert records(sweep, by="number")[done].status == "interrupted"
    _resumed_to_the_end(sweeper_cli, sweep, stopped=done)


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
    assert [job["trial"] for job in entries] == [0, 1] and all(job["scheduler_job_id"] for job in entries)


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
