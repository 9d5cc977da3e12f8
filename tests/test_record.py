"""The result record: atomic writes, JSON without NaN, clear errors for broken files."""
from __future__ import annotations

import io
import json
import os

import msgspec
import pytest

from sweeper.outcome import Outcome
from sweeper.files import write_atomic
from sweeper.job.record import Record, parsed_record, parsed_summary, read_record, read_record_keyed, write_record
from sweeper.status import RECORDED, Status


def make_record(**changes) -> Record:
    fields = dict(status="diverged", task="linear", optimizer="gd", hparams={"lr": 0.1, "steps": 10},
                  metrics={"final_loss": float("inf"), "W": float("nan"), "b": 1.0},
                  history={"loss": [1.0, 2.0]}, train_time_s=0.5, started="2026-01-01T00:00:00+00:00",
                  finished="2026-01-01T00:00:01+00:00", overrides=["lr=0.1"], versions={"python": "3.11"},
                  git_commit=None, host="here")
    return Record(**{**fields, **changes})


def test_record_round_trips_with_non_finite_numbers_as_null(tmp_path):
    path = write_record(tmp_path, make_record())
    data = json.loads(path.read_text())  # strict JSON: no NaN or Infinity tokens
    assert data["metrics"] == {"final_loss": None, "W": None, "b": 1.0}
    assert read_record(path) == make_record(metrics={"final_loss": None, "W": None, "b": 1.0})
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    class Unreadable(io.StringIO):  # a source that fails half way, as a full disk or a lost mount would
        def read(self, size: int | None = -1) -> str:
            raise OSError("read failed")

    with pytest.raises(OSError, match="read failed"):
        write_atomic(target, Unreadable())
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


@pytest.mark.parametrize("content", ['{"status": "ok"', "[]", '{"status": "ok"}', ""])
def test_broken_records_raise_naming_the_file(tmp_path, content):
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"{path}: not a valid result record"):
        read_record(path)


@pytest.mark.parametrize("status", sorted(RECORDED))
def test_each_recorded_status_round_trips_as_a_status(tmp_path, status):
    path = write_record(tmp_path, make_record(status=status))
    assert path.read_text().startswith(f'{{\n "status": "{status.value}",\n')  # the file: the plain value
    assert type(read_record(path).status) is Status and read_record(path).status is status
    assert read_record(write_record(tmp_path, make_record(status=status.value))).status is status


@pytest.mark.parametrize("status", ["great", "running", None])
def test_a_record_of_an_unknown_or_unrecorded_status_is_damaged(tmp_path, status):
    path = write_record(tmp_path, make_record())
    path.write_text(path.read_text().replace('"status": "diverged"', f'"status": {json.dumps(status)}'))
    with pytest.raises(ValueError, match=f"{path}: not a valid result record"):
        read_record(path)


def test_an_outcome_holds_a_status():
    assert Outcome(status="pruned", metrics={}, history={}, train_time_s=1.0).status is Status.PRUNED
    with pytest.raises(ValueError):
        Outcome(status="fine", metrics={}, history={}, train_time_s=1.0)


def _record_text(tmp_path, history) -> str:
    return write_record(tmp_path, make_record(history={"loss": [1.0, 2.0]})).read_text().replace(
        '"loss": [\n   1.0,\n   2.0\n  ]', f'"loss": {history}')


@pytest.mark.parametrize("history", ["[1.0, 2.0]", "[1.0, NaN]", "[[1.0, [2.0]], {\"a\": 1}]", "[]", '["a[b"]'])
def test_a_summary_is_the_record_without_its_history(tmp_path, history):
    """parsed_summary skips the history unparsed where it can (flat curves), else parses it as
    parsed_record does (nested values, NaN as Python's json wrote it): the same record either way."""
    text = _record_text(tmp_path, history)
    assert f'"loss": {history}' in text
    record = parsed_record(text)
    assert record.history["loss"] is not None
    assert parsed_summary(text) == msgspec.structs.replace(record, history={})
    assert parsed_summary(text.encode()) == msgspec.structs.replace(record, history={})


@pytest.mark.parametrize("history", ["3", "[" * 30 + "]" * 30, '{"a": 1}'])
def test_a_summary_refuses_what_the_record_refuses_in_its_words(tmp_path, history):
    path = tmp_path / "result.json"
    path.write_text(_record_text(tmp_path, history))
    with pytest.raises(ValueError) as whole:
        read_record(path)
    with pytest.raises(ValueError) as summary:
        read_record_keyed(path, history=False)
    assert str(summary.value) == str(whole.value)
    assert "history" in str(whole.value) or "nest" in str(whole.value)
