"""Mask R-CNN's own parts: mask targets equal a NumPy crop-and-resize with ROI Align's sampling,
pasted masks equal a NumPy bilinear paste, and the model's mask stage learns."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from contracts.errors import SettingError
from keras_models.evaluation.detection_source import collect, model_detector
from keras_models.models.mask_rcnn import MaskRCNN
from keras_models.models.mask_rcnn_config import MaskRCNNConfig
from keras_models.ops.mask_pasting import masks_of_sub_boxes, paste_masks
from keras_models.ops.mask_targets import mask_targets
from keras_models.training import evaluation_callback
from pipeline.dataset import make_dataset
from tests.builders import SMALL_MODELS, prepared_synth


def bilinear(image: np.ndarray, y: float, x: float, edge: str) -> float:
    """`image` at `(y, x)` (pixel `i`'s value at `i`): ROI Align's edge rule (`edge="clamp"`: up to
    one pixel outside takes the edge value, zero beyond) or zero padding (`edge="zero"`)."""
    height, width = image.shape
    if edge == "clamp":
        if y < -1 or y > height or x < -1 or x > width:
            return 0.0
        y, x = min(max(y, 0.0), height - 1), min(max(x, 0.0), width - 1)
    total = 0.0
    for row in (int(np.floor(y)), int(np.floor(y)) + 1):
        for column in (int(np.floor(x)), int(np.floor(x)) + 1):
            weight = max(0.0, 1 - abs(y - row)) * max(0.0, 1 - abs(x - column))
            if weight and 0 <= row < height and 0 <= column < width:
                total += weight * image[row, column]
    return total


def reference_target(mask: np.ndarray, roi, size: int, ratio: int = 2) -> np.ndarray:
    """Crop `mask` to `roi` (pixels XYXY) and resize to `size` x `size`: each cell the mean of
    `ratio`² bilinear samples at its sub-grid's centres (ROI Align's sampling)."""
    x1, y1, x2, y2 = roi
    step_y, step_x = (y2 - y1) / (size * ratio), (x2 - x1) / (size * ratio)
    out = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            out[i, j] = np.mean([bilinear(mask, y1 + (i * ratio + a + 0.5) * step_y - 0.5,
                                          x1 + (j * ratio + b + 0.5) * step_x - 0.5, "clamp")
                                 for a in range(ratio) for b in range(ratio)])
    return out


def test_mask_targets_equal_a_numpy_crop_and_resize():
    rng = np.random.default_rng(0)
    instances = np.zeros((2, 40, 48), np.int32)
    instances[0, 5:30, 8:20] = 1
    instances[0, 10:38, 15:45] = 2  # overlaps box 0: the map gives those pixels to box 1
    instances[1] = np.where(rng.uniform(size=(40, 48)) < 0.5, 1, 0)  # a ragged mask
    rois = np.array([[[6.3, 4.1, 21.7, 31.2], [14.0, 9.5, 47.9, 39.9], [0, 0, 10, 10]],
                     [[-3.0, -2.0, 20.5, 12.25], [30.0, 20.0, 52.0, 44.0], [1, 1, 2, 2]]], np.float32)
    matched = np.array([[0, 1, -1], [0, 0, 0]], np.int32)
    targets = mask_targets(tf.constant(instances), tf.constant(rois), tf.constant(matched), size=14).numpy()
    assert targets.shape == (2, 3, 14, 14)
    for image in range(2):
        for roi in range(3):
            expected = (np.zeros((14, 14)) if matched[image, roi] < 0 else
                        reference_target((instances[image] == matched[image, roi] + 1).astype(float),
                                         rois[image, roi], 14))
            np.testing.assert_allclose(targets[image, roi], expected, atol=1e-5, err_msg=f"{image}, {roi}")
    assert 0.2 < targets[1, 0].mean() < 0.8 and targets[0, 0].max() == 1.0


def test_pasted_masks_equal_a_numpy_bilinear_paste():
    rng = np.random.default_rng(1)
    masks = rng.uniform(size=(2, 2, 6, 6)).astype(np.float32)
    boxes = np.array([[[3.2, 5.5, 17.9, 20.0], [-4.0, 10.0, 12.0, 30.5]],
                      [[0.0, 0.0, 24.0, 32.0], [20.0, 2.0, 23.0, 9.0]]], np.float32)
    pasted = paste_masks(tf.constant(masks), tf.constant(boxes), 32, 24).numpy()
    assert pasted.shape == (2, 2, 32, 24)
    for image in range(2):
        for index in range(2):
            x1, y1, x2, y2 = boxes[image, index]
            expected = np.array([[bilinear(masks[image, index], (y + 0.5 - y1) / (y2 - y1) * 6 - 0.5,
                                           (x + 0.5 - x1) / (x2 - x1) * 6 - 0.5, "zero")
                                  for x in range(24)] for y in range(32)])
            np.testing.assert_allclose(pasted[image, index], expected, atol=1e-4)


@pytest.fixture(scope="module")
def masked_data(tmp_path_factory):
    return str(prepared_synth(tmp_path_factory.mktemp("mask_rcnn"), 24, 128, (16, 48), seed=3, masks=True,
                              val_fraction=0.25))


def small_mask_rcnn(**overrides) -> MaskRCNN:
    return MaskRCNN(MaskRCNNConfig(num_classes=3, image_size=128, **{**SMALL_MODELS["faster_rcnn"], **overrides}))


def test_a_mask_resampled_to_its_clipped_box_pastes_as_the_original():
    """Bilinear sampling is exact on a linear ramp: pasted over the clipped box, the resampled mask
    equals the original pasted over the whole box, away from the half-cell fall-off at the edges."""
    rows, columns = np.mgrid[:28, :28]
    masks = np.stack([0.02 * rows + 0.01 * columns, 0.5 - 0.01 * rows + 0.015 * columns])[np.newaxis]
    boxes = np.array([[[10, 20, 70, 90], [5, 5, 40, 30]]], np.float32)  # XYXY
    clipped = np.array([[[10, 20, 50, 90], [12, 8, 40, 25]]], np.float32)
    yxyx = [1, 0, 3, 2]
    resampled = masks_of_sub_boxes(masks, boxes[..., yxyx], clipped[..., yxyx])
    whole = paste_masks(masks, boxes, 100, 100).numpy()[0]
    part = paste_masks(resampled, clipped, 100, 100).numpy()[0]
    for index, (x1, y1, x2, y2) in enumerate(clipped[0].astype(int)):
        inside = (index, slice(y1 + 3, y2 - 3), slice(x1 + 3, x2 - 3))
        np.testing.assert_allclose(part[inside], whole[inside], atol=1e-5)
    unclipped = masks_of_sub_boxes(masks, boxes[..., yxyx], boxes[..., yxyx]).numpy()
    np.testing.assert_allclose(unclipped, masks, atol=1e-6)


def test_the_mask_stage_learns_a_batch_and_detect_gives_masks(masked_data):
    keras.utils.set_random_seed(0)
    model = small_mask_rcnn()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    batch = make_dataset(masked_data, "train", 128, 4, training=False, with_masks=True).take(1).cache().repeat()
    history = model.fit(batch, epochs=4, steps_per_epoch=8, verbose=0).history
    assert set(history) == set(MaskRCNN.LOSS_NAMES)
    assert all(np.isfinite(value) for values in history.values() for value in values)
    # A head that learns nothing stays near log 2 = 0.69; this one fell below 0.7x, once to 0.72x.
    assert history["mask_loss"][-1] < 0.8 * history["mask_loss"][0], history["mask_loss"]
    images = next(iter(make_dataset(masked_data, "val", 128, 2, training=False, deterministic=True)))[0]
    detections = model.detect(images)
    assert detections["masks"].shape == (2, 20, 28, 28)
    shown = np.arange(20) < detections["num_detections"].numpy()[:, np.newaxis]
    assert not detections["masks"].numpy()[~shown].any()
    assert 0.0 <= float(tf.reduce_min(detections["masks"])) and float(tf.reduce_max(detections["masks"])) <= 1.0


def test_validation_while_training_scores_the_boxes_without_making_masks(masked_data, monkeypatch):
    """The epoch's `val_mAP` pairs detections without masks (pasting and encoding them was three
    quarters of a mask model's validation); `boxflow evaluate`'s detector keeps them, same boxes."""
    keras.utils.set_random_seed(0)
    model = small_mask_rcnn(score_threshold=0.0)
    validated = []
    monkeypatch.setattr(evaluation_callback, "collect",
                        lambda *args, **kwargs: validated.extend(collect(*args, **kwargs)) or validated)
    callback = evaluation_callback.CocoEvaluation(masked_data, "val", ("circle", "square", "triangle"))
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert set(logs) == {"val_mAP", "val_mAP50"}
    evaluated = collect(masked_data, "val", model_detector(model))
    assert len(validated) == len(evaluated) == 3 and sum(len(image.detection_boxes) for image in validated) > 0
    for during, after in zip(validated, evaluated):
        assert during.masks is None and during.detection_masks is None
        assert len(after.detection_masks) == len(after.detection_boxes) and len(after.masks) == len(after.boxes)
        np.testing.assert_allclose(during.detection_boxes, after.detection_boxes, atol=1e-4)


def test_the_mask_head_learns_from_as_many_foreground_rois_as_asked(masked_data):
    with pytest.raises(SettingError, match="mask_rois_per_image must be at least 1, got 0"):
        MaskRCNNConfig(num_classes=3, mask_rois_per_image=0)
    with pytest.raises(SettingError, match="must be at most the 8 foreground slots of the 32 ROIs sampled per image"):
        small_mask_rcnn(mask_rois_per_image=9)
    batch = make_dataset(masked_data, "train", 128, 4, training=False, with_masks=True).take(1)
    for asked, pooled in ((None, 8), (3, 3)):
        model = small_mask_rcnn(mask_rois_per_image=asked)
        model.compile(optimizer="adam", run_eagerly=True)  # the shapes the head sees, not the traced ones
        heard = []
        head_call = model.mask_head.call
        model.mask_head.call = lambda features, training=False: heard.append(features.shape) or head_call(
            features, training=training)
        assert np.isfinite(model.evaluate(batch, verbose=0, return_dict=True)["mask_loss"])
        assert [tuple(shape[:2]) for shape in heard] == [(4, pooled)]


def test_boxes_without_masks_leave_the_mask_loss(masked_data):
    """A record without masks decodes to an empty instance map: its ROIs teach no mask (ragged and
    padded batches giving the same mask loss is the model contract test's)."""
    model = small_mask_rcnn()
    model.compile(optimizer="adam")
    batch = make_dataset(masked_data, "train", 128, 4, training=False, with_masks=True).take(1)
    unmasked = batch.map(lambda images, targets: (images, {**targets,
                                                           "instance_map": tf.zeros_like(targets["instance_map"])}))
    masked_loss, unmasked_loss = (model.evaluate(data, verbose=0, return_dict=True)["mask_loss"]
                                  for data in (batch, unmasked))
    assert masked_loss > 0.1 and unmasked_loss == 0.0


def test_the_mask_stage_trains_in_bfloat16_with_float32_masks(masked_data):
    """bfloat16 is where an op lacked a kernel (ROI Align's crop_and_resize); float16's loss scaling
    is the steps every model shares (test_mixed_precision.py)."""
    policy_name = "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy_name)
    try:
        keras.utils.set_random_seed(0)
        model = small_mask_rcnn()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        batch = make_dataset(masked_data, "train", 128, 4, training=False, with_masks=True).take(1).repeat(2)
        history = model.fit(batch, epochs=1, verbose=0).history
        assert model.mask_head.convs[0].compute_dtype == policy_name.split("_")[1]
        assert np.isfinite(history["mask_loss"][0]) and history["mask_loss"][0] > 0
        images = next(iter(make_dataset(masked_data, "val", 128, 2, training=False, deterministic=True)))[0]
        masks = model.detect(images)["masks"]
        assert masks.dtype == tf.float32 and 0.0 <= float(tf.reduce_min(masks)) <= float(tf.reduce_max(masks)) <= 1.0
    finally:
        keras.mixed_precision.set_global_policy("float32")
