"""`python -m sweeper serve`: the page's server asked over HTTP, on sweeps written by tests/synthetic.py.
The page in a real browser: tests/test_serve_browser.py."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from sweeper.status import summary
from sweeper.report import report
from sweeper.sweep.collate import collate
from sweeper.serve.app import FORBIDDEN
from sweeper.sweep.jobs import read_sweep
from tests.conftest import ROOT, checkout_env
from tests.serving import serving
from sweeper.job.manifest import update
from tests.synthetic import linear_job, optuna_sweep, softmax_grid_sweep, write_job, write_job_list
from tests.fake_slurm import FakeSlurm

SCRIPT = "<script>window.attacked = 1</script>"


@pytest.fixture
def sweep(tmp_path) -> Path:
    """The softmax grid, partly run: 4 ok, 1 diverged, 1 failed, 1 corrupt, 1 missing, 4 not started."""
    softmax_grid_sweep(tmp_path / "sweep", partial=True)
    return tmp_path / "sweep"


def _files(root: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime for path in root.rglob("*")}


def test_nothing_is_answered_without_the_token(sweep):
    with serving(sweep) as server:
        for path in ("/", "/api/sweep", "/api/jobs", "/api/job", "/static/app.js", "/file", "/figures/x.png"):
            refused = server.get(path, token=False)
            assert (refused.status, refused.text) == (403, FORBIDDEN), path
        assert server.get("/api/sweep", token=False, cookie=f"sweeper-token-{server.port}=guess").status == 403
        assert server.get("/api/sweep", token="guess").status == 403
        assert server.get("/api/sweep", token=server.token[:-1]).status == 403


def test_the_token_in_the_url_sets_a_cookie_and_leaves_the_address_bar(sweep):
    with serving(sweep) as server:
        first = server.get("/")
        assert first.status == 303 and first.headers["location"] == "/"
        cookie = first.headers["set-cookie"]
        assert f"sweeper-token-{server.port}={server.token}" in cookie and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        page = server.get("/", token=False, cookie=cookie.split(";")[0])
        assert page.status == 200 and "<script src=\"/static/app.js\">" in page.text
        assert server.get("/api/sweep", token=False, cookie=cookie.split(";")[0]).status == 200


def test_the_page_is_read_only(sweep):
    before = _files(sweep)
    with serving(sweep) as server:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            for path in ("/", "/api/sweep", "/api/jobs", "/api/job", "/file"):
                assert server.get(path, method=method, name="1", path="1/result.json").status == 405, (method, path)
        for path in ("/api/sweep", "/api/jobs", "/api/figures"):
            assert server.get(path).status == 200
        assert server.get("/api/job-figures", name="1").status == 200
    assert _files(sweep) == before  # the figures are drawn elsewhere: the sweep is as it was


def test_a_file_outside_the_sweep_is_refused(sweep):
    secret = sweep.parent / "secret.txt"
    secret.write_text("not the sweep's")
    (sweep / "1" / "out.txt").symlink_to(secret)
    (sweep / "1" / "run.log").symlink_to(secret)
    (sweep / "2" / "run.log").write_text(f"epoch 1\n{SCRIPT}\n")
    with serving(sweep) as server:
        for path in ("../secret.txt", "1/../../secret.txt", str(secret), "1/out.txt", "/etc/passwd", "", "1"):
            answer = server.get("/file", path=path)
            assert answer.status == 403 and "not the sweep's" not in answer.text, path
        inside = server.get("/file", path="2/run.log")
        assert inside.status == 200 and inside.text == f"epoch 1\n{SCRIPT}\n"
        assert inside.headers["content-type"].startswith("text/plain")
        assert inside.headers["x-content-type-options"] == "nosniff"
        assert json.loads(server.get("/api/job", name="1").body)["log"] == []  # a run.log that leads out
        for name in ("../../secret.txt", "sweep-x/../../secret.txt", str(secret)):
            assert server.get(f"/figures/{name}").status == 404


def test_every_value_is_sent_as_data_and_the_page_runs_no_inline_script(tmp_path):
    sweep = tmp_path / "sweep"
    write_job_list(sweep, "linear", "gd", [{"lr": 0.1, "note": SCRIPT}])
    write_job(sweep / "0", "linear", "gd", {"lr": 0.1}, {"final_loss": None}, {"loss": [1.0]}, status="failed",
              error=f"ValueError: {SCRIPT}", overrides=["lr=0.1", f"note={SCRIPT}"])
    (sweep / "0" / "run.log").write_text(f"{SCRIPT}\n")
    with serving(sweep) as server:
        job = server.get("/api/job", name="0")
        assert job.headers["content-type"] == "application/json"
        detail = json.loads(job.body)
        assert detail["error"] == f"ValueError: {SCRIPT}" and detail["log"] == [SCRIPT]
        assert f"note={SCRIPT}" in detail["overrides"]
        policy = job.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy
        page = server.get("/").headers  # the redirect carries it too
        assert page["content-security-policy"] == policy
    script = (ROOT / "sweeper" / "serve" / "static" / "app.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)
    html = (ROOT / "sweeper" / "serve" / "static" / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js">']
    assert not re.search(r"https?://", html + script)  # nothing from a CDN


def _page(server, **params) -> dict:
    answer = server.get("/api/jobs", **params)
    assert answer.status == 200, answer.text
    return json.loads(answer.body)


def _column(page: dict, name: str) -> list:
    return [row[page["columns"].index(name)] for row in page["rows"]]


def test_the_table_is_paged_sorted_and_filtered_on_the_server(sweep):
    with serving(sweep) as server:
        everything = _page(server, size="100")
        assert (everything["total"], everything["matched"]) == (12, 12)
        order = list(collate(sweep).job)  # what `python -m sweeper collate` writes, in its order
        assert _column(everything, "job") == order
        second = _page(server, size="5", page="1")
        assert _column(second, "job") == order[5:10] and second["pages"] == 3
        best = _page(server, sort="test_accuracy", desc="1")
        accuracies = _column(best, "test_accuracy")
        shown = [a for a in accuracies if a is not None]
        assert shown == sorted(shown, reverse=True) and accuracies[len(shown):] == [None] * (12 - len(shown))
        ok = _page(server, status="ok,diverged")
        assert sorted(_column(ok, "status")) == ["diverged", "ok", "ok", "ok", "ok"]
        small = _page(server, where="lr>=0.1 batch_size<128")
        assert list(zip(_column(small, "lr"), _column(small, "batch_size"))) == [(0.1, 32), (0.1, 64), (0.5, 32), (0.5, 64)]
        started = _column(_page(server, where="status!=not_started optimizer=gd"), "job")
        assert sorted(started, key=int) == [str(n) for n in range(8)]
        for where, said in (("lr>>1", "'>1' is not a number"), ("foo=1", "no column 'foo'"), ("optimizer<a", "not a number"), ("optimizer<1", "holds text"),
                            ("lr", "COLUMN=VALUE")):
            answer = server.get("/api/jobs", where=where)
            assert answer.status == 400 and said in json.loads(answer.body)["error"], where
        assert server.get("/api/jobs", sort="nothing").status == 400


def test_the_overview_is_the_sweeps_summary_best_and_progress(sweep):
    statuses = [job.status for job in read_sweep(sweep).jobs]
    with serving(sweep) as server:
        overview = json.loads(server.get("/api/sweep").body)
    assert overview["summary"] == summary(statuses)
    assert {c["status"]: c["count"] for c in overview["counts"]} == {
        "ok": 4, "diverged": 1, "failed": 1, "corrupt": 1, "missing": 1, "not_started": 4}
    assert (overview["total"], overview["recorded"]) == (12, 6)
    best = dict(zip(overview["best"]["columns"], overview["best"]["rows"][0]))
    assert (best["job"], best["direction"], best["lr"], best["batch_size"]) == ("1", "maximize", "0.5", "64")
    assert overview["pending"] == [] and overview["scheduler_answered"]


def test_a_record_that_lands_shows_at_the_next_read(sweep):
    with serving(sweep, refresh_s=0.2) as server:
        assert _column(_page(server, where="job=9"), "status") == ["not_started"]
        linear_job(sweep / "9", "gd", lr=0.1)
        time.sleep(0.3)
        assert _column(_page(server, where="job=9"), "status") == ["ok"]


def test_a_jobs_page_and_the_reports_figures(sweep, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    _, written = report(copy)
    with serving(sweep) as server:
        failed = json.loads(server.get("/api/job", name="5").body)
        assert failed["status"] == "failed" and failed["error"].startswith("ResourceExhaustedError: OOM")
        assert failed["files"] == ["5/result.json", "5/.hydra/overrides.yaml"]
        assert failed["record"]["error"] == failed["error"] and failed["overrides"] == ["lr=0.1", "batch_size=64"]
        assert server.get("/api/job", name="../5").status == 404
        figures = json.loads(server.get("/api/figures").body)["figures"]
        assert sorted(name.split("/")[1] for name in figures) == sorted(path.name for path in written)
        drawn = server.get(f"/figures/{figures[0]}")
        assert drawn.status == 200 and drawn.headers["content-type"] == "image/png" and drawn.body[:4] == b"\x89PNG"
        curves = json.loads(server.get("/api/job-figures", name="1").body)["figures"]
        assert [name.split("/")[1] for name in curves] == ["loss_softmax_gd.png", "epochs_softmax_gd.png"]
        assert server.get(f"/figures/{curves[0]}").body[:4] == b"\x89PNG"
        assert json.loads(server.get("/api/job-figures", name="9").body)["figures"] == []  # not started
        assert server.get("/api/job-figures", name="nothing").status == 404


# -- the command -------------------------------------------------------------------------------------

def test_serve_refuses_what_is_no_sweep_in_one_line(sweep, tmp_path, sweeper_cli):
    for given, said in ((tmp_path / "nowhere", "is not a directory"), (sweep / "1", "is one job of the sweep"),
                        (tmp_path, "holds sweeps and other folders")):
        (tmp_path / "other").mkdir(exist_ok=True)
        result = sweeper_cli("serve", str(given))
        assert result.returncode == 2 and said in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    taken = socket.create_server(("127.0.0.1", 0))
    result = sweeper_cli("serve", str(sweep), "--port", str(taken.getsockname()[1]))
    taken.close()
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "give another with --port" in result.stderr


def _first_line(process: subprocess.Popen) -> str:
    line = process.stdout.readline()
    assert line, process.stderr.read()
    return line


def test_serve_prints_the_url_and_the_ssh_line_and_listens_on_localhost_only(sweep):
    process = subprocess.Popen([sys.executable, "-m", "sweeper", "serve", str(sweep), "--port", "0"], cwd=ROOT,
                               env=checkout_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(process)
        match = re.search(r"at (http://localhost:(\d+)/\?token=([\w-]+)) .*ssh -N -L (\d+):localhost:(\d+) \S+@(\S+),", line)
        assert match, line
        url, port = match.group(1), int(match.group(2))
        assert match.group(4) == match.group(5) == str(port)
        assert not match.group(6).startswith("localhost")  # the host a laptop reaches (issue 29)
        with urllib.request.urlopen(url.replace("/?", "/api/sweep?"), timeout=30) as answer:
            assert json.loads(answer.read())["total"] == 12
        address = socket.gethostbyname(socket.gethostname())
        if not address.startswith("127."):  # another machine's view of this one: nobody answers there
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=5)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "Traceback" not in process.stderr.read()


def test_a_search_shows_the_objective_by_trial(tmp_path):
    search = tmp_path / "search"
    optuna_sweep(search, [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.5, "momentum": 0.8}, {"lr": 0.01, "momentum": 0.5}],
                 n_trials=6)
    with serving(search) as server:
        overview = json.loads(server.get("/api/sweep").body)
        assert overview["sweeps"] == [{"dir": str(search), "sweeper": "optuna_search", "search": True, "total": 6}]
        assert overview["summary"] == "6 jobs: 3 ok, 3 not started"
        figures = [name.split("/")[1] for name in json.loads(server.get("/api/figures").body)["figures"]]
    assert figures[0] == "search_softmax_momentum.png"


def test_slurms_pending_reasons_are_on_the_page(sweep, tmp_path, monkeypatch):
    """Jobs 8-11 submitted as Slurm array 77: sacct says 77_8 runs and the others wait; squeue says why."""
    update(sweep, {number: {"scheduler": "slurm", "scheduler_job_id": f"77_{number}"} for number in range(8, 12)})
    slurm = FakeSlurm(tmp_path / "bin", tmp_path / "calls.log")
    slurm.bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(slurm.bin_dir))
    slurm.command("sacct", "77_8|RUNNING\n77_[9-11]|PENDING\n")
    slurm.command("squeue", "77_9|Priority\n77_10|Priority\n77_11|Resources\n")
    with serving(sweep) as server:
        overview = json.loads(server.get("/api/sweep").body)
        job = json.loads(server.get("/api/job", name="9").body)
    assert overview["pending"] == ["Slurm job 77_9 (job 9) pending: Priority", "Slurm job 77_10 (job 10) pending: Priority",
                                   "Slurm job 77_11 (job 11) pending: Resources"]
    assert {c["status"]: c["count"] for c in overview["counts"]}["pending"] == 3
    assert (job["status"], job["scheduler"], job["scheduler_state"], job["scheduler_job_id"]) == ("pending", "Slurm", "PENDING", "77_9")


def test_serve_writes_no_index_into_the_sweep(sweep):
    """Records the sweep's index lacks (written elsewhere, or the index deleted): the page reads them
    and keeps their index lines in a folder of its own; the sweep is as it was, no `index/` in it."""
    shutil.rmtree(sweep / "index")
    before = _files(sweep)
    with serving(sweep, refresh_s=0) as server:
        for _ in range(2):  # the second read takes them from the server's own index
            assert server.get("/api/sweep").status == 200
    assert _files(sweep) == before and not (sweep / "index").exists()


def test_serve_of_a_sweep_it_cannot_write(tmp_path):
    """A sweep this user may read but not write (root's, served by `nobody`): the page answers."""
    shared = Path(tempfile.mkdtemp(prefix="sweeper-readonly-"))
    try:
        shared.chmod(0o755)
        sweep = shared / "sweep"
        softmax_grid_sweep(sweep, partial=True)
        shutil.rmtree(sweep / "index")
        before = _files(sweep)
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        process = subprocess.Popen([*as_nobody, sys.executable, "-m", "sweeper", "serve", str(sweep), "--port", "0"],
                                   cwd=ROOT, env={**checkout_env(), "HOME": str(tmp_path)}, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            url = re.search(r"at (http://\S+) ", _first_line(process)).group(1)
            with urllib.request.urlopen(url.replace("/?", "/api/sweep?"), timeout=30) as answer:
                assert json.loads(answer.read())["total"] == 12
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
            assert "Traceback" not in process.stderr.read()
        assert _files(sweep) == before and not (sweep / "index").exists()
    finally:
        shutil.rmtree(shared)
