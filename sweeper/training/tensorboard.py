"""TensorBoard logs of a job, in its own directory: `<job dir>/tensorboard/`.

`tensorboard --logdir <sweep dir>` then shows every job of a sweep: its curves in the Scalars
dashboard and, in the HParams dashboard, one session per job with its hyperparameters and final
metrics. `logging.tensorboard=false` on the command line turns it off.

Two parts, both switched by `logging.tensorboard`:
- the job's HParams session, final metrics and loss curve, which the framework writes from the
  record once the job has ended (sweeper/job/tensorboard_summary.py). Tasks need nothing for this.
- `keras_callbacks(job_dir, enabled)`: here, for a task that trains with Keras `fit()`, the per-epoch
  scalars written while it trains (Keras' TensorBoard callback: `epoch_loss`, `epoch_accuracy`,
  ... in `tensorboard/train/` and `tensorboard/validation/`), so a run can be watched live.
  `EpochScalars` writes the same scalars for each copy of a fused group (sweeper/training/fused_loop.py),
  which trains in a loop of its own rather than `fit`.

TensorFlow and TensorBoard are imported inside the functions: `python -m sweeper` never needs them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from sweeper.training.tf import import_keras, import_tensorflow

LOG_DIR = "tensorboard"


def keras_callbacks(job_dir: Path | None, enabled: bool = True) -> list[Any]:
    """Callbacks for `model.fit(..., callbacks=keras_callbacks(job_dir, tensorboard))`.

    A Keras task takes `tensorboard: bool` from its task node (`tensorboard: ${logging.tensorboard}`
    in conf/task/<task>.yaml) and passes it here with its `job_dir`; with `enabled` false or no
    job_dir (a task called from a test) there are none. The per-epoch scalars land beside the
    HParams session that the framework writes, so the HParams dashboard shows them as metrics.
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
