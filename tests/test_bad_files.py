"""Files of the wrong shape and odd requests: every reader (collate, report, status, the page) shows
a record of the wrong shape as its job's `corrupt`, with one line saying what is wrong; a job list
whose `dir` leads out of the sweep is a damaged list; the page answers 4xx, never 500, and streams
files. Cases are generated: each field of a record given each JSON kind its shape refuses."""
from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sweeper.job.record import RECORD_NAME, Record, write_record
from sweeper.sweep.collate import collate
from sweeper.sweep.jobs import read_sweep, warnings_kept
from sweeper.job.manifest import DamagedManifest, path_of, read_manifest
from tests.conftest import ROOT, checkout_env
from tests.serving import serving
from tests import synthetic

# A value of each JSON kind, by the words a message says it in.
KINDS: dict[str, Any] = {"null": None, "a string": "x", "a number": 0.5, "true or false": True,
                         "a list": [1, 2], "a mapping": {"a": 1}}
WHOLE = {"a number": 7}  # a whole number: what a whole-number field takes
# The kinds each field of a record takes (docs/records.md, "The result record").
TEXT, TEXT_OR_NULL = {"a string"}, {"a string", "null"}
SHAPES: dict[str, set[str]] = {
    "status": TEXT, "task": TEXT, "optimizer": TEXT, "hparams": {"a mapping"}, "metrics": {"a mapping"},
    "history": {"a mapping"}, "train_time_s": {"a number", "null"}, "started": TEXT, "finished": TEXT,
    "overrides": {"a list"}, "versions": {"a mapping"}, "git_commit": TEXT_OR_NULL, "host": TEXT,
    "error": TEXT_OR_NULL, "objective": TEXT_OR_NULL, "fingerprint": TEXT_OR_NULL, "attempts": set(),
    "environment": {"a mapping"}, "direction": TEXT_OR_NULL, "preset": TEXT_OR_NULL, "fused": {"null"}, "usage": {"a mapping"},
    "schema_version": set(),
}


def _good() -> dict[str, Any]:
    record = Record(status="ok", task="linear", optimizer="gd", hparams={"lr": 0.1, "steps": 3},
                    metrics={"final_loss": 0.5, "W": -1.0, "b": 1.0}, history={"loss": [3.0, 1.0, 0.5]},
                    train_time_s=0.1, started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00",
                    overrides=["lr=0.1"], versions={"python": "3.11"}, git_commit=None, host="here",
                    objective="final_loss", direction="minimize")
    return {**msgspec.structs.asdict(record), "status": "ok"}


def _field_cases() -> list[tuple[str, Any, str]]:
    """(case, the record's JSON, what the message says) for each field and each kind it refuses."""
    cases = []
    for field, takes in SHAPES.items():
        for kind, value in KINDS.items():
            if kind not in takes:
                cases.append((f"{field}={kind}", {**_good(), field: value}, f"{field} must be "))
    return cases


