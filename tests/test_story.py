"""What a user meets after a sweep: commands given a job's folder or a folder of folders, an
interrupted job's record, the status table of a local sweep, TensorBoard names and report figures."""
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


def test_saved_history_is_the_curves_of_the_last_saved_epoch(tmp_path):
    import json

    from sweeper.training import checkpoint

    assert checkpoint.saved_history(tmp_path) == ({}, None)
    (tmp_path / "state").mkdir()
    counters = {"loss": [2.0, 1.0], "loss_steps": [5, 10], "train_loss": [1.1], "test_time_s": 0.4,
                "samples_seen": 320, "fit_time_s": 3.5}
    (tmp_path / "state" / "progress.json").write_text(json.dumps({"epoch": 1, "checkpoint": "ckpt-1",
                                                                  "counters": counters}))
    assert checkpoint.saved_history(tmp_path) == ({"loss": [2.0, 1.0], "loss_steps": [5, 10], "train_loss": [1.1]}, 3.5)


def test_a_resumed_job_line_says_its_time_is_training_over_its_attempts(tmp_path):
    from sweeper.job.execute import job_line
    from sweeper.job.record import read_record

    synthetic.mnist_job(tmp_path / "0", "softmax", "gd", lr=0.1, train_time_s=24.25)
    record = read_record(tmp_path / "0" / "result.json")
    assert job_line(record, every_metric=False).endswith("(24.25 s)")
    record.attempts = 2
    assert job_line(record, every_metric=False).endswith("-> ok test_accuracy=0.9099 (training 24.25 s over 2 attempts)")


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
    assert made == ["heatmap_softmax_gd.png", "loss_softmax_gd.png"]
