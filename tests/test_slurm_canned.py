"""The Slurm helpers on canned answers, with no cluster: fake `sacct`, `squeue` and `scontrol`
(shell scripts printing what Slurm prints) first on PATH; and the sbatch script the `slurm`
launcher writes for hostile settings (quotes, spaces, line breaks, setup lines), read as text."""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

# The project's functions under test, in one place (update here if the modules move).
# Public: what Slurm says about jobs, the cluster's MaxArraySize, a job's submitit parameters.
from sweeper.launching.resources import job_resources
from sweeper.launching.slurm_queries import job_states, max_array_size
# Private, no public equivalent: how the launcher builds its submitit executor from those parameters.
from sweeper.launching.resources import executor as _executor, safe_for_sbatch as _safe_for_sbatch
from tests.fake_slurm import FakeSlurm, slurm  # noqa: F401  (slurm: the fake Slurm commands, a fixture)

NO_ACCOUNTING = "Slurm accounting storage is disabled\n"
NO_CONTROLLER = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"


# ---------------------------------------------------------------------------------------------
# job_states


def test_sacct_states_with_pending_array_ranges_and_cancelled_by(slurm):
    slurm.command("sacct", "123_0|COMPLETED\n"
                           "123_1|CANCELLED by 0\n"
                           "123_[2-4%2]|PENDING\n"
                           "124|RUNNING\n"
                           "125_[1,3-4]|PENDING\n")
    slurm.command("squeue", code=1, stderr="squeue must not be asked: sacct knew every job\n")
    wanted = ["123_0", "123_1", "123_2", "123_3", "123_4", "124", "125_1", "125_3", "125_4"]
    assert job_states(wanted) == {"123_0": "COMPLETED", "123_1": "CANCELLED", "123_2": "PENDING",
                                  "123_3": "PENDING", "123_4": "PENDING", "124": "RUNNING",
                                  "125_1": "PENDING", "125_3": "PENDING", "125_4": "PENDING"}
    # One query for the arrays (each named once, whatever its tasks), and no squeue.
    assert slurm.calls() == ["sacct -X -n -P -o JobID,State -j 123,124,125"]


def test_only_the_jobs_asked_for_are_answered(slurm):
    slurm.command("sacct", "123_0|COMPLETED\n123_1|FAILED\n123_[2-6%2]|PENDING\n")
    slurm.command("squeue", code=1, stderr="squeue must not be asked\n")
    assert job_states(["123_1", "123_5"]) == {"123_1": "FAILED", "123_5": "PENDING"}


def test_no_accounting_falls_back_to_squeue(slurm):
    slurm.command("sacct", stderr=NO_ACCOUNTING, code=1)
    slurm.command("squeue", "300_0|RUNNING\n300_[1-3%1]|PENDING\n301|COMPLETING\n")
    assert job_states(["300_0", "300_2", "301"]) == {"300_0": "RUNNING", "300_2": "PENDING", "301": "COMPLETING"}
    assert slurm.calls() == ["sacct -X -n -P -o JobID,State -j 300,301",
                             "squeue -h -r -t all -o %i|%T -j 300,301"]


def test_jobs_sacct_does_not_know_yet_come_from_squeue(slurm):
    # Accounting lags behind the controller: a job just submitted may be missing from sacct.
    slurm.command("sacct", "200_0|COMPLETED\n")
    slurm.command("squeue", "200_1|RUNNING\n")
    assert job_states(["200_0", "200_1"]) == {"200_0": "COMPLETED", "200_1": "RUNNING"}
    assert [call.split()[0] for call in slurm.calls()] == ["sacct", "squeue"]


def test_a_job_no_source_knows_is_left_out(slurm):
    slurm.command("sacct", "")
    slurm.command("squeue", "")
    assert job_states(["400_0", "400_1"]) == {}


def test_squeue_invalid_job_id_means_no_such_job_not_no_answer(slurm):
    # squeue refuses ids the controller has forgotten (MinJobAge): the cluster answered.
    slurm.command("sacct", stderr=NO_ACCOUNTING, code=1)
    slurm.command("squeue", stderr="slurm_load_jobs error: Invalid job id specified\n", code=1)
    assert job_states(["500_0"]) == {}


def test_no_answer_at_all_is_none(slurm):
    slurm.command("sacct", stderr=NO_ACCOUNTING, code=1)
    slurm.command("squeue", stderr=NO_CONTROLLER, code=1)
    assert job_states(["600_0"]) is None


def test_no_slurm_installed_is_none(slurm):
    assert job_states(["600_0"]) is None and max_array_size() is None


def test_a_slurm_command_that_hangs_is_given_up(slurm, monkeypatch):
    monkeypatch.setenv("SWEEPER_SLURM_TIMEOUT_S", "0.3")
    slurm.command("sacct", "700_0|COMPLETED\n", sleep_s=30)
    slurm.command("squeue", "700_0|COMPLETED\n", sleep_s=30)
    slurm.command("scontrol", "MaxArraySize = 5\n", sleep_s=30)
    assert job_states(["700_0"]) is None and max_array_size() is None
    assert len(slurm.calls()) == 3  # each was asked, and none waited for


