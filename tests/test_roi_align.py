"""ROI Align against a NumPy reference written from the Mask R-CNN definition, its gradient against
finite differences, both implementations against each other, and the quantization ROI Pooling
suffers that ROI Align avoids."""

import numpy as np
import pytest
import tensorflow as tf

from keras_models.ops.roi_align import assign_levels, roi_align, roi_align_crop_and_resize, roi_align_for


def bilinear(feature: np.ndarray, y: float, x: float) -> np.ndarray:
    """Detectron2's `bilinear_interpolate` (`aligned=True` callers): one sample of `[H, W, C]`."""
    height, width = feature.shape[:2]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(feature.shape[-1])
    y, x = min(max(y, 0.0), height - 1), min(max(x, 0.0), width - 1)
    y_low, x_low = int(np.floor(y)), int(np.floor(x))
    y_high, x_high = min(y_low + 1, height - 1), min(x_low + 1, width - 1)
    dy, dx = y - y_low, x - x_low
    return ((1 - dy) * (1 - dx) * feature[y_low, x_low] + (1 - dy) * dx * feature[y_low, x_high]
            + dy * (1 - dx) * feature[y_high, x_low] + dy * dx * feature[y_high, x_high])


def reference_roi_align(feature: np.ndarray, box, stride: float, output_size: int = 7, ratio: int = 2) -> np.ndarray:
    """One box (pixels XYXY) of one `[H, W, C]` map: each bin the mean of ratio x ratio samples at
    the centres of a regular grid inside it, coordinates shifted by half a cell."""
    x1, y1, x2, y2 = (value / stride - 0.5 for value in box)
    bin_height, bin_width = (y2 - y1) / output_size, (x2 - x1) / output_size
    result = np.zeros((output_size, output_size, feature.shape[-1]))
    for row in range(output_size):
        for column in range(output_size):
            samples = [bilinear(feature, y1 + (row + (i + 0.5) / ratio) * bin_height,
                                x1 + (column + (j + 0.5) / ratio) * bin_width)
                       for i in range(ratio) for j in range(ratio)]
            result[row, column] = np.mean(samples, axis=0)
    return result


def random_boxes(rng: np.random.Generator, count: int, image_size: float) -> np.ndarray:
    corners = rng.uniform(-0.2 * image_size, 1.2 * image_size, (count, 2, 2))  # some partly outside the map
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    boxes[0] = [0, 0, image_size, image_size]  # the whole map
    boxes[1] = [8, 8, 8 + 7 * 16, 8 + 7 * 16]  # bins whose edges fall on cell edges
    boxes[2] = [20, 30, 20.5, 30.25]  # far smaller than a cell
    return boxes


