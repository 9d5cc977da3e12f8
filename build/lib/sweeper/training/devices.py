"""The devices a Keras job trains on: the CPU, N GPUs, or N logical CPUs (`devices=cpu`), through
a `tf.distribute` strategy (MirroredStrategy for N replicas)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sweeper.training.tf import import_tensorflow

if TYPE_CHECKING:
    import tensorflow as tf

MIN_CPU_REPLICAS = 4  # devices=cpu: logical CPUs made per process, enough for ex4's gpus=1,2,4


class DeviceError(RuntimeError):
    """The devices a job asks for are not there; the message is one line with the fix."""


def _cpu_devices(count: int) -> list[str]:
    """`count` logical CPU devices. TensorFlow can split the CPU only before it starts, so the first
    job of a process makes max(count, MIN_CPU_REPLICAS) and later jobs reuse them."""
    tf = import_tensorflow()

    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = max(count, MIN_CPU_REPLICAS)
    if tf.config.get_logical_device_configuration(cpu) is None:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * wanted)
        except RuntimeError:
            pass  # TensorFlow has started already: see what there is below
    have = tf.config.list_logical_devices("CPU")
    if len(have) < count:
        raise DeviceError(f"gpus={count} devices=cpu needs {count} logical CPU devices but TensorFlow started in "
                          f"this process with {len(have)}: run it in a process of its own")
    return [device.name for device in have[:count]]


def _gpu_devices(count: int) -> list[str]:
    import os

    tf = import_tensorflow()

    have = tf.config.list_physical_devices("GPU")
    if len(have) < count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise DeviceError(f"gpus={count} but {len(have)} GPU(s) visible (CUDA_VISIBLE_DEVICES={visible}): "
                          f"request {count} GPU(s) from the scheduler, lower gpus, or add devices=cpu to run "
                          f"{count} replica(s) on the CPU")
    return [f"/device:GPU:{i}" for i in range(count)]


def strategy(gpus: int, devices: str = "gpu") -> tf.distribute.Strategy:
    """gpus=0: the CPU alone; gpus=N: MirroredStrategy over N GPUs, or N logical CPUs (devices=cpu)."""
    tf = import_tensorflow()

    if gpus == 0:
        # The default strategy is the fastest on a CPU; where a GPU is visible it would take it.
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.OneDeviceStrategy("/device:CPU:0")
        return tf.distribute.get_strategy()
    if devices not in ("gpu", "cpu"):
        raise ValueError(f"devices={devices!r} is invalid: devices must be gpu or cpu")
    names = _cpu_devices(gpus) if devices == "cpu" else _gpu_devices(gpus)
    if devices == "cpu":
        # Collective ops on logical CPUs key their groups per process, so a 4-replica job after a
        # 2-replica one would join the wrong group; reducing to one device keeps no such state.
        return tf.distribute.MirroredStrategy(names, cross_device_ops=tf.distribute.ReductionToOneDevice())
    return tf.distribute.MirroredStrategy(names)


def device_names(strategy: tf.distribute.Strategy) -> list[str]:
    """The devices the replicas run on, e.g. ["/device:GPU:0", "/device:GPU:1"]."""
    tf = import_tensorflow()

    try:
        names = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy has no list: it is the first CPU
        names = ["/device:CPU:0"]
    return [tf.DeviceSpec.from_string(name).replace(job=None, replica=None, task=None).to_string() for name in names]
