"""Counts in English (`1 job`, `2 jobs`), in the helper and in what the user reads; the commands
the user is told to type, shell-quoted."""
from __future__ import annotations

import os
import subprocess
import sys

from sweeper.status import Status, summary
from sweeper.words import command, counted, sweeper_command
from tests import synthetic
from tests.conftest import checkout_env, run_cli


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


def test_a_command_is_shell_quoted_and_a_plain_one_printed_as_it_is():
    assert sweeper_command("collate", "outputs/multirun/2024-01-01_00-00-00") == \
        "python -m sweeper collate outputs/multirun/2024-01-01_00-00-00"
    assert sweeper_command("resume", "my sweep") == "python -m sweeper resume 'my sweep'"
    assert command("scancel", "91", "92") == "scancel 91 92"
    assert command("cd", "$(rm -rf x)") == "cd '$(rm -rf x)'"


def test_the_printed_collate_and_resume_lines_paste_safely(tmp_path):
    """A sweep directory with a space and `$(...)` in its name: its last line's command, pasted into
    a shell, collates that sweep and runs nothing else."""
    sweep = tmp_path / "my sweep $(touch pwned)"
    out = run_cli("run.py", "-m", "lr=0.1,0.01", "steps=20", f"hydra.sweep.dir='{sweep}'")
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("sweep: "))
    pasted = line.split("; collate: ", 1)[1]
    assert pasted == f"python -m sweeper collate '{sweep}'"
    env = checkout_env()
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env['PATH']}"  # `python`: this interpreter
    done = subprocess.run(["bash", "-c", pasted], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (sweep / "results.csv").exists() and not (tmp_path / "pwned").exists()