@pytest.mark.parametrize("implementation", [roi_align, roi_align_crop_and_resize])
def test_multilevel_roi_align_equals_the_reference(implementation, rng):
    strides, image_size = (8, 16, 32), 128
    features = [rng.normal(size=(2, image_size // stride, image_size // stride, 3)) for stride in strides]
    boxes = np.stack([random_boxes(rng, 12, image_size) for _ in range(2)])
    levels = rng.integers(0, 3, (2, 12))
    result = implementation([tf.constant(level, tf.float32) for level in features], strides,
                            tf.constant(boxes, tf.float32), tf.constant(levels, tf.int32)).numpy()
    assert result.shape == (2, 12, 7, 7, 3)
    for image in range(2):
        for roi in range(12):
            level = levels[image, roi]
            expected = reference_roi_align(features[level][image], boxes[image, roi], strides[level])
            np.testing.assert_allclose(result[image, roi], expected, atol=1e-5)


def test_the_gather_implementation_compiles_with_xla_and_is_chosen_for_it(rng):
    features = [tf.constant(rng.normal(size=(2, 16, 16, 4)), tf.float32), tf.constant(rng.normal(size=(2, 8, 8, 4)),
                                                                                      tf.float32)]
    boxes = tf.constant(np.stack([random_boxes(rng, 6, 128) for _ in range(2)]), tf.float32)
    levels = tf.constant(rng.integers(0, 2, (2, 6)), tf.int32)
    compiled = tf.function(lambda: roi_align(features, [8, 16], boxes, levels), jit_compile=True)()
    np.testing.assert_allclose(compiled, roi_align(features, [8, 16], boxes, levels), atol=1e-5)
    assert roi_align_for(jit_compile=True) is roi_align
    assert roi_align_for(jit_compile=False) is roi_align_crop_and_resize


def test_the_gradient_matches_finite_differences(rng):
    feature = tf.constant(rng.normal(size=(1, 5, 6, 2)), tf.float64)
    boxes = tf.constant([[[3.0, -4.0, 41.0, 30.0], [10.0, 10.0, 26.0, 26.0]]], tf.float64)
    levels = tf.zeros([1, 2], tf.int32)

    def crops(features):
        return roi_align([features], [8], boxes, levels, output_size=3)

    analytic, numeric = tf.test.compute_gradient(crops, [feature])
    np.testing.assert_allclose(analytic[0], numeric[0], atol=1e-6)
    with tf.GradientTape(persistent=True) as tape:
        float32 = tf.cast(feature, tf.float32)
        tape.watch(float32)
        by_gather = roi_align([float32], [8], tf.cast(boxes, tf.float32), levels, output_size=3)
        by_crop = roi_align_crop_and_resize([float32], [8], tf.cast(boxes, tf.float32), levels, output_size=3)
    weights = tf.constant(rng.normal(size=by_gather.shape), tf.float32)
    np.testing.assert_allclose(tape.gradient(by_crop, float32, weights), tape.gradient(by_gather, float32, weights),
                               atol=1e-5)


def test_roi_pooling_quantizes_where_roi_align_does_not():
    """The seeds' example: an 800 px image, a 665 px box, stride 32, a 7 x 7 output. On a feature
    map whose value at each cell is the x of the cell's centre in image pixels, an exact crop gives
    every bin the x of its own centre."""
    stride, image_size, box = 32, 800, np.array([0.0, 0.0, 665.0, 665.0])
    cells = image_size // stride
    centres = (np.arange(cells) + 0.5) * stride
    feature = np.broadcast_to(centres[np.newaxis, :, np.newaxis], (cells, cells, 1)).astype(np.float32)
    bin_centres = (np.arange(7) + 0.5) * box[2] / 7  # 47.5, 142.5, ... 617.5

    aligned = roi_align([tf.constant(feature[np.newaxis])], [stride],
                        tf.constant(box[np.newaxis, np.newaxis], tf.float32), tf.zeros([1, 1], tf.int32))
    np.testing.assert_allclose(aligned.numpy()[0, 0, 0, :, 0], bin_centres, atol=1e-3)

    # ROI Pooling rounds twice: the box to whole cells (665 / 32 = 20.78 -> 20: 25 px of the box
    # dropped), then the bins (20 / 7 = 2.86 -> 2 cells each: 6 more cells dropped), and takes the max.
    box_cells = int(box[2] // stride)
    bin_cells = box_cells // 7
    pooled = np.array([feature[0, bin * bin_cells:(bin + 1) * bin_cells, 0].max() for bin in range(7)])
    assert box[2] - box_cells * stride == 25 and box_cells - 7 * bin_cells == 6
    assert np.abs(pooled - bin_centres).max() > 150  # the last bin reads 432 px for 617.5


def test_levels_follow_fpn_equation_one():
    boxes = tf.constant([[0, 0, 224, 224], [0, 0, 112, 112], [0, 0, 447, 447], [0, 0, 448, 448], [0, 0, 2, 2],
                         [0, 0, 4000, 4000]], tf.float32)
    assert assign_levels(boxes, 2, 5).numpy().tolist() == [4, 3, 4, 5, 2, 5]
    assert assign_levels(boxes, 2, 5, canonical_size=56).numpy().tolist() == [5, 5, 5, 5, 2, 5]
