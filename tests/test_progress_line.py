"""A running job's progress (sweeper/training/progress_line.py): one line updated in place on a
terminal, one line per epoch elsewhere, the per-epoch lines in the job's log file, for a lone Keras
job and for a fused group. A terminal is faked: a stream whose isatty() says yes."""
from __future__ import annotations

import logging
import re
import sys

import pytest

from sweeper import job_log
from sweeper.job.display import group_label
from sweeper.training.progress_line import ProgressLine, duration, values
from tasks import mnist, softmax

SGD = {"_target_": "keras.optimizers.SGD", "name": "gd", "learning_rate": 0.5}
EPOCH_LINE = re.compile(r"^(.*: )?epoch (\d+)/(\d+): loss \S+( to \S+)?, test accuracy \S+( to \S+)?, \d+ images/s, "
                        r"\d+\.\d\d s(, \d+:\d\d left)?$")
IN_PLACE = re.compile(r"\r([^\r\x1b]*)\x1b\[K")


class Terminal:
    """What the test prints, on a standard output that says it is a terminal: pytest's capture,
    whose stream is sys.stdout while the test runs (not yet while its fixtures are made)."""

    def __init__(self, capsys, monkeypatch):
        self.capsys = capsys
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
        monkeypatch.setenv("COLUMNS", "300")

    def getvalue(self) -> str:
        return self.capsys.readouterr().out


@pytest.fixture
def run_log(tmp_path):
    """A file handler on the root logger, as Hydra gives each job (its run.log)."""
    path = tmp_path / "run.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    yield path
    logging.getLogger().removeHandler(handler)
    handler.close()


def data(directory: str) -> mnist.Splits:
    return mnist.load(dir=directory)


def _drive(progress: ProgressLine, epochs: int = 2, steps: int = 3) -> None:
    """An epoch of `steps` steps of 100 images, one second each; the test takes a second more."""
    now = 0.0
    progress.begin(epochs, steps, now)
    for epoch in range(epochs):
        progress.begin_epoch(epoch, now)
        for step in range(1, steps + 1):
            now += 1.0
            progress.step_end(step, [0.5 - epoch * 0.1, 0.7], now)
        now += 1.0
        progress.end_epoch([0.4, 0.6], [0.9], steps * 1.0, now)
    progress.end()


def test_numbers_and_times_as_the_line_shows_them():
    assert values(0.123456) == "0.1235" and values([0.3, 0.45]) == "0.3 to 0.45" and values([]) == "-"
    assert values([0.3, float("nan")]) == "0.3 to inf" and values([0.5, 0.5]) == "0.5"
    assert duration(7.4) == "0:07" and duration(750) == "12:30" and duration(3723) == "1:02:03"


def test_a_fused_group_is_named_by_what_its_jobs_share_and_their_own():
    assert group_label([["task=softmax", "lr=0.5"], ["task=softmax", "lr=0.1"]]) == "task=softmax [2 fused: lr=0.5 | lr=0.1]"
    many = [["experiment=ex1_adam", f"lr={lr}", "beta1=0.9"] for lr in (0.1, 0.01, 0.001, 0.0001, 1e-05, 1e-06, 1e-07)]
    assert group_label(many) == "beta1=0.9 [7 fused: lr=0.1 | ... | lr=1e-07]"


def test_on_a_terminal_one_line_is_updated_in_place_and_the_epochs_go_to_the_log_only(capsys, monkeypatch, run_log):
    terminal = Terminal(capsys, monkeypatch)
    _drive(ProgressLine("lr=0.5", 100, 300, terminal=True))
    out = terminal.getvalue()
    shown = IN_PLACE.findall(out)
    # steps 1 and 3 of each epoch (REFRESH_S apart at one second a step: every step), then cleared
    assert shown[0] == "lr=0.5: epoch 1/2 step 1/3 loss 0.5 to 0.7, 100 images/s, 0:05 left", shown
    assert shown[2] == "lr=0.5: epoch 1/2 step 3/3 loss 0.5 to 0.7, 100 images/s, 0:03 left", shown
    assert shown[3].startswith("lr=0.5: epoch 2/2 step 1/3 loss 0.4 to 0.7, 100 images/s, 0:0")
    assert out.endswith("\r\x1b[K") and "\n" not in out  # nothing left on the terminal, no line added
    logged = run_log.read_text().splitlines()
    assert logged == ["[sweeper.job][INFO] - lr=0.5: epoch 1/2: loss 0.4 to 0.6, test accuracy 0.9, 100 images/s, 4.00 s, "
                      "0:04 left",
                      "[sweeper.job][INFO] - lr=0.5: epoch 2/2: loss 0.4 to 0.6, test accuracy 0.9, 100 images/s, 4.00 s"]


