"""Faster R-CNN as a Keras model: it trains with `fit` on the pipeline's ragged batches, `predict`
returns DESIGN.md §5's detections, and its config rebuilds it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_models.models.faster_rcnn import FasterRCNN

from keras_models.models.faster_rcnn_config import FasterRCNNConfig
from pipeline.dataset import make_dataset
from keras_models.inference.detection_functions import detect_images
from contracts.export_schema import STDDEV_OUTPUT
from keras_models.ops.box_format import pairwise_overlaps
from keras_models.ops.sampling import NO_BOX
from tests.builders import SMALL_MODELS, prepared_synth

SMALL = SMALL_MODELS["faster_rcnn"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("faster_rcnn"), 24, 128, (16, 48), seed=3, val_fraction=0.25)


def test_the_box_stage_hands_a_later_stage_its_rois_and_their_matched_boxes(data_dir):
    """What a mask stage attaches to: `_after_box_stage` gets each sampled ROI's ground-truth box."""
    handed = {}

    class WithALaterStage(FasterRCNN):
        def _after_box_stage(self, levels, box_stage, truth, training):
            handed.update(box_stage=box_stage, truth=truth)
            return {"later_loss": tf.constant(0.0)}

    model = WithALaterStage(FasterRCNNConfig(num_classes=3, image_size=128, **SMALL))
    images, targets = next(iter(make_dataset(str(data_dir), "train", 128, 4, training=False, deterministic=True)))
    losses = model._losses_for(images, targets, training=True)
    assert "later_loss" in losses and set(FasterRCNN.LOSS_NAMES) <= set(losses)
    stage, truth = handed["box_stage"], handed["truth"]
    matched, class_targets = stage.matched_boxes.numpy(), stage.class_targets.numpy()
    foreground = class_targets >= 0
    assert foreground.any() and np.all((matched >= 0) == foreground) and np.all(matched[~foreground] == NO_BOX)
    for image, row in zip(*np.nonzero(foreground)):
        box = truth.boxes[image, matched[image, row]]
        assert class_targets[image, row] == truth.classes[image, matched[image, row]]
        overlap = float(pairwise_overlaps(stage.rois[image, row][tf.newaxis], box[tf.newaxis])[0][0, 0])
        assert overlap >= 0.5  # a foreground ROI overlaps its own box most, by at least IoU 0.5


@pytest.mark.slow
def test_the_xla_compiled_losses_equal_the_graph_ones(data_dir):
    # Under XLA the model takes XLA's forms of NMS (proposals) and ROI Align (gathers).
    keras.utils.set_random_seed(1)
    graph_model = FasterRCNN(FasterRCNNConfig(num_classes=3, image_size=128, **SMALL))
    xla_model = FasterRCNN.from_config(graph_model.get_config())
    xla_model.set_weights(graph_model.get_weights())
    for model, jit_compile in ((graph_model, False), (xla_model, True)):
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    images, targets = next(iter(make_dataset(str(data_dir), "train", 128, 4, training=False, deterministic=True,
                                             padded_max_boxes=16)))

    def losses_and_rpn_gradients(model):
        with tf.GradientTape() as tape:
            losses = model._losses_for(images, targets, training=True)
        rpn_loss = losses["rpn_class_loss"] + losses["rpn_box_loss"]
        return losses, tape.gradient(rpn_loss, model.trainable_variables), model(images)["proposals"]

    graph_losses, graph_gradients, graph_proposals = tf.function(losses_and_rpn_gradients)(graph_model)
    xla_losses, xla_gradients, xla_proposals = tf.function(losses_and_rpn_gradients, jit_compile=True)(xla_model)
    for name in ("rpn_class_loss", "rpn_box_loss"):
        assert float(xla_losses[name]) == pytest.approx(float(graph_losses[name]), rel=1e-5), name
    for graph, xla in zip(graph_gradients, xla_gradients):
        if graph is not None:
            np.testing.assert_allclose(xla, graph, atol=1e-4 * max(1.0, float(tf.reduce_max(tf.abs(graph)))))
    # Nearly the same proposals: an untrained RPN's scores lie 1e-9 apart, under rounding, so their
    # order may differ, and with it which box makes the top-k cut or survives an NMS tie. ROIs are
    # drawn by position, so the second stage's sample differs a little too.
    for graph, xla in zip(graph_proposals.numpy(), xla_proposals.numpy()):
        shared = {tuple(box) for box in graph.round(2)} & {tuple(box) for box in xla.round(2)}
        assert len(shared) >= 0.9 * len({tuple(box) for box in graph.round(2)})
    for name in ("class_loss", "box_loss"):
        assert float(xla_losses[name]) == pytest.approx(float(graph_losses[name]), rel=0.15), name


