"""A job's TensorBoard summary, written from its record once the job has ended (execute.py calls
`write_summary` for every finished job with `logging.tensorboard`), in the job's `tensorboard/`
beside the per-epoch scalars a Keras task writes while it trains (sweeper/training/tensorboard.py).

The HParams session (the record's hparams, optimizer and task, and how it ended: ok or pruned a
success, diverged, failed or interrupted a failure), the final metrics and `train_time_s` as
scalars, and the training-loss curve of `history["loss"]` as `train_loss_curve` (against
`history["loss_steps"]` when the task records it; not `loss`, whose last point the HParams
dashboard would show beside `final_loss` as a metric that disagrees). Tasks need nothing for this.

TensorFlow and TensorBoard are imported inside the functions: `python -m sweeper` never needs them.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

from sweeper.job.record import Record
from sweeper.status import Status
from sweeper.training.tensorboard import LOG_DIR
from sweeper.training.tf import import_tensorflow

CURVE_TAG = "train_loss_curve"


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _session_start(job_dir: Path, record: Record, wall_time: float) -> Any:
    """The HParams session: the record's hparams, optimizer and task (hparams.summary_v2.hparams_pb)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import summary_v2

    hparams = {**record.hparams, "optimizer": record.optimizer, "task": record.task}
    trial = f"{job_dir.parent.name}/{job_dir.name}"  # unique across the sweeps under one logdir
    return Event(wall_time=wall_time, step=0,
                 summary=summary_v2.hparams_pb(hparams, trial_id=trial, start_time_secs=wall_time))


def _session_end(status: Status, step: int, wall_time: float) -> Any:
    """The HParams session's end: its status (Status.hparams_session), from hparams.summary's
    session_end_pb; that returns TensorFlow's Summary class, read into TensorBoard's for its Event."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, summary

    end = summary.session_end_pb(api_pb2.Status.Value(status.hparams_session), end_time_secs=wall_time)
    return Event(wall_time=wall_time, step=step, summary=Summary.FromString(end.SerializeToString()))


def _events(job_dir: Path, record: Record, wall_time: float) -> Iterator[Any]:
    """The job's events: its session's start, the loss curve, the final metrics, the session's end.
    The scalars are one Event changed in place, each yielded before the next change (the writer
    serializes it as it takes it): three messages per point were 5 ms of a 1,000-step job."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    yield _session_start(job_dir, record, wall_time)
    point = Event(wall_time=wall_time, summary=Summary(value=[Summary.Value()]))
    value_of = point.summary.value[0]
    loss = record.history.get("loss") or []
    steps = record.history.get("loss_steps") or range(1, len(loss) + 1)
    last = int(steps[-1]) if len(loss) else 0
    finals = {**record.metrics, "train_time_s": record.train_time_s}
    for tag, step, value in [*((CURVE_TAG, step, value) for step, value in zip(steps, loss)),
                             *((name, last, value) for name, value in finals.items())]:
        if _finite_number(value):
            point.step, value_of.tag, value_of.simple_value = step, tag, value
            yield point
    yield _session_end(record.status, last, wall_time)


def write_summary(job_dir: Path, record: Record) -> Path:
    """Write the job's HParams session, final metrics and loss curve in its `tensorboard/`; return the file.

    The events are TensorBoard's own messages (the session's from its hparams summary API), framed
    by TensorFlow's `tf.io.TFRecordWriter`: an event file is a TFRecord file that starts with its
    version. Not through TensorBoard's EventFileWriter, which checksums each record in pure Python
    (11 ms more for a 1,000-point curve: a job's whole bookkeeping doubled), nor tf.summary, one
    eager op per point (0.3 s); this takes about 1.5 ms (benchmarks/RESULTS.md).
    """
    tf = import_tensorflow()  # quietly, before TensorBoard's hparams.summary imports it
    from tensorboard.compat.proto.event_pb2 import Event

    directory = Path(job_dir) / LOG_DIR
    directory.mkdir(parents=True, exist_ok=True)
    wall_time = time.time()
    # EventFileWriter's name, as TensorBoard lists a run's files: its time, host, process
    path = directory / f"events.out.tfevents.{int(wall_time):010d}.{socket.gethostname()}.{os.getpid()}.summary"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString())
        for event in _events(Path(job_dir), record, wall_time):
            writer.write(event.SerializeToString())
    return path
