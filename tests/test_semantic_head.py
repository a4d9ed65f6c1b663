"""The semantic branch: Panoptic FPN's head brings every level to stride 4, and the per-pixel loss
leaves void out and averages over the labelled pixels; together they learn a labelled batch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from contracts.record_schema import IGNORE_LABEL
from keras_models.layers.semantic_head import SemanticFPNHead
from keras_models.ops.semantic_loss import semantic_loss


def levels_for(images: int, side: int, channels: int, seed: int = 0) -> list[tf.Tensor]:
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.normal(size=(images, side // 2 ** level, side // 2 ** level, channels)), tf.float32)
            for level in range(2, 6)]


def reference_pixel_losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """NumPy: each pixel's cross-entropy `[B, H, W]`, the logits upsampled bilinearly to the labels'
    size (void pixels are scored as class 0; callers leave them out)."""
    upsampled = tf.image.resize(logits, labels.shape[1:], method="bilinear").numpy()
    log_softmax = upsampled - np.log(np.exp(upsampled).sum(axis=-1, keepdims=True))
    known = np.where(labels == IGNORE_LABEL, 0, labels)
    return -np.take_along_axis(log_softmax, known[..., None], axis=-1)[..., 0]


def test_every_level_reaches_stride_four_in_float32():
    head = SemanticFPNHead(num_classes=5, channels=16, norm="group")
    logits = head(levels_for(2, 64, 8))
    assert logits.shape == (2, 16, 16, 5) and logits.dtype == tf.float32
    # P2 one stage, P3 one, P4 two, P5 three: seven convolutions, each with its norm, and the classifier.
    assert len([w for w in head.trainable_weights if "conv" in w.path and "kernel" in w.path]) == 7


def loss_case(seed: int, void_image: int, void_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Random logits `[2, 4, 4, 3]` and labels `[2, 8, 8]`, the first `void_rows` rows of image
    `void_image` void."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(2, 8, 8)).astype(np.int32)
    labels[void_image, :void_rows] = IGNORE_LABEL
    return logits, labels


def test_the_loss_leaves_void_out_and_averages_over_labelled_pixels():
    logits, labels = loss_case(seed=1, void_image=0, void_rows=3)
    labelled = labels != IGNORE_LABEL
    expected = reference_pixel_losses(logits, labels)[labelled].mean()
    assert float(semantic_loss(tf.constant(logits), tf.constant(labels))) == pytest.approx(expected, rel=1e-5)
    # A replica dividing by the global count: half of a batch twice as large.
    halved = semantic_loss(tf.constant(logits), tf.constant(labels), count=lambda total: 2 * total)
    assert float(halved) == pytest.approx(expected / 2, rel=1e-5)
    assert float(semantic_loss(tf.constant(logits), tf.fill([2, 8, 8], IGNORE_LABEL))) == 0.0


def test_the_hard_pixel_loss_averages_the_batchs_largest_labelled_pixel_losses_and_compiles():
    logits, labels = loss_case(seed=2, void_image=1, void_rows=6)
    labelled = labels != IGNORE_LABEL
    losses = reference_pixel_losses(logits, labels)[labelled]
    # 64 + 16 labelled pixels: the 24 largest (ceil 0.3 * 80) of the batch.
    expected = np.sort(losses)[-24:].mean()
    hard = semantic_loss(tf.constant(logits), tf.constant(labels), hard_pixel_fraction=0.3)
    assert float(hard) == pytest.approx(expected, rel=1e-5) and expected > losses.mean()
    compiled = tf.function(lambda l, c: semantic_loss(l, c, hard_pixel_fraction=0.3), jit_compile=True)
    assert float(compiled(tf.constant(logits), tf.constant(labels))) == pytest.approx(expected, rel=1e-5)
    # A blank image (all void) filling up the batch changes nothing.
    padded = semantic_loss(tf.constant(np.concatenate([logits, logits[:1]])),
                           tf.constant(np.concatenate([labels, np.full((1, 8, 8), IGNORE_LABEL, np.int32)])),
                           hard_pixel_fraction=0.3)
    assert float(padded) == pytest.approx(expected, rel=1e-5)
    blank = semantic_loss(tf.constant(logits), tf.fill([2, 8, 8], IGNORE_LABEL), hard_pixel_fraction=0.3)
    assert float(blank) == 0.0


def test_head_and_loss_learn_a_labelled_batch():
    keras.utils.set_random_seed(3)
    labels = np.zeros((2, 64, 64), np.int32)
    labels[:, 32:] = 1
    labels[:, 10:20, 10:30] = 2
    labels[:, :, 60:] = IGNORE_LABEL
    # Features that carry the labels, blurred by average pooling to each level's stride.
    one_hot = tf.one_hot(np.where(labels == IGNORE_LABEL, 0, labels), 3)
    levels = [tf.nn.avg_pool2d(one_hot, 2 ** level, 2 ** level, "VALID") for level in range(2, 6)]
    head = SemanticFPNHead(num_classes=3, channels=16, norm="group")
    optimizer = keras.optimizers.Adam(0.01)
    losses = []
    for _ in range(60):
        with tf.GradientTape() as tape:
            loss = semantic_loss(head(levels, training=True), tf.constant(labels))
        optimizer.apply_gradients(zip(tape.gradient(loss, head.trainable_weights), head.trainable_weights))
        losses.append(float(loss))
    predicted = tf.argmax(tf.image.resize(head(levels), (64, 64)), axis=-1).numpy()
    labelled = labels != IGNORE_LABEL
    assert losses[-1] < 0.3 * losses[0] and (predicted[labelled] == labels[labelled]).mean() > 0.95


def test_aspp_rates_scale_with_the_features_stride_and_the_head_reaches_stride_four():
    from keras_models.layers.aspp import DeepLabV3PlusHead, rates_for_stride

    assert rates_for_stride(16) == (6, 12, 18) and rates_for_stride(8) == (12, 24, 36)
    assert rates_for_stride(32) == (3, 6, 9)
    head = DeepLabV3PlusHead(num_classes=4, channels=16, deep_stride=32, norm="group")
    low_level, deep = tf.random.normal([2, 32, 32, 8]), tf.random.normal([2, 4, 4, 24])
    logits = head((low_level, deep))
    assert logits.shape == (2, 32, 32, 4) and logits.dtype == tf.float32
    dilations = sorted(layer.dilation_rate[0] for layer in head.aspp._flatten_layers()
                       if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3))
    assert dilations == [3, 6, 9]
    # The image-pooling branch gives every position the whole map's mean: on a 16x16 map a change in
    # one corner reaches the far corner of the output, 15 cells away, beyond every dilated kernel (9).
    # (Batch norm at inference: group norm's statistics would carry the change everywhere too.)
    head = DeepLabV3PlusHead(num_classes=4, channels=16, deep_stride=32, norm="batch")
    low_level, deep = tf.random.normal([1, 128, 128, 8]), tf.random.normal([1, 16, 16, 24])
    changed = deep.numpy()
    changed[:, 0, 0] += 10.0
    before, after = head((low_level, deep)).numpy(), head((low_level, tf.constant(changed))).numpy()
    assert np.abs(after - before)[:, -1, -1].max() > 1e-4
    head.aspp.pooled[0].kernel.assign(tf.zeros_like(head.aspp.pooled[0].kernel))  # no image pooling
    before, after = head((low_level, deep)).numpy(), head((low_level, tf.constant(changed))).numpy()
    assert np.abs(after - before)[:, -1, -1].max() == 0.0


def test_the_deeplab_head_and_the_loss_learn_a_labelled_batch():
    from keras_models.layers.aspp import DeepLabV3PlusHead

    keras.utils.set_random_seed(4)
    labels = np.zeros((2, 64, 64), np.int32)
    labels[:, 32:] = 1
    labels[:, 8:24, 8:40] = 2
    one_hot = tf.one_hot(labels, 3)
    low_level, deep = tf.nn.avg_pool2d(one_hot, 4, 4, "VALID"), tf.nn.avg_pool2d(one_hot, 32, 32, "VALID")
    head = DeepLabV3PlusHead(num_classes=3, channels=16, deep_stride=32, norm="group")
    optimizer = keras.optimizers.Adam(0.01)
    losses = []
    for _ in range(60):
        with tf.GradientTape() as tape:
            loss = semantic_loss(head((low_level, deep), training=True), tf.constant(labels))
        optimizer.apply_gradients(zip(tape.gradient(loss, head.trainable_weights), head.trainable_weights))
        losses.append(float(loss))
    predicted = tf.argmax(tf.image.resize(head((low_level, deep)), (64, 64)), axis=-1).numpy()
    assert losses[-1] < 0.3 * losses[0] and (predicted == labels).mean() > 0.95
