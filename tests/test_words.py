"""Counts in English (`1 job`, `2 jobs`), in the helper and in what the user reads."""
from __future__ import annotations

from sweeper.job.status import Status, summary
from sweeper.words import counted
from tests import synthetic


def test_counted():
    assert [counted(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
    assert counted(1, "GPU") == "1 GPU" and counted(4, "Slurm task") == "4 Slurm tasks"
    assert counted(2, "child", "children") == "2 children"
    assert summary([Status.OK]) == "1 job: 1 ok"


def test_collate_of_a_one_job_sweep_says_1_job(sweeper_cli, tmp_path):
    sweep = tmp_path / "one"
    synthetic.write_job_list(sweep, "linear", "adam", [{"lr": 0.01}])
    synthetic.linear_job(sweep / "0", "adam", lr=0.01)
    result = sweeper_cli("collate", str(sweep))
    assert result.returncode == 0, result.stderr
    assert f"\n1 job; wrote {sweep / 'results.csv'}" in result.stdout
    status = sweeper_cli("status", str(sweep))
    assert status.stdout.strip().endswith(f"1 job: 1 ok ({sweep})"), status.stdout


def test_the_scaling_legend_is_english():
    from sweeper.report.course_figures import _ideal_label

    assert _ideal_label("ours (CPU replicas)") == "ideal, from our first point"
    assert _ideal_label("published (GPUs)") == "ideal, from the published first point"
