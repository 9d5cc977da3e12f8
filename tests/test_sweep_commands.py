"""The commands on a sweep's folder (`python -m sweeper collate|report|status`) given a job's
folder or a folder of folders, and the status table of a local sweep."""
from __future__ import annotations

import pytest

from tests import synthetic


@pytest.fixture
def softmax_sweep(tmp_path):
    sweep = tmp_path / "outputs" / "x"
    sweep.mkdir(parents=True)
    synthetic.softmax_grid_sweep(sweep)
    return sweep


@pytest.mark.parametrize("command", ["collate", "report", "status"])
def test_a_job_of_a_sweep_is_refused_naming_the_sweep(sweeper_cli, softmax_sweep, command):
    result = sweeper_cli(command, str(softmax_sweep / "0"))
    assert result.returncode == 2
    assert "is one job of the sweep" in result.stderr and str(softmax_sweep.resolve()) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (softmax_sweep / "0" / "report").exists() and not (softmax_sweep / "0" / "results.csv").exists()


def test_report_of_a_folder_with_records_only_deep_below_is_refused(sweeper_cli, softmax_sweep):
    outputs = softmax_sweep.parent
    deep = outputs.parent / "deep"
    (deep / "multirun").mkdir(parents=True)
    softmax_sweep.rename(deep / "multirun" / "x")
    result = sweeper_cli("report", str(deep))
    assert result.returncode == 2
    assert "holds no sweep" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (deep / "report").exists()
    assert sweeper_cli("report", str(deep / "multirun")).returncode == 0  # a folder of sweeps


@pytest.fixture
def status_lines(sweeper_cli):
    """status_lines(sweep): the lines of the status table of `python -m sweeper status SWEEP`."""

    def _lines(sweep) -> list[str]:
        result = sweeper_cli("status", str(sweep))
        assert result.returncode == 0, result.stderr
        return result.stdout.split("\n\n")[0].splitlines()

    return _lines


def test_status_of_a_local_sweep_lists_overrides_by_job_number(status_lines, softmax_sweep):
    lines = status_lines(softmax_sweep)
    assert lines[0].split() == ["job", "status", "overrides"]  # no Slurm columns: it never went to Slurm
    assert [line.split()[0] for line in lines[1:]] == [str(n) for n in range(12)]
    assert lines[12].split()[1:] == ["ok", "lr=0.01", "batch_size=256"]


def test_status_without_a_job_list_reads_overrides_from_the_jobs(status_lines, softmax_sweep):
    (softmax_sweep / "jobs.json").unlink()
    (softmax_sweep / "12").mkdir()
    (softmax_sweep / "12" / ".hydra").mkdir()
    (softmax_sweep / "12" / ".hydra" / "overrides.yaml").write_text("- lr=0.2\n- batch_size=16\n")
    lines = status_lines(softmax_sweep)
    assert [line.split()[0] for line in lines[1:]] == [str(n) for n in range(13)]  # 2 before 10
    assert lines[12].split()[1:] == ["ok", "epochs=5", "batch_size=256", "lr=0.01"]  # from the record
    assert lines[13].split()[1:] == ["missing", "lr=0.2", "batch_size=16"]  # from .hydra/overrides.yaml



