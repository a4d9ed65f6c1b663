"""What every dense-prediction model shares (detectors and segmenters): construction from its config
dataclass alone (`get_config` is that config), the train and test steps around the model's own
losses, loss reporting that is right under any distribution strategy, and `predict` returning the
model's DESIGN.md §5 outputs."""

from __future__ import annotations

import keras
import tensorflow as tf

from contracts.errors import SettingError
from keras_models.models.model_config import ModelConfig
from keras_models.ops.matching import IGNORED
from pipeline.dataset import IMAGE_VALID
from pipeline.as_written import as_written
from pipeline.ragged_padding import ragged_to_padded


class DensePredictionSteps(keras.Model):
    """A model is built from its `CONFIG` class's instance alone, and defines `LOSS_NAMES` (with
    "loss", the total, among them), `_losses_for(images, targets, training) -> {name: this
    replica's share}` and `predict_outputs(images)`; this class turns them into Keras' steps.
    `image_size` is the square input side its in-graph functions letterbox to."""

    CONFIG: type[ModelConfig] = ModelConfig
    LOSS_NAMES: tuple[str, ...] = ("loss",)
    # The per-pixel maps its training batches must carry (`make_dataset(with_masks=...,
    # with_semantic=...)`): instance masks, semantic labels.
    TRAINS_ON_MASKS = False
    TRAINS_ON_SEMANTIC = False
    # Whether it finds objects (boxes, classes, scores: a `Detector`); a model that does not labels
    # pixels only.
    FINDS_OBJECTS = False

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        if config.num_classes is None:
            raise SettingError("num_classes", "must be set to build a model")
        self.config = config
        self.num_classes, self.image_size = config.num_classes, config.image_size

    def get_config(self) -> dict:
        return {**super().get_config(), **self.config.to_json_dict()}

    @classmethod
    def from_config(cls, config: dict) -> "DensePredictionSteps":
        """The model of `config` (`get_config`'s: Keras' own keys and the config's fields)."""
        own = set(cls.CONFIG.field_names())
        return cls(cls.CONFIG(**{name: value for name, value in config.items() if name in own}),
                   **{name: value for name, value in config.items() if name not in own})

    def compile(self, *args, **kwargs) -> None:
        super().compile(*args, **kwargs)
        # The optimizer's slots are made now, not by the first step: tf.function traces a step that
        # creates variables a second time (measured: 6 s of a tiny RetinaNet's 20 s training).
        if self.optimizer is not None:
            self.optimizer.build(self.trainable_variables)

    def _make_trackers(self) -> None:
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.LOSS_NAMES}

    @property
    def _compiled(self) -> bool:
        """Whether Keras compiles the steps with XLA, which needs XLA's forms of NMS and ROI Align."""
        return bool(getattr(self, "jit_compile", False))

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _report(self, losses: dict, images, targets: dict) -> dict:
        # Each replica holds its share of the global loss; summed over replicas they are the
        # global loss, so every replica tracks (and reports) the same values.
        context = tf.distribute.get_replica_context()
        # Keras' evaluate() on a dataset of unknown length runs one more step after the last
        # batch, on no images, whose zero losses must not count in the averages; nor does a batch
        # of blank images only.
        real = (tf.reduce_sum(targets[IMAGE_VALID]) if IMAGE_VALID in targets
                else tf.cast(tf.shape(images)[0], tf.float32))
        images_in_batch = context.all_reduce(tf.distribute.ReduceOp.SUM, real)
        counted = tf.cast(images_in_batch > 0, tf.float32)
        for name, tracker in self.trackers.items():
            global_loss = context.all_reduce(tf.distribute.ReduceOp.SUM, losses[name])
            tracker.update_state(global_loss, sample_weight=counted)
        results = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 reduces step outputs across workers with reduce("MEAN", axis=0), which
            # fails on scalars (keras-team/keras#20585); as [1] vectors they reduce to scalars.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    @as_written
    def train_step(self, data):
        images, targets = data
        with tf.GradientTape() as tape:
            losses = self._losses_for(images, targets, training=True)
            total = losses["loss"]
            if self.losses:  # weight penalties: each replica adds its share
                total += tf.add_n(self.losses) / tf.distribute.get_strategy().num_replicas_in_sync
            # Under mixed_float16 the optimizer is a LossScaleOptimizer: its apply_gradients
            # divides by the loss scale (and skips steps whose gradients overflowed), so the loss
            # is scaled here; any other optimizer returns it unchanged.
            scaled = self.optimizer.scale_loss(total)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._report(losses, images, targets)

    @as_written
    def test_step(self, data):
        images, targets = data
        return self._report(self._losses_for(images, targets, training=False), images, targets)

    @as_written
    def predict_step(self, data):
        images = data[0] if isinstance(data, tuple) else data
        return self.predict_outputs(images)

    def _losses_for(self, images, targets: dict, training: bool) -> dict:
        raise NotImplementedError

    def predict_outputs(self, images) -> dict:
        """What `predict` returns for `images` (DESIGN.md §5)."""
        raise NotImplementedError


def padded_targets(targets: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """`(boxes [B, M, 4], classes [B, M])` of a batch's targets, dense whether they came ragged
    (one device) or padded (class -1, under a strategy or XLA)."""
    boxes, classes = targets["boxes"], targets["classes"]
    if isinstance(boxes, tf.RaggedTensor):
        return ragged_to_padded(boxes, classes)
    return boxes, classes


def without_blank_images(targets_per_anchor: tf.Tensor, targets: dict) -> tf.Tensor:
    """`[B, N]` class (or objectness) targets with every row of a blank image that fills up a last
    batch (`targets[IMAGE_VALID]` 0) set to `IGNORED`: it counts in no loss and no count."""
    if IMAGE_VALID not in targets:
        return targets_per_anchor
    return tf.where(targets[IMAGE_VALID][:, tf.newaxis] > 0, targets_per_anchor, IGNORED)


def global_count(value: tf.Tensor) -> tf.Tensor:
    """`value` summed over the replicas of the current strategy (itself on one device)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)