def test_no_job_asked_asks_nothing(slurm):
    assert job_states([]) == {} and slurm.calls() == []


# ---------------------------------------------------------------------------------------------
# max_array_size

SCONTROL_SHOW_CONFIG = """\
Configuration data as of 2026-12-01T18:00:00
AccountingStorageType   = accounting_storage/slurmdbd
MaxArraySizeLimit       = 7
MaxJobCount             = 10000
MaxArraySize            = 1001
MaxStepCount            = 40000
"""


def test_max_array_size_from_scontrol_show_config(slurm):
    slurm.command("scontrol", SCONTROL_SHOW_CONFIG)
    assert max_array_size() == 1001
    assert slurm.calls() == ["scontrol show config"]


@pytest.mark.parametrize("stdout, stderr, code", [
    ("", "slurm_load_ctl_conf error: Unable to contact slurm controller (connect failure)\n", 1),
    ("Configuration data as of 2026-12-01T18:00:00\nMaxJobCount = 10000\n", "", 0),
])
def test_max_array_size_unknown_is_none(slurm, stdout, stderr, code):
    slurm.command("scontrol", stdout, stderr, code)
    assert max_array_size() is None


# ---------------------------------------------------------------------------------------------
# The sbatch script for hostile settings

NAME = 'it\'s a "job"\n#SBATCH --partition=nowhere'
PARTITION = 'gpu "a100" x\n#SBATCH --account=nowhere'
QOS = "it's\tlong\r\n#SBATCH --exclusive"
ACCOUNT = "course 42\n#SBATCH --nodes=99"  # from sbatch's own variable, SBATCH_ACCOUNT
MAIL = "me@here\n#SBATCH --comment=nowhere"
SETUP = ["#SBATCH --qos=nowhere", 'export GREETING="it\'s \\"quoted\\" and spaced"', "module load cuda/12.3"]


def _hydra_string(value: str) -> str:
    """A Hydra override value, single-quoted: its quotes escaped, and the backslashes before a
    quote or the end (Hydra reads other backslashes as they are)."""
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value)
    return f"'{escaped}'"


def _one_line(value: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value)


def _params(compose_cfg, sweep_dir: Path, hostile: bool) -> dict:
    overrides = ["hydra/launcher=slurm", f"hydra.sweep.dir={_hydra_string(str(sweep_dir))}", "gpus=2"]
    if hostile:
        overrides += [f"hydra.launcher.name={_hydra_string(NAME)}",
                      f"hydra.launcher.partition={_hydra_string(PARTITION)}",
                      f"hydra.launcher.qos={_hydra_string(QOS)}",
                      f"+hydra.launcher.additional_parameters.mail_user={_hydra_string(MAIL)}",
                      "hydra.launcher.setup=[" + ",".join(_hydra_string(line) for line in SETUP) + "]"]
    else:
        overrides += ["hydra.launcher.name=plain", "hydra.launcher.partition=gpu", "hydra.launcher.qos=normal",
                      "+hydra.launcher.additional_parameters.mail_user=me", "hydra.launcher.setup=['true']"]
    return job_resources(compose_cfg(*overrides))


def _script(params: dict) -> str:
    executor = _executor("slurm", params)._executor  # AutoExecutor -> its SlurmExecutor
    return executor._make_submission_file_text(executor._submitit_command_str, "uid")


def _directives(script: str) -> tuple[list[str], int]:
    """The `#SBATCH` lines sbatch reads (those before the first command), and that command's line."""
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    first = next(n for n, line in enumerate(lines) if n and line.strip() and not line.startswith("#"))
    return [line for line in lines[:first] if line.startswith("#SBATCH")], first


def _directive(directives: list[str], key: str) -> str:
    """The value of `#SBATCH --key=value`, unquoted as sbatch reads it."""
    [line] = [line for line in directives if line.startswith(f"#SBATCH --{key}=")]
    [value] = shlex.split(line.split("=", 1)[1])
    return value


