"""TensorBoard logs of every job: written for real, read back as TensorBoard reads them."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from sweeper.sweep.collate import collate
from sweeper.job.record import read_record, write_record
from sweeper.status import PROBLEM, RECORDED, Status
from sweeper.job.tensorboard_summary import CURVE_TAG, write_summary
from sweeper.training.tensorboard import LOG_DIR, keras_callbacks
from tests import synthetic
from tests.conftest import run_cli


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in one TensorBoard run directory, as TensorBoard's own reader sees it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    found = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
    for tag in accumulator.Tags()["tensors"]:  # tf.summary (Keras) writes scalars as tensors
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
            found[tag] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
    return found


def test_summary_of_a_record_has_its_curve_and_final_metrics(tmp_path):
    synthetic.mnist_job(tmp_path / "3", "softmax", "momentum", lr=0.1, momentum=0.9, batch_size=128)
    record = read_record(tmp_path / "3" / "result.json")
    write_summary(tmp_path / "3", record)
    found = scalars(tmp_path / "3" / LOG_DIR)
    steps = record.history["loss_steps"]
    assert [s for s, _ in found[CURVE_TAG]] == steps
    assert [v for _, v in found[CURVE_TAG]] == pytest.approx(record.history["loss"], rel=1e-6)
    assert "loss" not in found  # no scalar named like a final metric
    assert found["test_accuracy"] == [(steps[-1], pytest.approx(record.metrics["test_accuracy"], rel=1e-6))]
    assert found["train_time_s"][0][1] == pytest.approx(record.train_time_s)
    assert "devices" not in found  # lists are no scalars


def test_every_recorded_status_ends_its_hparams_session_so(tmp_path):
    """Each status a record can hold has its HParams session status (none unknown), a problem
    a failure; what ok, diverged and failed show is what it always was."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, metadata

    synthetic.mnist_job(tmp_path / "0", "softmax", "gd", lr=0.1, batch_size=128)
    record = read_record(tmp_path / "0" / "result.json")
    shown = {}
    for status in RECORDED:
        job_dir = tmp_path / status.value
        job_dir.mkdir()
        record.status = status
        write_summary(job_dir, read_record(write_record(job_dir, record)))
        accumulator = EventAccumulator(str(job_dir / LOG_DIR), size_guidance={"tensors": 0})
        accumulator.Reload()
        content = accumulator.SummaryMetadata(metadata.SESSION_END_INFO_TAG).plugin_data.content
        shown[status] = api_pb2.Status.Name(metadata.parse_session_end_info_plugin_data(content).status)
        assert shown[status] == status.hparams_session
    assert all(shown[s] == ("STATUS_FAILURE" if s in PROBLEM else "STATUS_SUCCESS") for s in RECORDED), shown
    assert {s: shown[s] for s in (Status.OK, Status.DIVERGED, Status.FAILED)} == {
        Status.OK: "STATUS_SUCCESS", Status.DIVERGED: "STATUS_FAILURE", Status.FAILED: "STATUS_FAILURE"}


def test_keras_callbacks_write_per_epoch_scalars(tmp_path):
    import keras

    assert keras_callbacks(tmp_path, enabled=False) == [] and keras_callbacks(None) == []
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, size=64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=3, batch_size=16, validation_data=(x, y), verbose=0,
              callbacks=keras_callbacks(tmp_path))
    for split in ("train", "validation"):
        found = scalars(tmp_path / LOG_DIR / split)
        assert [s for s, _ in found["epoch_loss"]] == [0, 1, 2]
        assert [s for s, _ in found["epoch_accuracy"]] == [0, 1, 2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def momentum_sweep(tmp_path_factory):
    """A real linear multirun, 4 jobs; those with lr=0.1 diverge."""
    sweep = tmp_path_factory.mktemp("tb") / "sweep"
    result = run_cli("run.py", "-m", "optimizer=momentum", "lr=0.1,0.01", "momentum=0.5,0.9", "steps=200",
                     f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    return sweep


@pytest.mark.slow
def test_tensorboard_hparams_dashboard_has_one_session_per_job(momentum_sweep):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(momentum_sweep),
                               "--host", "127.0.0.1", "--port", str(port), "--load_fast=false",
                               "--reload_interval", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups"
    request = {"experimentName": "", "startIndex": 0, "sliceSize": 100, "includeMetrics": True,
               "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
               "aggregationType": "AGGREGATION_AVG"}
    try:
        groups: list = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                groups = _post(url, request).get("sessionGroups", [])
            except (urllib.error.URLError, ConnectionError):
                groups = []
            if len(groups) == 4 and all(len(g["metricValues"]) >= 4 for g in groups):
                break
            assert server.poll() is None, server.stdout.read().decode()
            time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert len(groups) == 4, f"TensorBoard showed {len(groups)} sessions"
    sessions = {g["sessions"][0]["name"]: g for g in groups}
    assert sorted(sessions) == [f"{n}/{LOG_DIR}" for n in range(4)]
    for n in range(4):
        record = read_record(momentum_sweep / str(n) / "result.json")
        group = sessions[f"{n}/{LOG_DIR}"]
        assert group["hparams"] == {**record.hparams, "optimizer": "momentum", "task": "linear"}
        metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        expected = {k: v for k, v in record.metrics.items() if v is not None}
        assert {k: metrics[k] for k in expected} == pytest.approx(expected, rel=1e-6, abs=1e-30)
        assert metrics["train_time_s"] == pytest.approx(record.train_time_s, rel=1e-6)
        assert metrics[CURVE_TAG] == pytest.approx(record.history["loss"][-1], rel=1e-6)
        assert "loss" not in metrics
        expected_status = {"ok": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE"}[record.status]
        assert group["sessions"][0]["status"] == expected_status
    statuses = sorted(read_record(momentum_sweep / str(n) / "result.json").status for n in range(4))
    assert statuses == ["diverged", "diverged", "ok", "ok"]


@pytest.mark.slow
def test_report_of_a_real_partial_sweep(sweeper_cli, momentum_sweep, tmp_path):
    sweep = shutil.copytree(momentum_sweep, tmp_path / "sweep")
    shutil.rmtree(sweep / "3")  # not started yet
    result = sweeper_cli("report", str(sweep))
    assert result.returncode == 0, result.stderr
    markdown = (sweep / "report" / "report.md").read_text()
    assert "Covers **3 of 4 jobs** with a record; 4 jobs: 1 ok, 2 diverged, 1 not started." in markdown
    table = collate(sweep).set_index("job")
    assert (table.loc["3", "lr"], table.loc["3", "momentum"], table.loc["3", "status"]) == (0.01, 0.9, "not_started")
    assert {p.name for p in (sweep / "report").glob("*.png")} == {"heatmap_linear_momentum.png",
                                                                  "loss_linear_momentum.png",
                                                                  "best_per_value_linear_momentum.png"}


@pytest.mark.slow
def test_tensorboard_switched_off(tmp_path):
    result = run_cli("run.py", "-m", "steps=10", "logging.tensorboard=false", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "0" / "result.json").exists() and not (tmp_path / "0" / LOG_DIR).exists()