CASES: list[tuple[str, Any, str]] = [
    *_field_cases(),
    ("a list", [1, 2], "a record is a mapping of its fields, not a list"),
    ("null", None, "a record is a mapping of its fields, not null"),
    ("a string", "x", "not a string"),
    ("nothing in it", {}, "it lacks status, task, optimizer, hparams, metrics, history"),
    ("no task", {k: v for k, v in _good().items() if k != "task"}, "it lacks task"),
    ("an unrecorded status", {**_good(), "status": "running"}, "status 'running' is not one a job records"),
    ("a curve of text", {**_good(), "history": {"loss": "abc"}}, "history's loss must be a list, not a string"),
    ("numbers as overrides", {**_good(), "overrides": [1, 2]}, "overrides must be a list of strings"),
    ("a metric nested 500 deep", {**_good(), "metrics": {"final_loss": 1.0, "x": json.loads("[" * 500 + "]" * 500)}},
     "its values nest more than 20 lists or mappings deep"),
    ("a curve nested 500 deep", {**_good(), "history": {"loss": json.loads("[" * 500 + "]" * 500)}},
     "its values nest more than 20 lists or mappings deep"),
    ("the objective as text", {**_good(), "metrics": {"final_loss": "x"}},
     "metrics' final_loss (the objective) must be a number or null, not a string"),
]
TEXTS: list[tuple[str, bytes, str]] = [
    ("[ x 100,000", b"[" * 100_000, "nested too deeply"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\xff", "not UTF-8 text"),
    ("empty", b"", "not JSON"),
    ("torn", b'{"status": "ok", "task"', "not JSON"),
]
INTERNALS = ("Traceback", "__init__", "positional argument", "object has no attribute", "Error:")


def _bad_sweep(sweep: Path) -> dict[str, tuple[str, str]]:
    """A linear sweep: job 0 whole, every other job's record one of the cases. Returns, by job,
    how its message starts and what it says."""
    bad = [*((name, json.dumps(data).encode(), said) for name, data, said in CASES), *TEXTS]
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1 + n} for n in range(len(bad) + 1)])
    expected = {}
    for number in range(len(bad) + 1):
        synthetic.linear_job(sweep / str(number), "gd", lr=0.1 + number, steps=3)
        if number:
            _, text, said = bad[number - 1]
            (sweep / str(number) / RECORD_NAME).write_bytes(text)
            expected[str(number)] = f"{sweep / str(number) / RECORD_NAME}: not a valid result record: ", said
    return expected


def _assert_said(message: str, expected: tuple[str, str]) -> None:
    assert message.startswith(expected[0]) and expected[1] in message, (message, expected)
    assert "\n" not in message and not any(word in message for word in INTERNALS), message


@pytest.fixture
def bad_sweep(tmp_path) -> tuple[Path, dict[str, tuple[str, str]]]:
    sweep = tmp_path / "sweep"
    return sweep, _bad_sweep(sweep)


def test_a_readers_warnings_kept_in_one_thread_leave_other_threads_output_alone(bad_sweep, capfd):
    """The page reads in a thread of its own and keeps that read's warnings (to say each once):
    what other threads print meanwhile still reaches stderr (a redirect of sys.stderr took it)."""
    sweep, expected = bad_sweep
    kept: list[str] = []

    def read() -> None:
        with warnings_kept() as said:
            read_sweep(sweep)
            print("the other thread's line", file=sys.stderr)  # printed while the read keeps its own
            kept.extend(said)

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    print("the main thread's line", file=sys.stderr)
    err = capfd.readouterr().err
    assert err.splitlines() == ["the other thread's line", "the main thread's line"]
    assert len(kept) == len(expected) and all(line.startswith("warning: ") for line in kept)


def test_collate_shows_each_record_of_the_wrong_shape_as_corrupt_saying_why(bad_sweep, sweeper_cli):
    sweep, expected = bad_sweep
    assert {case.split("=")[0] for case, _, _ in _field_cases()} == set(_good()) and len(expected) > 100
    table = collate(sweep).set_index("job")
    assert table.loc["0", "status"] == "ok" and table.loc["0", "final_loss"] > 0
    for job, said in expected.items():
        assert table.loc[job, "status"] == "corrupt", job
        _assert_said(table.loc[job, "error"], said)
    result = sweeper_cli("collate", str(sweep))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(expected)


def test_status_and_report_show_them_as_corrupt(bad_sweep, sweeper_cli):
    sweep, expected = bad_sweep
    status = sweeper_cli("status", "--all", str(sweep))
    assert "Traceback" not in status.stderr, status.stderr
    assert f"{len(expected)} corrupt" in status.stdout
    rows = {row.split()[0]: row.split()[1] for row in status.stdout.split("\n\n")[0].splitlines()[1:]}
    assert rows["0"] == "ok" and all(rows[job] == "corrupt" for job in expected)
    report = sweeper_cli("report", str(sweep))
    assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr
    assert "corrupt" in (sweep / "report" / "report.md").read_text()


