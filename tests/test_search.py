"""Search beyond grids: the Optuna presets in conf/hparams_search/, and a real search."""
from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from sweeper.hparams import applicable_hparams, validate
from sweeper.sweep.collate import collate
from sweeper.job.record import read_record
from sweeper.job import manifest
from tests.conftest import run_cli

OPTUNA = "hydra_plugins.sweeper_plugins.optuna_search.OptunaSweeper"  # the project's, on Optuna >= 4
CHECKED = "hydra_plugins.sweeper_plugins.checked_sweeper.CheckedSweeper"


def test_grid_sweeper_stays_the_default(compose_cfg):
    assert compose_cfg().hydra.sweeper._target_ == CHECKED
    assert compose_cfg("experiment=ex1_adam").hydra.sweeper._target_ == CHECKED


def assert_a_space_of_valid_jobs(compose_cfg, preset: str) -> dict:
    """The preset's search space, as the search parses it: only hyperparameters that apply to its
    jobs, and each interval's ends jobs the registry accepts (a trial is never refused)."""
    from sweeper.sweep.search import search_space

    cfg = compose_cfg(f"hparams_search={preset}")
    space, _, fixed = search_space([f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()], None)
    assert fixed == [] and set(space) <= set(applicable_hparams(cfg))
    for key, distribution in space.items():
        for end in (distribution.low, distribution.high):
            validate(compose_cfg(f"hparams_search={preset}", f"{key}={end}"))
    return space


def test_ex1_optuna_searches_adam_on_the_linear_task(compose_cfg):
    cfg = compose_cfg("hparams_search=ex1_optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == OPTUNA and sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert (cfg.task.name, cfg.optimizer.name, sweeper.direction) == ("linear", "adam", "minimize")
    space = assert_a_space_of_valid_jobs(compose_cfg, "ex1_optuna")
    assert set(space) == {"lr", "beta1", "beta2"} and space["lr"].log  # lr over its orders of magnitude


def test_ex2_optuna_maximises_the_task_objective(compose_cfg):
    cfg = compose_cfg("hparams_search=ex2_optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == OPTUNA and (cfg.task.name, cfg.optimizer.name) == ("softmax", "adam")
    assert sweeper.direction == cfg.task.direction  # the task's: maximize test_accuracy for softmax
    assert (cfg.task.objective, sweeper.direction) == ("test_accuracy", "maximize")
    space = assert_a_space_of_valid_jobs(compose_cfg, "ex2_optuna")
    assert set(space) == {"lr", "beta1", "beta2"} and space["lr"].log


def test_ex3_40epochs_asha_is_the_40_epoch_grid_with_successive_halving(compose_cfg):
    search, grid = compose_cfg("hparams_search=ex3_40epochs_asha"), compose_cfg("experiment=ex3_40epochs")
    sweeper = search.hydra.sweeper
    assert sweeper._target_ == OPTUNA and sweeper.sampler._target_ == "optuna.samplers.GridSampler"
    assert sweeper.pruner._target_ == "optuna.pruners.SuccessiveHalvingPruner" and sweeper.direction == "maximize"
    # The same jobs as the grid preset: its grid, task, optimizer and epochs; all of them asked.
    assert dict(sweeper.params) == dict(grid.hydra.sweeper.params)
    assert (search.task, search.optimizer, search.epochs) == (grid.task, grid.optimizer, grid.epochs)
    assert sweeper.n_trials == 18


def test_the_pruner_is_none_unless_chosen(compose_cfg):
    assert compose_cfg("hparams_search=ex1_optuna").hydra.sweeper.pruner._target_ == "optuna.pruners.NopPruner"
    median = compose_cfg("hparams_search=ex1_optuna", "hydra/sweeper/pruner=median").hydra.sweeper.pruner
    assert median._target_ == "optuna.pruners.MedianPruner" and median.n_startup_trials == 5


@pytest.mark.slow
def test_a_few_optuna_trials_collate_and_report(sweeper_cli, tmp_path):
    sweep = tmp_path / "search"
    result = run_cli("run.py", "-m", "hparams_search=ex1_optuna", "hydra.sweeper.n_trials=4",
                     f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    records = [read_record(sweep / str(n) / "result.json") for n in range(4)]
    assert len({r.hparams["lr"] for r in records}) == 4  # each trial its own point
    for record in records:
        assert 1e-4 <= record.hparams["lr"] <= 1.0 and 0.5 <= record.hparams["beta1"] <= 0.99
    # Optuna's own best is the best record: the job returned its final loss to the sweeper.
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    losses = [r.metrics["final_loss"] for r in records]
    assert best.best_value == min(losses)
    assert best.best_params.lr == records[losses.index(min(losses))].hparams["lr"]

    report = sweeper_cli("report", str(sweep))
    assert report.returncode == 0, report.stderr
    markdown = (sweep / "report" / "report.md").read_text()
    winner = losses.index(min(losses))
    assert "Covers **4 of 4 jobs** with a record; 4 jobs: 4 ok. Sweep `search`: hydra/sweeper=optuna_search, a search of 4 trials." in markdown
    assert f"Best trial: **{winner}** (job `{winner}`), final_loss = {min(losses):.3g}" in markdown
    assert (sweep / "report" / "search_linear_adam.png").stat().st_size > 10_000
    table = collate(sweep)
    assert len(table) == 4 and (table.status == "ok").all()
    assert pd.read_csv(sweep / "results.csv").shape[0] == 4
    listed = manifest.read_manifest(sweep)  # every trial in the job list, as asked
    assert (listed.search, listed.total, [job.trial for job in listed.jobs]) == (True, 4, [0, 1, 2, 3])
    assert [job.hparams["lr"] for job in listed.jobs] == [r.hparams["lr"] for r in records]


def test_the_search_space_is_hydras_override_syntax():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from sweeper.sweep.search import search_space

    space, listed, fixed = search_space(["lr=tag(log, interval(0.0001, 1.0))", "beta1=interval(0.5, 0.99)",
                                         "batch_size=range(16, 65, 16)", "optimizer=choice(adam, gd)", "steps=10",
                                         "beta1=0.9"], None)  # a later fixed value replaces a key's space
    assert space == {"lr": FloatDistribution(0.0001, 1.0, log=True), "batch_size": IntDistribution(16, 64, step=16),
                     "optimizer": CategoricalDistribution(["adam", "gd"])}
    assert listed == {"batch_size": [16, 32, 48, 64], "optimizer": ["adam", "gd"]}  # what a grid lists
    assert fixed == ["steps=10", "beta1=0.9"]
