"""A job's TensorBoard summary (sweeper/job/tensorboard_summary.py): the time `write_summary` takes
for a record with a 1,000-point loss curve (an exercise-1 job of 1,000 steps), against the same
events through TensorBoard's EventFileWriter (its checksums in pure Python), and the same scalars
through tf.summary, one eager op per point (TensorBoard's HParams tutorial's way), after
TensorFlow's import, best of ROUNDS (5, or the first argument).
Run: python benchmarks/tensorboard_summary.py [ROUNDS]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from sweeper.job.record import Record
from sweeper.job.tensorboard_summary import CURVE_TAG, _events, write_summary
from sweeper.status import Status
from sweeper.training.tf import import_tensorflow

POINTS = 1000


def record() -> Record:
    loss = [1.0 / (step + 1) for step in range(POINTS)]
    return Record(status=Status.OK, task="linear", optimizer="adam", hparams={"lr": 0.1, "beta1": 0.9},
                  metrics={"final_loss": loss[-1]}, history={"loss": loss}, train_time_s=0.03,
                  started="2026-12-07T00:00:00Z", finished="2026-12-07T00:00:01Z", overrides=["lr=0.1"],
                  versions={}, git_commit=None, host="bench")


def through_tf_summary(directory: Path, job: Record) -> None:
    tf = import_tensorflow()
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default():
        hp.hparams({**job.hparams, "optimizer": job.optimizer, "task": job.task}, trial_id="0")
        for step, value in enumerate(job.history["loss"], start=1):
            tf.summary.scalar(CURVE_TAG, value, step=step)
        tf.summary.scalar("final_loss", job.metrics["final_loss"], step=POINTS)
    writer.close()


def through_event_file_writer(directory: Path, job: Record) -> None:
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(directory), max_queue_size=0, filename_suffix=".summary")
    for event in _events(directory, job, time.time()):
        writer.add_event(event)
    writer.close()


def best_of(rounds: int, write: Callable[[Path, Record], object]) -> float:
    job, times = record(), []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as directory:
            start = time.perf_counter()
            write(Path(directory) / "0", job)
            times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    import_tensorflow()
    best_of(1, write_summary)  # TensorBoard's modules imported once, as in a sweep's first job
    best_of(1, through_event_file_writer)
    best_of(1, through_tf_summary)
    print(f"write_summary, {POINTS} points: {1e3 * best_of(rounds, write_summary):.1f} ms (best of {rounds})")
    print(f"EventFileWriter, {POINTS} points: {1e3 * best_of(rounds, through_event_file_writer):.1f} ms "
          f"(best of {rounds})")
    print(f"tf.summary, {POINTS} points: {1e3 * best_of(rounds, through_tf_summary):.1f} ms (best of {rounds})")


if __name__ == "__main__":
    main()
