"""The normalization layer of a detector, chosen by name (`--norm`), and applied to any backbone.

- `batch`: Keras BatchNormalization; under a strategy each replica normalizes by its own share
  of the batch, so replicas see (and learn) different statistics.
- `sync_batch`: the statistics of the global batch, all-reduced across replicas and workers:
  several replicas train like one device with the same global batch (`SynchronizedBatchNormalization`).
- `frozen_batch`: the stored (pretrained) statistics and scales, fixed; the usual choice when
  fine-tuning with a few images per replica.
- `group`: GroupNormalization, which does not depend on the batch at all.
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from contracts.errors import SettingError

NORMALIZATIONS = ("batch", "sync_batch", "frozen_batch", "group")
MAX_GROUPS = 32  # Wu & He 2018's default


@keras.saving.register_keras_serializable(package="boxflow")
class FrozenBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that always normalizes with its moving statistics and never trains
    its scale and offset, whatever `training` and `trainable` say."""

    def build(self, input_shape) -> None:
        super().build(input_shape)
        for variable in (self.gamma, self.beta):
            if variable is not None:
                variable.trainable = False

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False, mask=mask)


@keras.saving.register_keras_serializable(package="boxflow")
class SynchronizedBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization over the global batch, computed in two passes.

    Keras' `synchronized=True` all-reduces sums of `x` and `x²` and takes `E[x²] - E[x]²`, which
    cancels badly where a channel's mean is large against its spread: trained 3 steps on one
    device, a MobileNetV2 RetinaNet's first kernels then differed from plain BatchNorm's by 63% of
    their change (measured here). This layer all-reduces the sum and count first, then the
    squared deviations from the global mean, as plain BatchNorm computes them on one device.
    Shapes: inputs `[..., C]` (channels last); mean and variance `[C]`.
    """

    def __init__(self, **kwargs):
        kwargs["synchronized"] = False  # the base class's one-pass all-reduce is replaced below
        super().__init__(**kwargs)

    def _moments(self, inputs, mask):
        if mask is not None:
            raise ValueError(f"{self.name}: synchronized BatchNorm does not take a mask")
        context = tf.distribute.get_replica_context()
        # Statistics in float32 at least: float16 sums over a global batch overflow and round.
        values = tf.cast(inputs, tf.float64 if inputs.dtype == tf.float64 else tf.float32)
        axes = self._reduction_axes
        count = tf.cast(tf.size(values) // tf.shape(values)[-1], values.dtype)
        total, count = all_reduced_sum(context, [tf.reduce_sum(values, axes), count])
        mean = total / count
        # No gradient through the mean here, as in tf.nn.moments: the deviations from the
        # global mean sum to zero over the global batch.
        squared = tf.reduce_sum(tf.square(values - tf.stop_gradient(mean)), axes)
        (variance,) = all_reduced_sum(context, [squared])
        variance = variance / count
        return tf.cast(mean, inputs.dtype), tf.cast(variance, inputs.dtype)

    def get_config(self) -> dict:
        return {key: value for key, value in super().get_config().items() if key != "synchronized"}


def all_reduced_sum(context: tf.distribute.ReplicaContext, values: list[tf.Tensor]) -> list[tf.Tensor]:
    """`values` summed over the replicas; the gradient is the replicas' upstream gradients summed.

    That is the gradient `context.all_reduce` has too, but its graph-mode wrapper walks back from
    the reduced values to find variables, and under MirroredStrategy that walk crosses into the
    other replicas' whole graphs: with a MobileNetV2's 52 BatchNorm layers, building the training
    step took 243 s (measured here). Reducing values cut off from their producers keeps each walk
    to the reduction itself.
    """

    @tf.custom_gradient
    def reduce(*inputs):
        def gradient(*upstream):
            return context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.stop_gradient(grad) for grad in upstream])

        return context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.stop_gradient(x) for x in inputs]), gradient

    return list(reduce(*values))


@keras.saving.register_keras_serializable(package="boxflow")
class GroupNormalization(keras.layers.GroupNormalization):
    """Keras' GroupNormalization, callable in a BatchNormalization's place in a cloned network,
    whose nodes pass `training` and `mask`; it uses neither."""

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs)


def default_normalization(replicas: int) -> str:
    """Synchronized BatchNorm when the batch is split across replicas, plain BatchNorm otherwise."""
    return "sync_batch" if replicas > 1 else "batch"


def check_normalization(name: str) -> None:
    if name not in NORMALIZATIONS:
        raise SettingError("norm", f"must be one of {', '.join(NORMALIZATIONS)}, got {name!r}")


def group_count(channels: int) -> int:
    """The largest divisor of `channels` up to 32 (MobileNetV2 has 144- and 960-channel layers)."""
    return max(groups for groups in range(1, MAX_GROUPS + 1) if channels % groups == 0)


def normalization_layer(kind: str, channels: int, name: Optional[str] = None, epsilon: float = 1e-3,
                        momentum: float = 0.99) -> keras.layers.Layer:
    """A fresh normalization layer of `kind` over the last axis of `channels` features."""
    check_normalization(kind)
    if kind == "group":
        return GroupNormalization(group_count(channels), epsilon=epsilon, name=name)
    layer_class = {"batch": keras.layers.BatchNormalization, "sync_batch": SynchronizedBatchNormalization,
                   "frozen_batch": FrozenBatchNormalization}[kind]
    return layer_class(epsilon=epsilon, momentum=momentum, name=name)


def with_normalization(model: keras.Model, kind: str) -> keras.Model:
    """A copy of the functional `model` (a Keras Applications network) with every
    BatchNormalization replaced by `kind`, same names and the same epsilon and momentum.
    The copy starts from `model`'s weights (BatchNorm's included where the new layer has the
    same variables), so a backbone is the same network whatever its normalization."""
    check_normalization(kind)

    def replace(layer: keras.layers.Layer) -> keras.layers.Layer:
        if not isinstance(layer, keras.layers.BatchNormalization):
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        if config["axis"] not in (-1, [-1], [3], 3):
            raise ValueError(f"{layer.name}: only channels-last BatchNormalization can be replaced")
        return normalization_layer(kind, int(layer.gamma.shape[0]), name=layer.name, epsilon=config["epsilon"],
                                   momentum=config["momentum"])

    copy = keras.models.clone_model(model, clone_function=replace)
    for layer in (layer for layer in model.layers if layer.weights):
        copied = copy.get_layer(layer.name)
        values = layer.get_weights()
        if [w.shape for w in values] == [tuple(v.shape) for v in copied.weights]:
            copied.set_weights(values)
    return copy