def test_without_the_pyramid_both_stages_read_c4_with_nine_anchors_per_location(data_dir):
    keras.utils.set_random_seed(0)
    model = FasterRCNN(FasterRCNNConfig(num_classes=3, image_size=128, pyramid=False, anchor_size_multiplier=2.0,
                                        **SMALL))
    assert model.pyramid is None and model.roi_levels == (4,)
    np.testing.assert_allclose(model.anchors[:9].numpy(), [  # the first location, centre (8, 8): 32, 64, 128 px
        [8 - side / 2 / ratio ** 0.5, 8 - side / 2 * ratio ** 0.5, 8 + side / 2 / ratio ** 0.5,
         8 + side / 2 * ratio ** 0.5] for side in (32, 64, 128) for ratio in (0.5, 1, 2)], atol=1e-4)
    images = next(iter(make_dataset(str(data_dir), "val", 128, 2, training=False, deterministic=True)))[0]
    outputs = model(images)
    assert [logits.shape for logits in outputs["rpn_logits"]] == [(2, 8 * 8 * 9)]
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(make_dataset(str(data_dir), "train", 128, 4, training=True, seed=0), epochs=4,
                        verbose=0).history
    assert history["rpn_class_loss"][-1] < 0.8 * history["rpn_class_loss"][0]
    rebuilt = FasterRCNN.from_config(model.get_config())
    assert rebuilt.pyramid is None
    rebuilt.set_weights(model.get_weights())
    for name, values in model.detect(images).items():
        np.testing.assert_allclose(rebuilt.detect(images)[name], values, atol=1e-5)


def test_a_probabilistic_second_stage_trains_and_its_detections_carry_stddev(data_dir):
    keras.utils.set_random_seed(0)
    model = FasterRCNN(FasterRCNNConfig(num_classes=3, image_size=128, box_uncertainty="laplace", **SMALL))
    images = next(iter(make_dataset(str(data_dir), "val", 128, 2, training=False, deterministic=True)))[0]
    assert model(images)["box_deltas"].shape[2:] == (3, 8)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(make_dataset(str(data_dir), "train", 128, 4, training=True, seed=0), epochs=3,
                        verbose=0).history
    assert np.all(np.isfinite(history["box_loss"]))
    # The total is no measure here: the second-stage box loss sums over foreground ROIs, whose number grows
    # as the RPN learns (measured 0.40, 0.25, 0.57 and 0.37, 0.38, 0.73 in two runs of this test).
    assert history["class_loss"][-1] < 0.8 * history["class_loss"][0]  # measured: 0.90 -> 0.50
    # The likelihood teaches the scales: from about 1 encoded unit at the start (a mean log-scale of
    # 0.0002) to less. Measured after the 3 epochs: -0.062 and -0.063 alone, -0.036 in a full suite.
    assert float(np.mean(model(images)["box_deltas"][..., 4:])) < -0.02
    model.nms = type(model.nms)(score_threshold=0.0, max_detections=20, max_detections_per_class=20)
    detections = model.detect(images)
    shown = np.arange(20) < detections["num_detections"].numpy()[:, np.newaxis]
    stddev = detections["box_stddev"].numpy()
    assert shown.any() and np.all(stddev[shown] > 0) and np.all(stddev[~shown] == 0)
    # Each detection's stddev is its class's predicted scale on its ROI: √2 b times a tenth of the ROI's side.
    outputs = model(images)
    rois, deltas = outputs["proposals"].numpy(), outputs["box_deltas"].numpy()
    expected = np.sqrt(2) * np.exp(np.clip(deltas[..., 4:], -7, 7)) * 0.1 * np.tile(
        rois[..., 2:] - rois[..., :2], 2)[:, :, np.newaxis, :]
    image, row = 0, 0
    label = int(detections["classes"][image, row])
    candidates = expected[image, :, label]  # [P, 4]
    assert np.min(np.abs(candidates - stddev[image, row]).max(axis=1)) < 1e-4
    # The serving functions answer it as detection_box_stddev, normalized as the boxes (128 px images).
    served = detect_images(model, tf.cast(images, tf.uint8))
    expected_normalized = detections["box_stddev"].numpy()[..., [1, 0, 3, 2]] / 128
    np.testing.assert_allclose(served[STDDEV_OUTPUT], expected_normalized, atol=1e-4)
