"""`--norm`: every backbone built with the chosen normalization, frozen BatchNorm that stays
frozen in training, GroupNorm where batch statistics would differ, and GroupNorm in the FPN
and heads (`head_norm: group`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from contracts.errors import BoxflowError
from keras_models.layers.backbones import NETWORK_LAYER, build_backbone
from keras_models.layers.normalization import (FrozenBatchNormalization, GroupNormalization, SynchronizedBatchNormalization,
                                        group_count)
from keras_models.models.retinanet import RetinaNet
from keras_models.models.retinanet_config import RetinaNetConfig


def normalization_layers(backbone: keras.Model) -> list[keras.layers.Layer]:
    network = backbone.get_layer(NETWORK_LAYER) if backbone.name != "tiny_backbone" else backbone
    return [layer for layer in network.layers
            if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.GroupNormalization))]


@pytest.mark.parametrize("name, count", [("tiny", 8), ("mobilenet_v2", 52), ("resnet50", 53)])
@pytest.mark.parametrize("norm", ["batch", "sync_batch", "frozen_batch", "group"])
def test_every_normalization_layer_of_every_backbone_is_the_chosen_one(name, count, norm):
    layers = normalization_layers(build_backbone(name, 64, norm=norm))
    assert len(layers) == count
    expected = {"batch": keras.layers.BatchNormalization, "sync_batch": SynchronizedBatchNormalization,
                "frozen_batch": FrozenBatchNormalization, "group": GroupNormalization}[norm]
    assert all(type(layer) is expected for layer in layers)


def test_replaced_layers_keep_their_names_and_epsilon():
    plain = normalization_layers(build_backbone("resnet50", 64))
    frozen = normalization_layers(build_backbone("resnet50", 64, norm="frozen_batch"))
    assert [layer.name for layer in plain] == [layer.name for layer in frozen]
    assert {layer.epsilon for layer in frozen} == {1.001e-5}  # ResNet50's own


def test_frozen_batch_norm_uses_stored_statistics_in_training_and_trains_nothing():
    layer = FrozenBatchNormalization()
    inputs = np.random.default_rng(0).normal(3.0, 2.0, (8, 4, 4, 6)).astype(np.float32)
    layer.build(inputs.shape)
    layer.set_weights([np.full(6, 2.0), np.full(6, 0.5), np.full(6, 1.0), np.full(6, 4.0)])
    expected = 2.0 * (inputs - 1.0) / np.sqrt(4.0 + layer.epsilon) + 0.5
    np.testing.assert_allclose(layer(inputs, training=True), expected, atol=1e-5)
    assert layer.trainable_weights == []
    np.testing.assert_allclose(layer.moving_mean, np.ones(6))  # no moving-average update either
    restored = FrozenBatchNormalization.from_config(layer.get_config())
    assert type(restored) is FrozenBatchNormalization


def test_a_frozen_backbone_is_unchanged_by_a_training_step_except_its_convolutions():
    model = RetinaNet(RetinaNetConfig(num_classes=2, image_size=128, norm="frozen_batch", fpn_channels=16, head_depth=1,
                      head_channels=16))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    norms = normalization_layers(model.backbone)
    before = [np.array(w) for layer in norms for w in layer.get_weights()]
    images = np.random.default_rng(1).uniform(0, 255, (2, 128, 128, 3)).astype(np.float32)
    targets = {"boxes": np.array([[[10, 10, 60, 60]]] * 2, np.float32), "classes": np.zeros((2, 1), np.int32)}
    model.fit(images, targets, batch_size=2, epochs=1, verbose=0)
    after = [np.array(w) for layer in norms for w in layer.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("channels, groups", [(32, 32), (144, 24), (960, 32), (24, 24), (1280, 32), (7, 7)])
def test_group_count_divides_the_channels(channels, groups):
    assert group_count(channels) == groups


def test_group_norm_in_the_fpn_and_heads_round_trips():
    model = RetinaNet(RetinaNetConfig(num_classes=2, image_size=128, head_norm="group", fpn_channels=16, head_depth=2,
                      head_channels=16))
    group_norms = [layer for layer in model._flatten_layers() if isinstance(layer, GroupNormalization)]
    assert len(group_norms) == 6 + 2 * 2  # 3 lateral + 3 output convs, 2 per head
    images = np.random.default_rng(2).uniform(0, 255, (1, 128, 128, 3)).astype(np.float32)
    clone = RetinaNet.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(images)["logits"], model(images)["logits"], atol=1e-6)
    with pytest.raises(BoxflowError, match="head_norm must be one of none, group"):
        RetinaNet(RetinaNetConfig(num_classes=2, image_size=128, head_norm="batch"))
    with pytest.raises(BoxflowError, match="norm must be one of"):
        build_backbone("tiny", 128, norm="layer")


def test_a_backbone_with_other_normalization_starts_from_the_same_weights():
    images = np.random.default_rng(3).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    keras.utils.set_random_seed(5)
    plain = build_backbone("mobilenet_v2", 64)
    keras.utils.set_random_seed(5)
    frozen = build_backbone("mobilenet_v2", 64, norm="frozen_batch")
    for ours, theirs in zip(frozen(images, training=False), plain(images, training=False)):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_synchronized_batch_norm_on_one_device_equals_batch_norm_with_its_gradients():
    rng = np.random.default_rng(4)
    # A large mean against a small spread: where a one-pass E[x²] - E[x]² loses its digits.
    inputs = tf.constant(rng.normal(50.0, 0.05, (4, 6, 6, 8)).astype(np.float32))
    plain, synchronized = keras.layers.BatchNormalization(), SynchronizedBatchNormalization()
    results = []
    for layer in (plain, synchronized):
        layer.build(inputs.shape)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(outputs * tf.range(8, dtype=tf.float32))
        results.append((outputs, tape.gradient(loss, inputs), np.array(layer.moving_variance)))
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, theirs, atol=2e-3 * max(1.0, float(np.abs(theirs).max())))
    assert type(SynchronizedBatchNormalization.from_config(synchronized.get_config())) is \
        SynchronizedBatchNormalization
