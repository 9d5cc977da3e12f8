"""`python -m sweeper report DIR` on sweeps built from records directly (tests/synthetic.py)."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sweeper.report.groups import fmt_number
from sweeper.sweep.collate import collate
from sweeper.job.record import read_record
from sweeper.job import manifest
from tests import synthetic
from tests.conftest import run_cli


@pytest.fixture
def report_of(sweeper_cli):
    """report_of(sweep): run the command as a user does; return report.md and what it printed."""

    def _report(sweep) -> tuple[str, str]:
        result = sweeper_cli("report", str(sweep))
        assert result.returncode == 0, result.stderr
        return (sweep / "report" / "report.md").read_text(), result.stdout + result.stderr

    return _report


def assert_images(sweep, *names: str) -> None:
    made = sorted(p.name for p in (sweep / "report").glob("*.png"))
    assert made == sorted(names)
    for name in names:
        path = sweep / "report" / name
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
            assert image.format == "PNG"
            assert 400 <= width <= 4000 and 300 <= height <= 4000, (name, image.size)
            assert len(np.unique(np.asarray(image.convert("L")))) > 20, f"{name} is nearly blank"
        assert f"]({name})" in (sweep / "report" / "report.md").read_text()


def section(markdown: str, title: str) -> str:
    """The text under a heading, up to the next heading of any level."""
    start = markdown.index(title)
    rest = markdown[start + len(title):]
    end = re.search(r"^#", rest, flags=re.M)
    return rest[:end.start()] if end else rest


def table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_complete_adam_grid(report_of, tmp_path):
    sweep = tmp_path / "adam"
    jobs = synthetic.adam_grid_sweep(sweep)
    markdown, printed = report_of(sweep)

    assert "Covers **64 of 64 jobs** with a record; 64 jobs: 60 ok, 4 diverged." in markdown
    assert f"wrote {sweep / 'report' / 'report.md'}" in printed
    # The best run is the one with the lowest final loss among those that finished.
    table = collate(sweep)
    best = table[table.status == "ok"].sort_values("final_loss").iloc[0]
    best_row = table_rows(section(markdown, "## Best per optimizer"))[0]
    assert best_row[:3] == ["linear", "adam", best.job]
    assert best_row[3:5] == [f"final_loss = {best.final_loss:.3g}", "minimize"]
    assert best_row[5:8] == [str(best.lr), str(best.beta1), str(best.beta2)]
    # lr x beta2: the best final loss over beta1 in each cell; lr=0.1 with beta2=0.8 diverged.
    pivot = table_rows(section(markdown, "### lr x beta2 -> final_loss (best over beta1)"))
    assert [row[0] for row in pivot] == ["0.0001", "0.001", "0.01", "0.1"]
    assert pivot[3][1] == "diverged"
    cell = table[(table.lr == 0.01) & (table.beta2 == 0.9)].final_loss.min()
    assert pivot[2][2] == f"{cell:.3g}"
    assert "### lr x beta1 -> final_loss (best over beta2)" in markdown
    assert "### beta1 x beta2 -> final_loss (best over lr)" in markdown
    # The 4 diverged runs are listed with the step where they stopped.
    problems = table_rows(section(markdown, "## Jobs missing, failed or diverged"))
    assert len(problems) == 4 and {row[4] for row in problems} == {"diverged"}
    assert problems[0][5] == "loss not finite after step 40"
    # The full table is collate's, and collate's files are written too.
    assert (sweep / "results.md").read_text().strip() in markdown
    assert len(pd.read_csv(sweep / "results.csv")) == len(jobs)
    assert_images(sweep, "heatmap_linear_adam.png", "loss_linear_adam.png", "best_per_value_linear_adam.png")
    # Best per value: each lr's best final loss over beta1 and beta2, as the table's own minimum.
    per_lr = table_rows(section(markdown, "### Best per lr (over beta1, beta2)"))
    ok = table[table.status == "ok"]
    assert [row[0] for row in per_lr] == [fmt_number(v) for v in sorted(table.lr.unique())]
    assert [row[1] for row in per_lr] == [f"{ok[ok.lr == v].final_loss.min():.3g}" for v in sorted(table.lr.unique())]
    assert {row[2] for row in per_lr} == {"16"}


def test_mnist_grid_has_heatmap_and_small_multiples(report_of, tmp_path):
    sweep = tmp_path / "softmax"
    synthetic.softmax_grid_sweep(sweep)
    markdown, _ = report_of(sweep)
    assert "Covers **12 of 12 jobs** with a record; 12 jobs: 12 ok." in markdown
    best = table_rows(section(markdown, "## Best per optimizer"))[0]
    table = collate(sweep)
    top = table.sort_values("test_accuracy", ascending=False).iloc[0]
    assert best[3] == f"test_accuracy = {top.test_accuracy:.4f}" and best[2] == top.job
    pivot = table_rows(section(markdown, "### lr x batch_size -> test_accuracy"))
    assert [row[0] for row in pivot] == ["0.01", "0.1", "0.5"]
    cell = table[(table.lr == 0.01) & (table.batch_size == 256)].test_accuracy.item()
    assert pivot[0][4] == f"{cell:.4f}"
    assert_images(sweep, "heatmap_softmax_gd.png", "loss_softmax_gd.png", "best_per_value_softmax_gd.png",
                  "epochs_accuracy_softmax_gd.png", "epochs_loss_softmax_gd.png")


def test_partial_sweep_says_what_is_missing_and_why(report_of, tmp_path):
    sweep = tmp_path / "partial"
    synthetic.softmax_grid_sweep(sweep, partial=True)
    markdown, printed = report_of(sweep)
    assert f"warning: {sweep / '6' / 'result.json'}: not a valid result record" in printed
    assert ("Covers **6 of 12 jobs** with a record; 12 jobs: 4 ok, 1 diverged, 1 failed, 1 corrupt, 1 missing, "
            "4 not started.") in markdown
    problems = {row[0]: row for row in table_rows(section(markdown, "## Jobs missing, failed or diverged"))}
    assert sorted(problems, key=int) == ["0", "5", "6", "7", "8", "9", "10", "11"]
    assert problems["0"][4:] == ["diverged", "loss not finite after step 8"]
    assert problems["5"][4:] == ["failed", "ResourceExhaustedError: OOM when allocating tensor with shape[64,784]"]
    assert problems["6"][4] == "corrupt" and "not a valid result record" in problems["6"][5]
    assert problems["7"][4:] == ["missing", "no result.json and nobody runs it: stopped before it finished"]
    assert problems["11"][3] == "lr=0.01 batch_size=256"  # known from the job list
    assert problems["11"][4:] == ["not_started", "not started: no job directory yet"]
    pivot = table_rows(section(markdown, "### lr x batch_size -> test_accuracy"))
    assert pivot[0][1:] == ["not started"] * 4                  # lr=0.01
    assert pivot[1][2:] == ["failed", "corrupt", "missing"]     # lr=0.1
    assert pivot[2][1] == "diverged"                            # lr=0.5, batch_size=32
    assert_images(sweep, "heatmap_softmax_gd.png", "loss_softmax_gd.png", "best_per_value_softmax_gd.png", "epochs_softmax_gd.png")


def test_gpu_scaling_table_and_figure(report_of, tmp_path):
    sweep = tmp_path / "gpu"
    synthetic.gpu_sweep(sweep)
    markdown, _ = report_of(sweep)
    rows = table_rows(section(markdown, "### GPU scaling"))
    header = [c.strip() for c in section(markdown, "### GPU scaling").split("\n")[2].strip("|").split("|")]
    assert header == ["gpus", "devices", "runs", "train_time_s", "replicas", "samples_per_s", "speedup",
                      "ideal_speedup", "efficiency"]
    assert {row[1] for row in rows} == {"GPU"}
    by_gpus = {int(row[0]): [float(v) for v in row[2:]] for row in rows}
    times = synthetic.GPU_TIMES
    for gpus, (runs, seconds, replicas, _, speedup, ideal, efficiency) in by_gpus.items():
        assert (runs, seconds, replicas, ideal) == (1, times[gpus], gpus, gpus)
        assert speedup == pytest.approx(times[1] / times[gpus], rel=1e-3)
        assert efficiency == pytest.approx(times[1] / times[gpus] / gpus, rel=1e-3)
    assert_images(sweep, "gpu_scaling_cnn_adam.png", "loss_cnn_adam.png", "epochs_cnn_adam.png")


def test_gpu_scaling_counts_every_gpu_of_a_job_over_several_nodes(report_of, tmp_path):
    sweep = tmp_path / "nodes"
    synthetic.nodes_sweep(sweep)
    markdown, _ = report_of(sweep)
    table = section(markdown, "### GPU scaling")
    header = [c.strip() for c in table.split("\n")[2].strip("|").split("|")]
    assert header[:3] == ["gpus", "devices", "runs"] and header[3] == "nodes"
    rows = {int(row[0]): row for row in table_rows(table)}
    assert sorted(rows) == [4, 8] and [int(rows[g][3]) for g in (4, 8)] == [1, 2]
    speedup = float(rows[8][header.index("speedup")])
    assert speedup == pytest.approx(synthetic.NODE_TIMES[1] / synthetic.NODE_TIMES[2], rel=1e-3)
    assert float(rows[8][header.index("ideal_speedup")]) == 2


def test_search_report_shows_best_trial_and_objective_by_trial(report_of, tmp_path):
    sweep = tmp_path / "optuna"
    trials = [dict(lr=lr, momentum=m) for lr, m in [(0.001, 0.9), (0.3, 0.6), (0.05, 0.95), (0.02, 0.7)]]
    synthetic.optuna_sweep(sweep, trials, n_trials=6)
    markdown, _ = report_of(sweep)
    assert "Covers **4 of 6 jobs**" in markdown and "2 not started" in markdown
    assert "Sweep `optuna`: hydra/sweeper=optuna_search, a search of 6 trials." in markdown
    table = collate(sweep)
    best = table[table.status == "ok"].sort_values("test_accuracy", ascending=False).iloc[0]
    assert f"Best trial: **{best.job}** (job `{best.job}`), test_accuracy = {best.test_accuracy:.4f}" in markdown
    assert "### lr x momentum" not in markdown  # a search is no grid
    assert_images(sweep, "search_softmax_momentum.png", "loss_softmax_momentum.png", "epochs_softmax_momentum.png")


def test_collate_lists_jobs_not_started(tmp_path):
    sweep = tmp_path / "s"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}, {"lr": 0.01}, {"lr": 0.001}], steps=1000)
    synthetic.linear_job(sweep / "0", "gd", lr=0.1)
    table = collate(sweep).set_index("job")
    assert list(table.status) == ["not_started", "not_started", "ok"]  # sorted by lr
    assert table.loc["2", "lr"] == 0.001 and table.loc["2", "steps"] == 1000  # from the job list
    assert "error" not in table.columns


def test_records_of_the_previous_schema_are_read(report_of, tmp_path):
    """A sweep written before job lists and schema 2: its records (no schema_version, direction or
    preset; an unknown field) are collated and ranked, by a direction guessed from the metric."""
    sweep = tmp_path / "old"
    synthetic.softmax_grid_sweep(sweep)
    (sweep / "jobs.json").unlink()
    for path in sweep.glob("*/result.json"):
        data = json.loads(path.read_text())
        for key in ("schema_version", "direction", "preset"):
            del data[key]
        data["a_field_of_the_future"] = 1
        path.write_text(json.dumps(data))
    table = collate(sweep)
    assert len(table) == 12 and set(table.status) == {"ok"}
    record = read_record(sweep / "0" / "result.json")
    assert (record.schema_version, record.direction, record.preset) == (1, None, None)
    markdown, _ = report_of(sweep)
    best = table_rows(section(markdown, "## Best per optimizer"))[0]
    top = table.sort_values("test_accuracy", ascending=False).iloc[0]
    assert best[2] == top.job and best[4] == "maximize"
    assert "No job list (jobs.json) here" in markdown


def test_report_never_imports_tensorflow(tmp_path):
    sweep = tmp_path / "adam"
    synthetic.adam_grid_sweep(sweep)
    code = ("import sys; from sweeper.__main__ import main; rc = main(['report', sys.argv[1]]); "
            "assert 'tensorflow' not in sys.modules, 'imported tensorflow'; sys.exit(rc)")
    result = run_cli("-c", code, str(sweep))
    assert result.returncode == 0, result.stderr


def test_report_refuses_what_is_not_a_sweep(sweeper_cli, tmp_path):
    result = sweeper_cli("report", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "is not a directory" in result.stderr and "Traceback" not in result.stderr
    result = sweeper_cli("report", str(tmp_path))
    assert result.returncode == 2 and "holds no sweep" in result.stderr
    assert not (tmp_path / "report").exists()


def test_report_of_a_folder_of_sweeps(report_of, tmp_path):
    synthetic.gpu_sweep(tmp_path / "gpu")
    synthetic.softmax_grid_sweep(tmp_path / "softmax")
    shutil.rmtree(tmp_path / "softmax" / "11")
    markdown, _ = report_of(tmp_path)
    assert "Covers **14 of 15 jobs** with a record; 15 jobs: 14 ok, 1 not started." in markdown
    assert "## cnn, adam" in markdown and "## softmax, gd" in markdown


def test_each_task_is_ranked_by_its_own_direction(report_of, tmp_path):
    """A `task=linear,softmax` sweep: the best linear job has the lowest loss, the best softmax job
    the highest accuracy, as each record's direction says."""
    sweep = tmp_path / "mixed"
    jobs = [{"lr": 0.1}, {"lr": 0.01}]
    synthetic.write_job_list(sweep, "linear", "gd", jobs, steps=1000)
    listed = manifest.read_manifest(sweep)
    synthetic.write_job_list(tmp_path / "other", "softmax", "gd", jobs, epochs=5)
    for entry in manifest.read_manifest(tmp_path / "other").jobs:
        entry.num, entry.dir = entry.num + 2, str(entry.num + 2)
        listed.jobs.append(entry)
    listed.total = 4
    manifest.write_manifest(sweep, listed)
    for number, hparams in enumerate(jobs):
        synthetic.linear_job(sweep / str(number), "gd", **hparams)
        synthetic.mnist_job(sweep / str(number + 2), "softmax", "gd", **hparams)
    markdown, _ = report_of(sweep)
    best = {row[0]: row for row in table_rows(section(markdown, "## Best per optimizer"))}
    table = collate(sweep).set_index("job")
    assert best["linear"][2] == table[table.task == "linear"].final_loss.idxmin()
    assert best["softmax"][2] == table[table.task == "softmax"].test_accuracy.idxmax()
    assert best["linear"][3:5] == [f"final_loss = {table.final_loss.min():.3g}", "minimize"]
    assert best["softmax"][3:5] == [f"test_accuracy = {table.test_accuracy.max():.4f}", "maximize"]


