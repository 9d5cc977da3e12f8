"""The sweep's index (sweeper/job/index.py): it agrees with the records, whatever happened to
them or to its writers, and collate through it equals collate from the records."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas
import pandas.testing
import msgspec
import pytest

from sweeper.job.fingerprint import MismatchError, finished_record
from sweeper.job.record import RECORD_NAME, read_record
from sweeper.job import index
from sweeper.sweep.collate import collate, plain_markdown
from sweeper.sweep.jobs import read_sweep
from sweeper.job.manifest import MANIFEST_NAME, read_manifest
from tests import synthetic
from tests.conftest import ROOT, checkout_env, run_cli

JOBS = 600


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A synthetic sweep of JOBS linear jobs (10 steps each), every record written (and indexed)."""
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "adam", synthetic.adam_grid(JOBS))
    synthetic.write_adam_jobs(sweep, range(JOBS))
    return sweep


def index_lines(sweep: Path) -> int:
    return sum(shard.read_bytes().count(b"\n") for shard in (sweep / index.INDEX_DIR).glob("*.jsonl"))


def assert_agrees(sweep: Path) -> int:
    """Every job read back is what its record's file says (history aside), collate through the
    index equals collate from the records with the index removed, row by row, and a second read
    after that reads no record's file. Returns how many records the first read took from the
    index (those it read from their files, it added to the index)."""
    before = index_lines(sweep)
    jobs = read_sweep(sweep).jobs
    for job in jobs:
        assert job.path is not None
        path = job.path / RECORD_NAME
        if not path.exists():
            assert job.summary is None, job.name
            continue
        assert job.summary is not None, job.name
        assert msgspec.structs.replace(job.summary, history={}) == msgspec.structs.replace(read_record(path), history={})
    from_index = sum(job.summary is not None for job in jobs) - (index_lines(sweep) - before)
    through_index = collate(sweep)
    shutil.rmtree(sweep / index.INDEX_DIR, ignore_errors=True)
    pandas.testing.assert_frame_equal(through_index, collate(sweep))  # read from the records: index rebuilt
    rebuilt = index_lines(sweep)
    assert rebuilt == sum(job.summary is not None for job in jobs)
    read_sweep(sweep)
    assert index_lines(sweep) == rebuilt, "every record now from the index"
    return from_index


def test_a_record_written_in_a_sweep_is_indexed(sweep):
    jobs = read_sweep(sweep).jobs
    assert len(jobs) == JOBS and all(not job.whole for job in jobs), "every record came from the index"
    job = jobs[3]
    assert job.summary is not None and job.summary.history == {}
    assert job.record is not None and len(job.record.history["loss"]) == 10  # the history: read when asked
    assert assert_agrees(sweep) == JOBS


@pytest.mark.slow
def test_the_index_agrees_after_a_real_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "lr=0.01,0.001", "steps=10,20", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    assert list((sweep / index.INDEX_DIR).glob("*.jsonl")), "the sweep's process wrote its shard"
    assert assert_agrees(sweep) == 4
    lines = index.read_index(sweep)
    for entry in read_manifest(sweep).jobs:  # what planning a resume decides: through the index, the same
        whole = finished_record(sweep / entry.dir, entry.fingerprint, entry.overrides)
        summary = finished_record(sweep / entry.dir, entry.fingerprint, entry.overrides, indexed=lines[entry.dir])
        assert whole is not None and summary is not None and summary == msgspec.structs.replace(whole, history={})
    entry = read_manifest(sweep).jobs[0]
    with pytest.raises(MismatchError):
        finished_record(sweep / entry.dir, "another", ["lr=9"], indexed=lines[entry.dir])


def test_records_deleted_or_edited_by_hand_win_over_the_index(sweep):
    (sweep / "5" / RECORD_NAME).unlink()
    edited = sweep / "7" / RECORD_NAME
    data = json.loads(edited.read_text())
    data["metrics"]["final_loss"] = 123.0
    edited.write_text(json.dumps(data))  # the same file, other bytes
    shutil.rmtree(sweep / "9")
    from_index = assert_agrees(sweep)
    assert from_index == JOBS - 3, "the edited record was read from its file"
    table = collate(sweep).set_index("job")
    assert table.loc["5", "status"] == "missing" and table.loc["9", "status"] == "not_started"
    assert table.loc["7", "final_loss"] == 123.0


def test_a_damaged_index_is_ignored_line_by_line(sweep):
    shard = next((sweep / index.INDEX_DIR).glob("*.jsonl"))
    key = index.file_key(os.stat(sweep / "6" / RECORD_NAME))
    damaged = json.dumps({"job": "6", "file": list(key), "status": "ok", "record": "{not a record"})
    with open(shard, "ab") as f:  # job 6's line, for its file as it is, but its record damaged: the file says
        f.write(damaged.encode() + b"\n")
    with open(shard, "ab") as f:
        f.write(b"not json\n" + b'{"job": "2", "file": [1, 2], "record": {}}\n' + index.line("4", (0, 0), "ok", b'{"status": "ok"}')[:-9])
    assert assert_agrees(sweep) == JOBS