@pytest.mark.parametrize("command", ["collate", "report"])
def test_a_folder_that_is_not_a_sweep_is_refused_and_not_written(sweeper_cli, tmp_path, command):
    """`collate /tmp`: one line, exit 2, nothing written, other programs' files not read."""
    other = tmp_path / "other-program"
    (other / "cache" / "deep").mkdir(parents=True)
    (other / "cache" / "deep" / "result.json").write_text("not ours")  # a record deep below is no sweep
    (tmp_path / "notes.txt").write_text("x")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = sweeper_cli(command, str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {tmp_path} holds no sweep") and len(result.stderr.strip().splitlines()) == 1
    assert "not a valid result record" not in result.stderr and result.stdout == ""
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("command", ["collate", "report"])
def test_a_folder_of_sweeps_means_sweeps_only(sweeper_cli, softmax_sweep, command):
    """`report outputs`: refused, naming outputs/multirun; a folder of sweeps leaves single runs out."""
    outputs = softmax_sweep.parent
    multirun = outputs / "multirun"
    multirun.mkdir()
    softmax_sweep.rename(multirun / "x")
    run = outputs / "runs" / "2024-01-01_00-00-00"
    synthetic.linear_job(run, "gd", lr=0.1)
    (run / ".hydra").mkdir(exist_ok=True)
    (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  run:\n    dir: x\n  mode: RUN\n")
    result = sweeper_cli(command, str(outputs))
    assert result.returncode == 2
    assert "holds no sweep, only sweeps deeper" in result.stderr and f"(such as {multirun})" in result.stderr
    assert not (outputs / "results.csv").exists() and not (outputs / "report").exists()
    run.rename(multirun / "a-single-run")  # beside the sweeps: left out
    result = sweeper_cli(command, str(multirun))
    assert result.returncode == 0, result.stderr
    table = (multirun / "results.csv").read_text()
    assert "a-single-run" not in table and "x/0," in table


def test_a_folder_of_sweeps_and_other_things_is_refused(sweeper_cli, softmax_sweep):
    """The system's temporary folder may hold sweeps beside other programs' folders: not a folder of sweeps."""
    (softmax_sweep.parent / "another-program" / "cache").mkdir(parents=True)
    result = sweeper_cli("collate", str(softmax_sweep.parent))
    assert result.returncode == 2 and "holds sweeps and other folders" in result.stderr
    assert not (softmax_sweep.parent / "results.csv").exists()


@pytest.fixture
def sweep_of_150(tmp_path):
    """150 linear jobs: 140 ok, 5 diverged, 5 not started."""
    sweep = tmp_path / "big"
    jobs = [{"lr": 0.1, "seed": number} for number in range(150)]
    synthetic.write_job_list(sweep, "linear", "gd", jobs, steps=5)
    for number, hparams in enumerate(jobs[:145]):
        synthetic.linear_job(sweep / str(number), "gd", steps=5, diverge_at=3 if number % 29 == 28 else None, **hparams)
    return sweep


def test_status_of_a_big_sweep_lists_the_jobs_that_did_not_end_ok(sweeper_cli, sweep_of_150):
    result = sweeper_cli("status", str(sweep_of_150))
    assert result.returncode == 0, result.stderr
    table, summary = result.stdout.split("\n\n")
    lines = table.splitlines()
    assert [line.split()[:2] for line in lines[1:-1]] == (
        [[str(n), "diverged"] for n in (28, 57, 86, 115, 144)] + [[str(n), "not_started"] for n in range(145, 150)])
    assert lines[-1] == "140 more jobs not listed (140 of them ok): `--all` lists every job"
    assert summary.startswith("150 jobs: 140 ok, 5 diverged, 5 not started")
    every = sweeper_cli("status", str(sweep_of_150), "--all").stdout.split("\n\n")[0].splitlines()
    assert len(every) == 151 and "not listed" not in every[-1]


def test_report_of_a_sweep_none_of_whose_jobs_started_is_refused(sweeper_cli, tmp_path):
    """A job list and no job directory: nothing to report (the walk stops at the first job directory)."""
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "adam", [{"lr": 0.1}, {"lr": 0.2}])
    (sweep / "index").mkdir()
    result = sweeper_cli("report", str(sweep))
    assert result.returncode == 2 and result.stderr == f"error: no job directories under {sweep}: give the sweep directory (hydra.sweep.dir)\n"
    synthetic.linear_job(sweep / "1", "adam", lr=0.2)
    assert sweeper_cli("report", str(sweep)).returncode == 0


def _single_run(run_dir, lr):
    """A run without -m as Hydra leaves it (`mode: RUN`), with its record."""
    synthetic.linear_job(run_dir, "gd", lr=lr)
    (run_dir / ".hydra" / "hydra.yaml").write_text("hydra:\n  run:\n    dir: x\n  mode: RUN\n")


@pytest.mark.parametrize("command", ["collate", "report"])
def test_a_folder_of_single_runs_is_read_as_one_table(sweeper_cli, tmp_path, command):
    """Hydra's outputs/runs, or several hydra.run.dirs under one folder: each run a row."""
    runs = tmp_path / "outputs" / "runs"
    _single_run(runs / "2024-01-01_00-00-00", 0.1)
    _single_run(runs / "2024-01-02_00-00-00", 0.01)
    result = sweeper_cli(command, str(runs))
    assert result.returncode == 0, result.stderr
    table = (runs / "results.csv").read_text()
    assert "2024-01-01_00-00-00," in table and "2024-01-02_00-00-00," in table
    assert command == "collate" or (runs / "report" / "report.md").exists()


@pytest.mark.parametrize("stray", ['{"accuracy": 0.9}', "[1, 2]", "not ours"])
def test_a_stray_result_json_is_no_job(sweeper_cli, softmax_sweep, tmp_path, stray):
    """Another program's result.json is no job: a folder holding only such files is refused, and
    one beside a sweep's jobs is no row; a record of ours that is damaged is still a job (corrupt)."""
    other = tmp_path / "other"
    (other / "a").mkdir(parents=True)
    (other / "a" / "result.json").write_text(stray)
    (other / "result.json").write_text(stray)
    result = sweeper_cli("collate", str(other))
    assert result.returncode == 2 and "holds no sweep" in result.stderr
    assert not (other / "results.csv").exists()
    (softmax_sweep / "jobs.json").unlink()  # the job directories alone say what the jobs are
    (softmax_sweep / "notes").mkdir()
    (softmax_sweep / "notes" / "result.json").write_text(stray)
    (softmax_sweep / "torn").mkdir()
    (softmax_sweep / "torn" / "result.json").write_text('{"status": "ok", "task": "softm')
    result = sweeper_cli("collate", str(softmax_sweep))
    assert result.returncode == 0, result.stderr
    rows = (softmax_sweep / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 13 and not any(row.startswith("notes,") for row in rows)
    assert any(row.startswith("torn,") and "corrupt" in row for row in rows)


@pytest.mark.parametrize("command", ["collate", "report"])
def test_outputs_names_outputs_multirun(sweeper_cli, softmax_sweep, command):
    """`collate outputs`, where outputs holds outputs/multirun, single runs in outputs/runs and a sweep
    run into outputs/x (hydra.sweep.dir): one line naming outputs/multirun, nothing written."""
    outputs = softmax_sweep.parent
    multirun = outputs / "multirun"
    synthetic.softmax_grid_sweep(multirun / "2024-01-01_00-00-00")
    _single_run(outputs / "runs" / "2024-01-01_00-00-00", 0.1)
    result = sweeper_cli(command, str(outputs))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"give a folder of sweeps (such as {multirun})" in result.stderr and f"(such as {softmax_sweep})" in result.stderr
    assert not (outputs / "results.csv").exists() and not (outputs / "report").exists()
    softmax_sweep.rename(multirun / "x")
    result = sweeper_cli(command, str(outputs))
    assert result.returncode == 2 and f"only sweeps deeper: give a sweep directory or a folder of sweeps (such as {multirun})" in result.stderr
    assert sweeper_cli(command, str(multirun)).returncode == 0
