"""TensorBoard logs of a job, in its own directory: `<job dir>/tensorboard/`.

`tensorboard --logdir <sweep dir>` then shows every job of a sweep: its curves in the Scalars
dashboard and, in the HParams dashboard, one session per job with its hyperparameters and final
metrics. `logging.tensorboard=false` on the command line turns it off.

Two parts, both switched by `logging.tensorboard`:
- `write_summary(job_dir, record)`: the framework calls it (sweeper/job/execute.py) for every job once
  the record is written: the HParams session (the record's hparams, optimizer and task, and how it
  ended: ok or pruned a success, diverged, failed or interrupted a failure), the final metrics and
  `train_time_s` as scalars, and the training-loss curve of `history["loss"]` as `train_loss_curve`
  (against `history["loss_steps"]` when the task records it; not `loss`, whose last point the HParams
  dashboard would show beside `final_loss` as a metric that disagrees). Tasks need nothing for this.
- `keras_callbacks(job_dir, enabled)`: for a task that trains with Keras `fit()`, the per-epoch
  scalars written while it trains (Keras' TensorBoard callback: `epoch_loss`, `epoch_accuracy`,
  ... in `tensorboard/train/` and `tensorboard/validation/`), so a run can be watched live.
  `EpochScalars` writes the same scalars for each copy of a fused group (sweeper/training/fused_loop.py),
  which trains in a loop of its own rather than `fit`.

TensorFlow and TensorBoard are imported inside the functions: `python -m sweeper` never needs them.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from sweeper.job.record import Record
from sweeper.job.status import Status
from sweeper.training.tf import import_keras, import_tensorflow

LOG_DIR = "tensorboard"
CURVE_TAG = "train_loss_curve"


def keras_callbacks(job_dir: Path | None, enabled: bool = True) -> list[Any]:
    """Callbacks for `model.fit(..., callbacks=keras_callbacks(job_dir, tensorboard))`.

    A Keras task takes `tensorboard: bool` from its task node (`tensorboard: ${logging.tensorboard}`
    in conf/task/<task>.yaml) and passes it here with its `job_dir`; with `enabled` false or no
    job_dir (a task called from a test) there are none. The per-epoch scalars land beside the
    HParams session that `write_summary` writes, so the HParams dashboard shows them as metrics.
    """
    if not enabled or job_dir is None:
        return []
    keras = import_keras()

    return [keras.callbacks.TensorBoard(log_dir=str(Path(job_dir) / LOG_DIR), update_freq="epoch",
                                        write_graph=False, profile_batch=0)]


class EpochScalars:
    """The scalars Keras' TensorBoard callback (as `keras_callbacks` sets it up) writes at each epoch
    end, written for each copy of a fused group into its own job's directory: the same tags and
    steps (`epoch_loss`, `epoch_accuracy`, `epoch_learning_rate` in `train/` at the epoch;
    `epoch_loss`, `epoch_accuracy` in `validation/` at the epoch, and `evaluation_*_vs_iterations`
    there at the optimizer's step), with tf.summary's file writers as Keras has them."""

    def __init__(self, job_dirs: Sequence[Path], learning_rates: Sequence[float]):

        tf = import_tensorflow()
        self.writers = [(tf.summary.create_file_writer(str(Path(d) / LOG_DIR / "train")),
                         tf.summary.create_file_writer(str(Path(d) / LOG_DIR / "validation"))) for d in job_dirs]
        self.learning_rates = list(learning_rates)

    def write(self, epoch: int, copies: Iterable[int], counters: Sequence[dict[str, Any]], iterations: int) -> None:
        """After epoch `epoch` (0-based, as Keras counts): each of `copies`' last values of the
        record's curves (`counters`, sweeper/training/fit.py's fields); flushed, so it shows live."""

        tf = import_tensorflow()
        for i in copies:
            train, validation = self.writers[i]
            last = {name: counters[i][name][-1]
                    for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
            with train.as_default():
                tf.summary.scalar("epoch_accuracy", last["train_accuracy"], step=epoch)
                tf.summary.scalar("epoch_loss", last["train_loss"], step=epoch)
                tf.summary.scalar("epoch_learning_rate", self.learning_rates[i], step=epoch)
            with validation.as_default():
                tf.summary.scalar("evaluation_accuracy_vs_iterations", last["test_accuracy"], step=iterations)
                tf.summary.scalar("evaluation_loss_vs_iterations", last["test_loss"], step=iterations)
                tf.summary.scalar("epoch_accuracy", last["test_accuracy"], step=epoch)
                tf.summary.scalar("epoch_loss", last["test_loss"], step=epoch)
            train.flush()
            validation.flush()

    def close(self) -> None:
        for writers in self.writers:
            for writer in writers:
                writer.close()


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _events(job_dir: Path, record: Record, wall_time: float) -> list[bytes]:
    """The event file's records, serialized. The curve's points reuse one Event, changed in place:
    building three messages per point was 5 ms of a 1,000-step job; the bytes are the same."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import summary_v2 as hparams_summary

    point = Event(wall_time=wall_time, summary=Summary(value=[Summary.Value()]))
    value_of = point.summary.value[0]

    def scalar(tag: str, value: float, step: int) -> bytes:
        point.step, value_of.tag, value_of.simple_value = step, tag, value
        return bytes(point.SerializeToString())

    hparams = {**record.hparams, "optimizer": record.optimizer, "task": record.task}
    trial = f"{job_dir.parent.name}/{job_dir.name}"  # unique across the sweeps under one logdir
    events = [Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString(),
              Event(wall_time=wall_time, step=0,
                    summary=hparams_summary.hparams_pb(hparams, trial_id=trial)).SerializeToString()]
    loss = record.history.get("loss") or []
    steps = record.history.get("loss_steps") or range(1, len(loss) + 1)
    events += [scalar(CURVE_TAG, value, step) for step, value in zip(steps, loss) if _finite_number(value)]
    last = int(steps[-1]) if len(loss) else 0
    finals = {**record.metrics, "train_time_s": record.train_time_s}
    events += [scalar(name, value, last) for name, value in finals.items() if _finite_number(value)]
    events.append(Event(wall_time=wall_time, step=last,
                        summary=_session_end(record.status, wall_time)).SerializeToString())
    return events


def _session_end(status: Status, wall_time: float) -> Any:
    """The HParams session's end: its status (Status.hparams_session). Built from TensorBoard's
    protos (hparams.summary's session_end_pb returns TensorFlow's Summary class, which
    TensorBoard's Event does not take)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(status.hparams_session),
                                         end_time_secs=wall_time)
    data = plugin_data_pb2.HParamsPluginData(session_end_info=end)
    return Summary(value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, tensor=metadata.NULL_TENSOR,
                                        metadata=metadata.create_summary_metadata(data))])


def write_summary(job_dir: Path, record: Record) -> Path:
    """Write the job's HParams session, final metrics and loss curve; return the event file.

    The events are TensorBoard's own protocol buffers, written as the TFRecord file that
    tf.summary writes. Not through tf.summary itself: one eager summary op per point costs about
    0.17 s for a 1,000-step curve, more than a whole job of exercise 1; this takes a few ms.
    """

    tf = import_tensorflow()
    directory = Path(job_dir) / LOG_DIR
    directory.mkdir(parents=True, exist_ok=True)
    wall_time = time.time()
    path = directory / f"events.out.tfevents.{int(wall_time)}.{socket.gethostname()}.{os.getpid()}.summary"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for event in _events(Path(job_dir), record, wall_time):
            writer.write(event)
    return path
