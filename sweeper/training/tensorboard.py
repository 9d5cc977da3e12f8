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


def _scalar(tag: str, value: float, step: int, wall_time: float) -> Any:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    return Event(wall_time=wall_time, step=step, summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]))


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


def _events(job_dir: Path, record: Record, wall_time: float) -> list[Any]:
    """The job's events: its session's start, the loss curve, the final metrics, the session's end."""
    loss = record.history.get("loss") or []
    steps = record.history.get("loss_steps") or range(1, len(loss) + 1)
    last = int(steps[-1]) if len(loss) else 0
    finals = {**record.metrics, "train_time_s": record.train_time_s}
    return [_session_start(job_dir, record, wall_time),
            *(_scalar(CURVE_TAG, value, step, wall_time) for step, value in zip(steps, loss) if _finite_number(value)),
            *(_scalar(name, value, last, wall_time) for name, value in finals.items() if _finite_number(value)),
            _session_end(record.status, last, wall_time)]


def write_summary(job_dir: Path, record: Record) -> None:
    """Write the job's HParams session, final metrics and loss curve in its `tensorboard/`.

    Through TensorBoard's own event file writer (the one `tensorboard.summary.Writer` writes
    with), not tf.summary: one eager summary op per point costs about 0.5 s for a 1,000-step curve,
    more than a whole job of exercise 1; this takes about 13 ms (benchmarks/RESULTS.md).
    """
    import_tensorflow()  # quietly, before TensorBoard's hparams.summary and gfile import it
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    events = _events(Path(job_dir), record, time.time())
    writer = EventFileWriter(str(Path(job_dir) / LOG_DIR), max_queue_size=len(events), filename_suffix=".summary")
    try:
        for event in events:
            writer.add_event(event)
    finally:
        writer.close()