def test_every_page_endpoint_answers_for_records_of_the_wrong_shape(bad_sweep):
    sweep, expected = bad_sweep
    with serving(sweep) as server:
        overview = json.loads(server.get("/api/sweep").body)
        assert {c["status"]: c["count"] for c in overview["counts"]} == {"ok": 1, "corrupt": len(expected)}
        assert server.get("/api/jobs", size="500").status == 200
        figures = server.get("/api/figures")
        assert figures.status == 200, figures.text
        assert all(server.get(f"/figures/{name}").status == 200 for name in json.loads(figures.body)["figures"])
        for job, said in expected.items():
            detail = server.get("/api/job", name=job)
            assert detail.status == 200, (job, detail.text)
            assert json.loads(detail.body)["status"] == "corrupt"
            _assert_said(json.loads(detail.body)["error"], said)
            assert server.get("/api/job-figures", name=job).status == 200, job
            assert server.get("/file", path=f"{job}/{RECORD_NAME}").status == 200, job


def test_index_lines_of_the_wrong_shape_leave_the_records_to_say(tmp_path, sweeper_cli):
    """A line that describes a record's file as it is, but holds a record of the wrong shape (edited
    by hand): the record's file says, in every reader."""
    sweep = tmp_path / "sweep"
    cases = [data for _, data, _ in CASES if isinstance(data, dict) and "status" in data]
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1 + n} for n in range(len(cases))])
    for number in range(len(cases)):
        synthetic.linear_job(sweep / str(number), "gd", lr=0.1 + number, steps=3)
    before = collate(sweep)
    lines = [json.loads(line) for shard in (sweep / "index").glob("*.jsonl") for line in shard.read_text().splitlines()]
    forged = [json.dumps({**row, "status": "ok", "record": data}) for row, data in zip(lines, cases)]
    (sweep / "index" / "forged.jsonl").write_text("\n".join(forged) + "\n" + "[" * 100_000 + "\n")
    assert collate(sweep).equals(before)
    status = sweeper_cli("status", str(sweep))
    assert f"{len(cases)} ok" in status.stdout and "Traceback" not in status.stderr
    with serving(sweep) as server:
        for route in ("/api/sweep", "/api/jobs", "/api/figures"):
            assert server.get(route).status == 200, route
        assert json.loads(server.get("/api/job", name="1").body)["status"] == "ok"


def test_a_record_written_with_the_wrong_shape_is_not_indexed_and_reads_corrupt(tmp_path, sweeper_cli):
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}])
    (sweep / "0").mkdir()
    write_record(sweep / "0", Record(**{**_good(), "metrics": "x"}))  # the writer writes what it is given
    assert not list((sweep / "index").glob("*.jsonl"))
    assert list(collate(sweep).status) == ["corrupt"]
    assert "1 corrupt" in sweeper_cli("status", str(sweep)).stdout


# -- the job list ------------------------------------------------------------------------------------

@pytest.mark.parametrize("directory", ["../victim/7", "/ABSOLUTE/7", "1/../../victim/7", 7, None, ""])
def test_a_job_list_whose_dir_leads_out_of_the_sweep_is_damaged(tmp_path, sweeper_cli, directory):
    victim, sweep = tmp_path / "victim", tmp_path / "sweep"
    synthetic.linear_job(victim / "7", "gd", lr=0.7)  # a record nothing under the sweep may show
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}, {"lr": 0.2}])
    synthetic.linear_job(sweep / "0", "gd", lr=0.1)
    data = json.loads(path_of(sweep).read_text())
    data["jobs"][1]["dir"] = str(victim / "7") if directory == "/ABSOLUTE/7" else directory
    path_of(sweep).write_text(json.dumps(data))
    with pytest.raises(DamagedManifest, match=r"job 1's dir .* is not a folder inside the sweep directory") as raised:
        read_manifest(sweep)
    assert "\n" not in str(raised.value)
    result = sweeper_cli("collate", str(sweep))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "not a valid job list" in result.stderr
    assert list(collate(sweep).job) == ["0"]  # read from the job directories alone
    with serving(sweep) as server:
        for name in ("../victim/7", str(victim / "7"), "1"):
            assert server.get("/api/job", name=name).status == 404, name
        assert server.get("/api/sweep").status == 200 and server.get("/api/jobs").status == 200