def test_off_a_terminal_one_line_per_epoch_printed_and_logged(capsys, run_log):
    _drive(ProgressLine("", 100, 250, terminal=False), epochs=3)
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert [EPOCH_LINE.match(line)[2] for line in lines] == ["1", "2", "3"], lines
    assert lines[0] == "epoch 1/3: loss 0.4 to 0.6, test accuracy 0.9, 83 images/s, 4.00 s, 0:08 left"  # 250 images
    assert [line.split(" - ", 1)[1] for line in run_log.read_text().splitlines()] == lines


def test_the_next_job_line_replaces_the_line_shown_in_place(capsys, monkeypatch):
    terminal = Terminal(capsys, monkeypatch)
    job_log.in_place("epoch 1/2 step 1/3")
    job_log.echo("[1/2] lr=0.5 -> ok")
    assert terminal.getvalue() == "\repoch 1/2 step 1/3\x1b[K\r\x1b[K[1/2] lr=0.5 -> ok\n"


def test_the_line_is_cut_to_the_terminal_width(capsys, monkeypatch):
    terminal = Terminal(capsys, monkeypatch)
    monkeypatch.setenv("COLUMNS", "30")
    job_log.in_place("x" * 100)
    job_log.clear_in_place()
    assert terminal.getvalue() == "\r" + "x" * 29 + "\x1b[K\r\x1b[K"


def test_on_a_narrow_terminal_the_name_is_cut_not_the_numbers(capsys, monkeypatch):
    terminal = Terminal(capsys, monkeypatch)
    monkeypatch.setenv("COLUMNS", "80")
    _drive(ProgressLine("task=softmax data.train_samples=3000 data.test_samples=500 epochs=2", 100, 300, terminal=True))
    shown = IN_PLACE.findall(terminal.getvalue())
    assert shown[0] == "task=softmax da...: epoch 1/2 step 1/3 loss 0.5 to 0.7, 100 images/s, 0:05 left"
    assert len(shown[0]) == 79


def test_a_softmax_job_on_a_terminal(tiny, capsys, monkeypatch, run_log):
    terminal = Terminal(capsys, monkeypatch)
    outcome = softmax.run(optimizer=SGD, data=data(tiny), batch_size=100, epochs=2, seed=0, progress="lr=0.5")
    assert outcome.status == "ok"
    out = terminal.getvalue()
    shown = IN_PLACE.findall(out)
    assert shown and all(re.match(r"^lr=0\.5: epoch [12]/2 step [123]/3 loss \S+, \d+ images/s, \d+:\d\d left$", s)
                         for s in shown if s), repr(out)
    assert shown[-1] == "" and "\n" not in out  # cleared at the end, no line of Keras' either
    logged = [line.split(" - ", 1)[1] for line in run_log.read_text().splitlines()]
    assert [EPOCH_LINE.match(line).group(1, 2) for line in logged] == [("lr=0.5: ", "1"), ("lr=0.5: ", "2")], logged


def test_a_softmax_job_in_a_log_prints_one_line_per_epoch(tiny, capsys):
    softmax.run(optimizer=SGD, data=data(tiny), batch_size=100, epochs=3, seed=0, progress="lr=0.5")
    lines = capsys.readouterr().out.splitlines()
    assert [EPOCH_LINE.match(line)[2] for line in lines] == ["1", "2", "3"], lines
    assert lines[-1].startswith("lr=0.5: epoch 3/3: loss ") and "left" not in lines[-1]


def test_a_fused_group_prints_one_line_per_epoch_naming_its_copies(tiny, capsys):
    name = group_label([["task=softmax", "lr=0.5"], ["task=softmax", "lr=0.1"]])
    outcomes = softmax.run_fused(optimizers=[SGD, {**SGD, "learning_rate": 0.1}], data=data(tiny), batch_size=100,
                                 epochs=2, seed=0, progress=name)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("task=softmax [2 fused: lr=0.5 | lr=0.1]: epoch ") for line in lines)
    assert all(EPOCH_LINE.match(line) and " to " in line.split("test accuracy")[0] for line in lines), lines


def test_a_fused_group_on_a_terminal(tiny, capsys, monkeypatch):
    terminal = Terminal(capsys, monkeypatch)
    softmax.run_fused(optimizers=[SGD, {**SGD, "learning_rate": 0.1}], data=data(tiny), batch_size=100, epochs=1,
                      seed=0, progress="[2 fused: lr=0.5 | lr=0.1]")
    out = terminal.getvalue()
    shown = [s for s in IN_PLACE.findall(out) if s]
    assert shown and all(s.startswith("[2 fused: lr=0.5 | lr=0.1]: epoch 1/1 step ") for s in shown), shown
    assert " to " in shown[-1] and out.endswith("\r\x1b[K") and "\n" not in out


def test_no_progress_where_the_runner_asks_for_none(tiny, capsys):
    softmax.run(optimizer=SGD, data=data(tiny), batch_size=100, epochs=1, seed=0, progress=None)
    assert capsys.readouterr().out == ""