def test_cpu_replicas_are_reported_as_cpu_replicas_not_gpus(sweeper_cli, tmp_path):
    sweep = tmp_path / "cpu"
    synthetic.gpu_sweep(sweep, devices="cpu")
    result = sweeper_cli("report", str(sweep))
    assert result.returncode == 0, result.stderr
    markdown = (sweep / "report" / "report.md").read_text()
    assert "### Scaling over CPU replicas" in markdown and "GPU scaling" not in markdown
    table = markdown.split("### Scaling over CPU replicas")[1].split("\n\n")[1].splitlines()
    assert [c.strip() for c in table[0].strip("|").split("|")][:3] == ["gpus", "devices", "runs"]
    assert all(line.strip("|").split("|")[1].strip() == "CPU" for line in table[2:])
    assert (sweep / "report" / "gpu_scaling_cnn_adam.png").exists()


def test_a_sweep_of_one_epoch_jobs_has_no_per_epoch_figures(sweeper_cli, tmp_path):
    sweep = tmp_path / "one_epoch"
    jobs = [{"lr": lr, "batch_size": b} for lr in (0.5, 0.1, 0.01) for b in (32, 64, 128, 256)]
    synthetic.write_job_list(sweep, "softmax", "gd", jobs, epochs=1)
    for number, hparams in enumerate(jobs):
        synthetic.mnist_job(sweep / str(number), "softmax", "gd", **hparams, epochs=1)
    result = sweeper_cli("report", str(sweep))
    assert result.returncode == 0, result.stderr
    made = sorted(p.name for p in (sweep / "report").glob("*.png"))
    assert made == ["best_per_value_softmax_gd.png", "heatmap_softmax_gd.png", "loss_softmax_gd.png"]