def test_lines_written_before_the_record_was_kept_as_json_text_still_serve(sweep):
    """Lines of an index written before (the record a JSON string in the line) are read the same."""
    shutil.rmtree(sweep / index.INDEX_DIR)
    lines = []
    for number in range(JOBS):
        path = sweep / str(number) / RECORD_NAME
        data = json.loads(path.read_text())
        summary = json.dumps({**data, "history": {}})
        stat = os.stat(path)  # the key as lines held it then: the inode too
        row = {"job": str(number), "file": [stat.st_ino, stat.st_size, stat.st_mtime_ns], "status": data["status"],
               "record": summary}
        lines.append((json.dumps(row) + "\n").encode())
    index.append(sweep, lines)
    assert assert_agrees(sweep) == JOBS, "every record from the lines written before"


def test_a_sweep_copied_with_its_times_reads_from_its_index(sweep, tmp_path):
    """A copy (cp -a: new inodes, the same sizes and times) reads every record from the index, as
    the original does; a record written again in the copy reads as written."""
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)  # copy2: the modification times in nanoseconds kept
    assert assert_agrees(copy) == JOBS
    synthetic.write_adam_jobs(copy, [3], final=5.0)
    assert collate(copy).set_index("job").loc["3", "final_loss"] == 5.0


def test_a_damaged_summary_leaves_its_job_to_its_file(sweep):
    """A summary in the index that does not parse: the job's record is read from its file, and
    collate says what reading each job alone says."""
    shard = next((sweep / index.INDEX_DIR).glob("*.jsonl"))
    key = index.file_key(os.stat(sweep / "150" / RECORD_NAME))
    with open(shard, "ab") as f:
        f.write(json.dumps({"job": "150", "file": list(key), "status": "ok"})[:-1].encode() + b', "record": {"a": 1,}}\n')
    batched = dict(zip(collate(sweep)["job"], collate(sweep)["final_loss"]))
    alone = {job.name: job.summary.metrics["final_loss"] for job in read_sweep(sweep).jobs if job.summary is not None}
    assert len(batched) == JOBS and batched == alone


def test_the_latest_record_wins_whatever_the_order_of_the_shards(sweep):
    """Jobs run again by another process (resume): two lines for each, in two shards."""
    code = ("import sys; from pathlib import Path; from tests.synthetic import write_adam_jobs; "
            "write_adam_jobs(Path(sys.argv[1]), range(0, 50), final=7.0)")
    subprocess.run([sys.executable, "-c", code, str(sweep)], cwd=ROOT, env=checkout_env(), check=True)
    assert len(list((sweep / index.INDEX_DIR).glob("*.jsonl"))) == 2
    jobs = read_sweep(sweep).jobs
    assert all(not job.whole for job in jobs)
    assert [job.summary.metrics["final_loss"] for job in jobs[:50] if job.summary] == [7.0] * 50
    assert assert_agrees(sweep) == JOBS


WRITE_FOREVER = """
import sys
from pathlib import Path
from tests.synthetic import write_adam_jobs
sweep, first = Path(sys.argv[1]), int(sys.argv[2])
print("writing", flush=True)
for rerun in range(1000000):
    write_adam_jobs(sweep, range(first, first + 100), final=float(rerun))
"""


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_an_index_that_agrees(sweep):
    writer = subprocess.Popen([sys.executable, "-c", WRITE_FOREVER, str(sweep), "100"], cwd=ROOT, env=checkout_env(),
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
    time.sleep(1.5)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    shard = max((sweep / index.INDEX_DIR).glob("*.jsonl"), key=os.path.getmtime)
    with open(shard, "ab") as f:  # where the kill came between write() calls: the line it was writing
        f.write(index.line("150", (2, 3), "ok", b'{"status": "ok"}')[:40])
    assert assert_agrees(sweep) >= JOBS - 1  # the record being replaced when killed: read from its file


@pytest.mark.slow
def test_two_processes_writing_one_sweep_at_once(tmp_path):
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "adam", synthetic.adam_grid(JOBS))
    code = ("import sys; from pathlib import Path; from tests.synthetic import write_adam_jobs; "
            "write_adam_jobs(Path(sys.argv[1]), range(int(sys.argv[2]), 600, 2))")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(sweep), str(first)], cwd=ROOT, env=checkout_env())
               for first in (0, 1)]
    assert [writer.wait() for writer in writers] == [0, 0]
    assert len(list((sweep / index.INDEX_DIR).glob("*.jsonl"))) == 2
    assert assert_agrees(sweep) == JOBS


def test_only_a_sweeps_jobs_are_indexed(tmp_path):
    """A single run (no job list beside it) writes no index; the constant is the job list's name."""
    assert index.LISTED == MANIFEST_NAME
    synthetic.linear_job(tmp_path / "run", "adam", lr=0.1, steps=10)
    assert not (tmp_path / index.INDEX_DIR).exists()


def test_a_long_table_is_written_unpadded_with_the_same_cells(sweep):
    """results.md of more than ALIGNED_ROWS jobs: the cells tabulate writes, without the padding."""
    table = collate(sweep)
    table.loc[3, "error"] = "ValueError: a | b"
    shown = table.astype(object).where(table.notna(), None)
    aligned = shown.to_markdown(index=False, floatfmt=".6g", missingval="").splitlines()
    plain = plain_markdown(shown).splitlines()

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.replace("\\|", "¦").strip("|").split("|")]

    assert len(plain) == len(aligned) == JOBS + 2
    assert [cells(line) for line in plain[2:]] == [cells(line.replace(" | b", " \\| b")) for line in aligned[2:]]
    assert cells(plain[0]) == cells(aligned[0])
