"""Choosing the `tf.distribute` strategy for `--strategy`; one strategy per process."""

from __future__ import annotations

import json
import os
from typing import Optional

import tensorflow as tf

from contracts.errors import BoxflowError, SettingError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def _tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        raise BoxflowError("TF_CONFIG is not valid JSON") from None


def workers_in_tf_config() -> int:
    """How many workers `TF_CONFIG` names (0 when it is unset)."""
    cluster = _tf_config().get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def worker_role() -> tuple[bool, str]:
    """`(is_chief, name)` of this process in `TF_CONFIG`: the chief is the `chief` task, or
    worker 0 when the cluster has none; a process without `TF_CONFIG` is its own chief."""
    config = _tf_config()
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = bool(config.get("cluster", {}).get("chief"))
    return (kind == "chief" or (kind == "worker" and index == 0 and not has_chief)), f"{kind}-{index}"


def choose_strategy(name: str) -> tf.distribute.Strategy:
    """`auto`: a TPU if one is reachable, MultiWorkerMirrored when `TF_CONFIG` names several
    workers, Mirrored over several GPUs, else the default (one device) strategy."""
    if name not in STRATEGIES:
        raise SettingError("strategy", f"must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "auto":
        name = _auto()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError) as error:
            raise SettingError("strategy", f"tpu: no TPU found: {error}") from None
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return mirrored_strategy()
    return tf.distribute.get_strategy()


def compiles_steps(strategy: tf.distribute.Strategy, xla: bool) -> bool:
    """Whether the train, test and predict steps run compiled by XLA: with `--xla`, and always on a
    TPU, which runs nothing else. The detectors then take XLA's forms of NMS and ROI Align, and the
    batches come padded to static shapes."""
    return xla or isinstance(strategy, tf.distribute.TPUStrategy)


def mirrored_strategy(devices: Optional[list[str]] = None) -> tf.distribute.MirroredStrategy:
    """MirroredStrategy over `devices` (default: every GPU, else every CPU device).

    Over CPU devices its default all-reduce, CollectiveAllReduce, fails as soon as synchronized
    BatchNorm all-reduces inside the training step: the replicas launch their collectives in
    different orders ("expected shape [577775] but another member in the group expected shape
    [16]", measured here). Reducing through one device keeps them in step; GPUs keep NCCL.
    """
    devices = devices or [device.name for device in tf.config.list_logical_devices("GPU")]
    if devices and all("GPU" in device.upper() for device in devices):
        return tf.distribute.MirroredStrategy(devices)
    devices = devices or [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())


def _auto() -> str:
    if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
        return "tpu"
    if workers_in_tf_config() > 1:
        return "multi_worker"
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return "mirrored"
    return "one_device"