def test_a_group_whose_jobs_all_failed_is_reported(tmp_path, sweeper_cli):
    """No job of the group has a value of its objective: the report lists them, and draws nothing."""
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.5}, {"lr": 0.1}])
    for number, lr in enumerate((0.5, 0.1)):
        synthetic.write_job(sweep / str(number), "linear", "gd", {"lr": lr}, {"final_loss": None}, {"loss": [1.0]},
                            status="failed", error="ValueError: no data")
    result = sweeper_cli("report", str(sweep))
    assert result.returncode == 0, result.stderr
    text = (sweep / "report" / "report.md").read_text()
    assert "2 jobs: 2 failed" in text and text.count("ValueError: no data") == 4  # its reason, and in the table
    assert "Best per optimizer" not in text


def test_gpu_scaling_of_repeats_gives_the_spread_of_each_counts_times(report_of, tmp_path):
    """Exercise 4 with two seeds per GPU count: the scaling table and figure say how far the times spread."""
    sweep = tmp_path / "gpu_repeats"
    hparams = dict(lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7, batch_size=256, epochs=3)
    times = {(1, 0): 100.0, (2, 0): 60.0, (1, 1): 110.0, (2, 1): 64.0}  # (gpus, seed): seconds, seed-first
    synthetic.write_job_list(sweep, "cnn", "adam", [{"seed": seed, "gpus": gpus} for gpus, seed in times], **hparams)
    for number, ((gpus, seed), seconds) in enumerate(times.items()):
        synthetic.mnist_job(sweep / str(number), "cnn", "adam", train_time_s=seconds, replicas=gpus, **hparams,
                            gpus=gpus, seed=seed)
    markdown, _ = report_of(sweep)
    table = section(markdown, "### GPU scaling")
    header = [c.strip() for c in table.split("\n")[2].strip("|").split("|")]
    rows = {int(row[0]): dict(zip(header, row)) for row in table_rows(table)}
    assert [rows[g]["runs"] for g in (1, 2)] == ["2", "2"]
    assert [float(rows[1][k]) for k in ("train_time_s", "train_time_s_min", "train_time_s_max")] == [105, 100, 110]
    assert float(rows[2]["train_time_s_std"]) == pytest.approx(np.std([60, 64], ddof=1), rel=1e-3)
    assert "Repeats: 2 configurations, up to 2 seeds each" in markdown
    assert_images(sweep, "gpu_scaling_cnn_adam.png", "loss_cnn_adam.png", "epochs_cnn_adam.png")


