"""The sweep's page in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's
chromium-driver (`.ci/run` installs both). Screenshots of each page go to $ARTIFACTS (or a temporary
folder); the test prints where."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from sweeper.status import summary
from sweeper.sweep.jobs import read_sweep
from tests.conftest import CHROMEDRIVER, run_cli
from tests.serving import serving
from tests.synthetic import linear_job, write_job, write_job_list

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # the sweeps are real multiruns

LIVE_S = 5.0   # a record that lands shows within this long, without a reload
ATTACK = '<img src=x onerror="window.attacked=1"><script>window.attacked=2</script>'


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ["ARTIFACTS"]) if os.environ.get("ARTIFACTS") else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the page: {folder}")
    return folder


@pytest.fixture(scope="module")
def chrome(chromium):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, tiny) -> Path:
    """A folder of three sweeps: ex1_gd (4 linear jobs, trained), two softmax jobs on tiny MNIST
    (trained), and a synthetic one whose second job has not run and whose first failed with an error
    that holds HTML."""
    folder = tmp_path_factory.mktemp("sweeps")
    ex1 = run_cli("run.py", "-m", "experiment=ex1_gd", "steps=30", f"hydra.sweep.dir={folder}/ex1_gd")
    assert ex1.returncode == 0, ex1.stderr
    mnist = run_cli("run.py", "-m", "task=softmax", "lr=0.1,0.5", "epochs=2", "batch_size=50",
                    f"data.dir={tiny}", f"hydra.sweep.dir={folder}/softmax")
    assert mnist.returncode == 0, mnist.stderr
    notes = folder / "notes"
    write_job_list(notes, "linear", "gd", [{"lr": 0.5}, {"lr": 0.05}], steps=30)
    write_job(notes / "0", "linear", "gd", {"lr": 0.5, "steps": 30}, {"final_loss": None}, {"loss": [1.0, 2.0]},
              status="failed", error=f"ValueError: {ATTACK}")
    (notes / "0" / "run.log").write_text(f"starting\n{ATTACK}\n")
    return folder


@pytest.fixture(scope="module")
def page(sweeps, chrome):
    with serving(sweeps) as server:
        chrome.get(f"{server.url}/?token={server.token}")
        yield chrome


def _until(condition, timeout: float = 10.0, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)


def _rows(driver) -> list[list[str]]:
    """The job table's rows as shown: each cell's text."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#jobs tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))")