def test_hostile_settings_add_no_directive_and_keep_their_quotes(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("SBATCH_ACCOUNT", ACCOUNT)
    hostile = _params(compose_cfg, tmp_path / "sweep", hostile=True)
    assert (hostile["name"], hostile["partition"], hostile["account"]) == (NAME, PARTITION, ACCOUNT)
    assert hostile["setup"] == SETUP and hostile["gpus_per_node"] == 2

    # As they are, these values would smuggle directives of their own into the script.
    raw, _ = _directives(_script(hostile))
    assert [line for line in raw if line.startswith(("#SBATCH --partition=nowhere", "#SBATCH --nodes=99"))]

    script = _script(_safe_for_sbatch(hostile))
    directives, first = _directives(script)
    monkeypatch.setenv("SBATCH_ACCOUNT", "course42")
    plain, _ = _directives(_script(_safe_for_sbatch(_params(compose_cfg, tmp_path / "sweep", hostile=False))))
    keys = [line.split("=", 1)[0] for line in directives]
    assert keys == [line.split("=", 1)[0] for line in plain]   # the same directives as for plain values
    assert len(set(keys)) == len(keys) and "#SBATCH --exclusive" not in keys
    assert "#SBATCH --gpus-per-node=2" in directives and "#SBATCH --nodes=1" in directives

    # Each value is one line, its quotes and spaces intact, as sbatch unquotes it.
    assert _directive(directives, "job-name") == _one_line(NAME) == 'it\'s a "job" #SBATCH --partition=nowhere'
    assert _directive(directives, "partition") == _one_line(PARTITION)
    assert _directive(directives, "qos") == _one_line(QOS) == "it's long #SBATCH --exclusive"
    assert _directive(directives, "account") == _one_line(ACCOUNT)
    assert _directive(directives, "mail-user") == _one_line(MAIL)

    # The setup lines come after a first command, which ends sbatch's reading of directives.
    lines = script.splitlines()
    assert lines[first].startswith(":")
    positions = [lines.index(line) for line in SETUP]
    assert positions == sorted(positions) and positions[0] > first
    assert lines[positions[0]:positions[0] + len(SETUP)] == SETUP   # verbatim, in order, together
    assert lines.index("export SUBMITIT_EXECUTOR=slurm") > positions[-1]


def test_a_sweep_directory_with_a_line_break_is_refused(compose_cfg, tmp_path):
    params = _params(compose_cfg, tmp_path / "a\nb", hostile=False)
    with pytest.raises(Exception, match="line break"):
        _safe_for_sbatch(params)


# ---------------------------------------------------------------------------------------------
# Slurm mistakes through the command line: one line, exit 2, nothing else

SBATCH_NO_PARTITION = ("sbatch: error: invalid partition specified: nope\n"
                       "sbatch: error: Batch job submission failed: Invalid partition name specified\n")


def _slurm_sweep(slurm: FakeSlurm, tmp_path: Path, *overrides: str, mnist: bool = False):
    """`python run.py -m hydra/launcher=slurm ...` on the fake Slurm commands (srun: submitit looks for it)."""
    from tests.conftest import ROOT, checkout_env, run_cli

    slurm.command("srun")
    env = checkout_env()
    if mnist:
        from tests.mnist_files import write_mnist
        env["MNIST_DIR"] = str(write_mnist(tmp_path / "mnist", train=64, test=32))
    return run_cli(str(ROOT / "run.py"), "-m", "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                   *overrides, env=env)


def test_more_gpus_than_a_node_has_names_the_gpus(slurm, tmp_path):
    slurm.command("sinfo", "debug*|vm|2|21694|gpu:4\n")
    result = _slurm_sweep(slurm, tmp_path, "task=cnn", "gpus=8", mnist=True)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.splitlines() == [
        "error: job 0 (task=cnn gpus=8) asks for 32 CPUs, 8 GB, 8 GPUs per task; the nodes of the default "
        "partition have at most 2 CPUs, 21.2 GB, 4 GPUs: ask for at most 4 GPUs per task (gpus=..., or "
        "hydra.launcher.gpus_per_node; now 8); nothing was submitted"]
    assert not [call for call in slurm.calls() if call.startswith("sbatch")]


def test_a_partition_sbatch_refuses_is_one_line(slurm, tmp_path):
    slurm.command("sinfo", "")  # no such partition: sbatch says what is wrong
    slurm.command("sbatch", stderr=SBATCH_NO_PARTITION, code=1)
    result = _slurm_sweep(slurm, tmp_path, "steps=5,10", "hydra.launcher.partition=nope")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.splitlines() == [
        "error: Slurm refused jobs 0-1 (steps=5, ...): invalid partition specified: nope; nothing was submitted"]


def test_a_refusal_after_a_submission_names_the_jobs_submitted(slurm, tmp_path):
    # One task per array (max_array_size=1): sbatch takes the first, refuses the second.
    slurm.command("sinfo", "")
    taken = tmp_path / "taken"
    script = slurm.bin_dir / "sbatch"
    script.write_text(f"#!/bin/sh\nif [ -e {taken} ]; then printf '%s' {shlex.quote(SBATCH_NO_PARTITION)} >&2; exit 1; fi\n"
                      f": > {taken}\necho 'Submitted batch job 77'\n")
    script.chmod(0o755)
    result = _slurm_sweep(slurm, tmp_path, "steps=5,10", "hydra.launcher.partition=nope", "hydra.launcher.max_array_size=1")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.splitlines() == [
        "error: Slurm refused job 1 (steps=10): invalid partition specified: nope; submitted before them and going "
        f"on: 1 job (Slurm job ids: 77), follow them with: python -m sweeper status {(tmp_path / 'sweep').resolve()}"]
