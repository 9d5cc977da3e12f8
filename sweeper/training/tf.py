"""TensorFlow, imported in one place, without its C++ start-up lines on the user's terminal; and a
user's module (a task, a data loader) that imports it at its top, imported the same way.

On a CPU machine TensorFlow 2.21 prints about seven lines as it starts (oneDNN, no CUDA drivers,
CPU instructions, cuInit), most through absl before absl's logging is set up, where
TF_CPP_MIN_LOG_LEVEL does not reach them. They are written to file descriptor 2 by C++, so
they are caught there while TensorFlow starts; every other line caught is written out again.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import tempfile
from types import ModuleType
from typing import Any, Iterator, cast

# The known start-up lines, and only those: anything else TensorFlow says is kept.
START_UP_LINES = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|^[IWE]\d{4} [^\]]*\] (oneDNN custom operations are on|Could not find cuda drivers"
    r"|failed call to cuInit|This TensorFlow binary is optimized to use available CPU instructions"
    # and, at its first XLA compilation (a fused sweep's), INFO lines that TF_CPP_MIN_LOG_LEVEL
    # stops when set before TensorFlow is imported
    r"|XLA service \S+ initialized for platform|  StreamExecutor \[\d+\]: |Compiled cluster using XLA)"
    r"|^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags")


# INFO off, warnings and errors still show; set as this module is imported (the sweeper imports it
# before any job runs), so that even a TensorFlow started elsewhere would start with it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


def without_start_up_lines(text: str) -> str:
    """`text` less TensorFlow's known start-up lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not START_UP_LINES.search(line))


@contextlib.contextmanager
def _start_up_lines_dropped() -> Iterator[None]:
    """Send file descriptor 2 to a file meanwhile; then write out what it got, less the start-up lines."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = without_start_up_lines(caught.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


@functools.cache
def import_tensorflow() -> ModuleType:
    """TensorFlow, started quietly: its C++ INFO lines off, its start-up lines dropped, and its
    Python loggers at errors (TensorFlow's) and warnings (absl's): otherwise an INFO line for
    each all-reduce under MirroredStrategy, a retracing warning for each new model of an
    in-process sweep and an INFO line for each checkpoint of mirrored variables.

    Keras imports TensorFlow: take it from `import_keras`, never from a bare `import keras` (the
    start-up lines, and the XLA lines of a fused sweep's first compilation, would then escape).
    Numerics are untouched (oneDNN stays on).
    """
    with _start_up_lines_dropped():
        import tensorflow as tf

        # CUDA starts here, not at the import: on a CPU machine its cuInit error is a start-up line.
        # A GPU job that finds no GPU says so itself (sweeper/training/devices.py, DeviceError).
        tf.config.list_physical_devices("GPU")
    tf.get_logger().setLevel("ERROR")
    logging.getLogger("absl").setLevel(logging.WARNING)
    return cast(ModuleType, tf)  # TensorFlow ships no types: its module is Any to the type checker


def import_keras() -> ModuleType:
    """Keras, after TensorFlow has started quietly (`import_tensorflow`): the one way to import it."""
    import_tensorflow()
    import keras

    return cast(ModuleType, keras)  # Keras ships no types either


def locate_quietly(dotted: str) -> Any:
    """The object a dotted name names (a task's `run`, a data loader or check: `mymodule.run`), its
    module imported with TensorFlow's start-up lines dropped: a user's module that does `import keras`
    at its top starts TensorFlow there, outside `import_tensorflow`. Raises ImportError."""
    import hydra.utils

    with _start_up_lines_dropped():
        found = hydra.utils.get_object(dotted)
    if "tensorflow" in sys.modules:
        import_tensorflow()  # its loggers quieted, its devices listed quietly, as if started here
    return found


@contextlib.contextmanager
def traces_freed() -> Iterator[None]:
    """Forget the gradient functions that TensorFlow registered while this block traced: each
    Keras optimizer step traced in graph mode registers one (`tf.custom_gradient` in the step's
    all-reduce) in a process-wide registry that holds the whole traced graph, 2.5-5 MB per
    fused group that would never be freed. Only for traces dropped after the block (a fused
    group's), and no gradient of an optimizer step is ever asked."""
    before = set(_gradient_registry())
    try:
        yield
    finally:
        registry = _gradient_registry()
        for name in [name for name in registry if name not in before and name.startswith("CustomGradient-")]:
            del registry[name]


def _gradient_registry() -> dict[str, Any]:
    """TensorFlow's registry of gradient functions by op type (empty where TensorFlow is not imported)."""
    ops = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else {}