def _columns(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#jobs thead th')].map(th => th.dataset.column)")


def _column(driver, name: str) -> list[str]:
    index = _columns(driver).index(name)
    return [row[index] for row in _rows(driver)]


def _click(driver, selector: str) -> None:
    """Click at once: the page rebuilds its tables at every poll, so an element found first may be gone."""
    driver.execute_script("document.querySelector(arguments[0]).click()", selector)


def _text(driver, selector: str) -> str:
    return driver.execute_script("return document.querySelector(arguments[0]).innerText", selector)


def _errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _sweep_view(driver) -> None:
    driver.execute_script("window.location.hash = ''")
    _until(lambda: driver.execute_script("return !document.getElementById('sweep-view').hidden"))


def test_the_sweep_page_shows_every_job_with_its_status(page, sweeps, artifacts):
    jobs = read_sweep(sweeps, [sweeps / name for name in ("ex1_gd", "notes", "softmax")]).jobs
    expected = sorted((job.name, job.status.value) for job in jobs)
    assert len(expected) == 8
    _until(lambda: len(_rows(page)) == 8, what="eight rows")
    assert sorted(zip(_column(page, "job"), _column(page, "status"))) == expected
    assert _text(page, "#summary") == summary(job.status for job in jobs)
    assert "1 not started" in _text(page, "#counts")
    _until(lambda: page.execute_script(
        "return [...document.querySelectorAll('#figures img')].filter(i => i.complete && i.naturalWidth > 0).length") >= 2,
        timeout=60, what="the report's figures")
    assert _text(page, "#best").count("\n") >= 2  # a header and one row per group
    page.save_screenshot(str(artifacts / "sweep.png"))
    assert _errors(page) == []


def test_sorting_and_a_filter_change_the_rows(page):
    _sweep_view(page)
    _until(lambda: len(_rows(page)) == 8)
    _click(page, "#jobs th[data-column='lr']")
    _until(lambda: "\u25b2" in _text(page, "#jobs th[data-column='lr']"))
    rates = [float(v) for v in _column(page, "lr")]
    assert rates == sorted(rates)
    _click(page, "#jobs th[data-column='lr']")
    _until(lambda: [float(v) for v in _column(page, "lr")] == sorted(rates, reverse=True), what="lr descending")
    where = page.find_element("id", "where")
    where.send_keys("lr>=0.1")
    _until(lambda: len(_rows(page)) == 4, what="lr>=0.1: 0.1 and 0.5 of softmax, 0.1 of ex1, 0.5 of notes")
    assert all(float(v) >= 0.1 for v in _column(page, "lr"))
    assert _text(page, "#matched") == "4 of 8 jobs shown by the filter"
    where.clear()
    page.execute_script("document.getElementById('where').dispatchEvent(new Event('input'))")
    _until(lambda: len(_rows(page)) == 8)
    _click(page, "#status-filter input[value='failed']")
    _until(lambda: _column(page, "status") == ["failed"], what="the failed job alone")
    _click(page, "#status-filter input[value='failed']")
    _until(lambda: len(_rows(page)) == 8)
    _click(page, "#jobs th[data-column='job']")  # back to a plain order
    assert _errors(page) == []


def test_a_job_page_shows_its_curve(page, artifacts):
    _sweep_view(page)
    _until(lambda: "softmax/1" in _column(page, "job"))
    _click(page, "#jobs a[href='#job=softmax%2F1']")
    _until(lambda: _text(page, "#job-name") == "job softmax/1")
    _until(lambda: page.execute_script(
        "return [...document.querySelectorAll('#job-figures img')].filter(i => i.complete && i.naturalWidth > 0).length") == 2,
        timeout=30, what="the loss curve and the per-epoch figure")
    facts = _text(page, "#job-facts")
    assert "ok" in facts and "lr=0.5" in facts
    assert "test_accuracy" in _text(page, "#job-metrics")
    assert '"status": "ok"' in _text(page, "#job-record")
    page.save_screenshot(str(artifacts / "job.png"))
    assert _errors(page) == []


def test_values_holding_html_show_as_text(page, artifacts):
    page.execute_script("window.location.hash = '#job=' + encodeURIComponent('notes/0')")
    _until(lambda: _text(page, "#job-error") == f"ValueError: {ATTACK}", what="the error as text")
    assert _text(page, "#job-log") == f"starting\n{ATTACK}"
    assert page.execute_script("return window.attacked") is None
    assert page.execute_script("return document.querySelectorAll('img[src=x], main script').length") == 0
    page.save_screenshot(str(artifacts / "failed_job.png"))
    assert _errors(page) == []


def test_a_record_written_while_the_page_is_open_appears_without_a_reload(page, sweeps):
    _sweep_view(page)
    _until(lambda: "notes/1" in _column(page, "job"))
    page.execute_script("window.notReloaded = true")
    status = lambda: dict(zip(_column(page, "job"), _column(page, "status"))).get("notes/1")
    assert status() == "not_started"
    linear_job(sweeps / "notes" / "1", "gd", lr=0.05, steps=30)
    landed = time.monotonic()
    _until(lambda: status() == "ok", timeout=LIVE_S, what="the new record")
    print(f"\nthe record showed {time.monotonic() - landed:.1f} s after it was written")
    assert page.execute_script("return window.notReloaded") is True
    assert _errors(page) == []


BIG = 100_000
RATES = (0.5, 0.1, 0.05, 0.01, 0.001)


@pytest.fixture(scope="module")
def big_sweep(tmp_path_factory) -> Path:
    """100,000 linear jobs of 5 steps each, records written directly (no training): a fifth per rate."""
    sweep = tmp_path_factory.mktemp("big") / "sweep"
    jobs = [{"lr": RATES[number % len(RATES)], "seed": number} for number in range(BIG)]
    write_job_list(sweep, "linear", "gd", jobs, steps=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)  # each record on disk before the next: not what is tested
        for number, hparams in enumerate(jobs):
            linear_job(sweep / str(number), "gd", steps=5, **hparams)
    return sweep


def _matched(driver) -> str:
    return _text(driver, "#matched")


@pytest.mark.slow
def test_a_sweep_of_100000_jobs_loads_and_filters_within_2_s(big_sweep, chrome, artifacts):
    started = time.monotonic()
    with serving(big_sweep) as server:
        server.get("/api/sweep")  # the server's own read of the sweep, once, as it starts
        read = time.monotonic() - started
        started = time.monotonic()
        chrome.get(f"{server.url}/?token={server.token}")
        _until(lambda: _matched(chrome) == f"{BIG} of {BIG} jobs shown by the filter" and len(_rows(chrome)) == 50,
               timeout=30, what="the first page of 100,000 jobs")
        first = time.monotonic() - started
        where = chrome.find_element("id", "where")
        started = time.monotonic()
        where.send_keys("lr=0.01")
        _until(lambda: _matched(chrome) == f"{BIG // 5} of {BIG} jobs shown by the filter", timeout=30,
               what="the filter lr=0.01")
        filtered = time.monotonic() - started
        assert set(_column(chrome, "lr")) == {"0.01"} and len(_rows(chrome)) == 50
        chrome.save_screenshot(str(artifacts / "sweep_100000.png"))
        assert _errors(chrome) == []
    print(f"\n100,000 jobs: the server's first read {read:.1f} s; the page's first load {first:.2f} s; "
          f"the filter (typed, 0.4 s of it waiting for more keys) {filtered:.2f} s")
    assert first < 2 and filtered < 2