def test_a_list_valued_hyperparameter_groups_as_its_text(sweeper_cli, tmp_path):
    """A task's `layers=[32,16]` (or `+task.run.sizes=[1,2]`): report, collate --by-config and the
    table treat it as its text, `[32,16]`, not as an unhashable list."""
    sweep = tmp_path / "layers"
    for num, (layers, lr) in enumerate([([32, 16], 0.1), ([32, 16], 0.01), ([64], 0.1), ([64], 0.01)]):
        synthetic.write_job(sweep / str(num), "softmax", "adam", {"lr": lr, "layers": layers, "seed": 0},
                            {"test_accuracy": 0.9 + num / 100}, {"loss": [1.0, 0.5]},
                            overrides=[f"lr={lr}", f"layers=[{','.join(map(str, layers))}]"])
    for command in (["report"], ["collate", "--by-config"]):
        result = sweeper_cli(*command, str(sweep))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    table = pd.read_csv(sweep / "results_by_config.csv")
    assert sorted(table["layers"]) == ["[32,16]", "[32,16]", "[64]", "[64]"]
    assert "[32,16]" in (sweep / "report" / "report.md").read_text()


def test_a_300_character_name_and_a_nul_make_no_traceback(sweeper_cli, tmp_path):
    """A 300-character optimizer name and a NUL in a name or a value: the report is written, its
    figures under names a file can have."""
    sweep = tmp_path / "odd"
    for num, lr in enumerate([0.1, 0.01]):
        synthetic.write_job(sweep / str(num), "softmax", "o" * 300, {"lr": lr, "note": "a\x00b"},
                            {"test_accuracy": 0.9 + num / 100}, {"loss": [1.0, 0.5]})
    synthetic.write_job(sweep / "2", "softmax", "ad\x00am", {"lr": 0.1}, {"test_accuracy": 0.9}, {"loss": [1.0, 0.5]})
    for command in (["report"], ["collate", "--by-config"]):
        result = sweeper_cli(*command, str(sweep))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    figures = sorted((sweep / "report").glob("*.png"))
    assert len(figures) >= 3 and all(len(figure.name.encode()) < 255 for figure in figures)
    assert "loss_softmax_ad_am_" in " ".join(figure.name for figure in figures)