# -- the page ----------------------------------------------------------------------------------------

def test_the_figures_follow_a_record_repaired(tmp_path):
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}, {"lr": 0.2}])
    synthetic.linear_job(sweep / "0", "gd", lr=0.1, steps=3)
    synthetic.linear_job(sweep / "1", "gd", lr=0.2, steps=3)
    path = sweep / "1" / RECORD_NAME
    whole = path.read_text()
    path.write_text(whole.replace('"history": {', '"history": "abc", "was": {'))
    with serving(sweep, refresh_s=0.1) as server:
        assert server.get("/api/figures").status == 200
        assert server.get("/api/job-figures", name="1").status == 200
        path.write_text(whole)
        time.sleep(0.3)
        repaired = server.get("/api/figures")
        assert repaired.status == 200 and json.loads(repaired.body)["figures"], repaired.text
        assert json.loads(server.get("/api/job", name="1").body)["status"] == "ok"


def test_a_large_file_is_streamed(tmp_path):
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}])
    synthetic.linear_job(sweep / "0", "gd", lr=0.1, steps=3)
    size = 300 * 2 ** 20
    with open(sweep / "0" / "run.log", "wb") as log:  # sparse: no disk taken
        log.truncate(size)
    with serving(sweep) as server:
        tracemalloc.start()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            connection.request("GET", f"/file?path=0/run.log&token={server.token}")
            answer = connection.getresponse()
            received = 0
            while chunk := answer.read(2 ** 20):
                received += len(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert answer.status == 200 and received == size
        assert peak < 32 * 2 ** 20, f"{peak / 2 ** 20:.0f} MB held to send a {size >> 20} MB file"


@pytest.mark.parametrize("name", ["a\0b", "0/run\0.log", "x" * 300, "0/" + "x" * 300, "/".join(["x" * 250] * 20)])
def test_odd_names_get_a_4xx(tmp_path, name):
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}])
    synthetic.linear_job(sweep / "0", "gd", lr=0.1, steps=3)
    with serving(sweep) as server:
        assert 400 <= server.get("/file", path=name).status < 500
        assert 400 <= server.get("/api/job", name=name).status < 500
        assert 400 <= server.get("/api/job-figures", name=name).status < 500
        assert 400 <= server.get("/figures/" + urllib.parse.quote(name)).status < 500


# -- serve's options ---------------------------------------------------------------------------------

@pytest.mark.parametrize("port", ["-1", "70000", "65536"])
def test_serve_refuses_a_port_out_of_range_in_one_line(tmp_path, sweeper_cli, port):
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}])
    result = sweeper_cli("serve", str(sweep), "--port", port)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"--port {port} is no port: give one of 1-65535" in result.stderr


def _ipv6_loopback() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_serve_listens_on_the_ipv6_loopback(tmp_path):
    sweep = tmp_path / "sweep"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}])
    process = subprocess.Popen([sys.executable, "-m", "sweeper", "serve", str(sweep), "--host", "::1", "--port", "0"],
                               cwd=ROOT, env=checkout_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"http://localhost:(\d+)/\?token=([\w-]+)", line)
        assert match, line + process.stderr.read()
        url = f"http://[::1]:{match.group(1)}/api/sweep?token={match.group(2)}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert json.loads(answer.read())["total"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "Traceback" not in process.stderr.read()
