"""Proposals: the per-level top-k, NMS across levels at 0.7, the kept top-k, padding marked."""

import numpy as np
import pytest
import tensorflow as tf

from keras_models.ops.proposals import ProposalConfig, generate_proposals


@pytest.mark.parametrize("xla_compatible", [False, True])
def test_top_k_per_level_then_nms_across_levels(xla_compatible):
    # Level 0: three anchors; level 1: two. Deltas are zero, so each proposal is its anchor.
    anchors = [tf.constant([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 9.0], [30.0, 30.0, 40.0, 40.0]]),
               tf.constant([[0.0, 0.0, 10.0, 10.5], [60.0, 0.0, 90.0, 30.0]])]
    logits = [tf.constant([[3.0, 2.0, -1.0]]), tf.constant([[1.0, 0.5]])]
    deltas = [tf.zeros([1, 3, 4]), tf.zeros([1, 2, 4])]
    boxes, scores, valid = generate_proposals(logits, deltas, anchors, 64, ProposalConfig(2, 4, 0.7),
                                               xla_compatible)
    # Level 0 keeps its two best (the third is cut before NMS); the second (IoU 0.9) and level 1's
    # first (IoU 0.95) lie under the best and go; level 1's second box is clipped to the image.
    np.testing.assert_allclose(boxes[0, :2], [[0, 0, 10, 10], [60, 0, 64, 30]])
    np.testing.assert_allclose(scores[0, :2], tf.sigmoid([3.0, 0.5]), rtol=1e-6)
    assert valid.numpy().tolist() == [[True, True, False, False]]
    np.testing.assert_array_equal(boxes[0, 2:], 0)


@pytest.mark.parametrize("xla_compatible", [False, True])
def test_deltas_move_proposals_and_carry_no_gradient(xla_compatible):
    anchors = [tf.constant([[10.0, 10.0, 20.0, 20.0]])]
    deltas = tf.Variable([[[0.1, 0.0, 0.0, 0.0]]])  # a tenth of the width to the right: unit weights
    with tf.GradientTape() as tape:
        boxes, _, _ = generate_proposals([tf.constant([[0.0]])], [deltas], anchors, 64, ProposalConfig(5, 5, 0.7),
                                            xla_compatible)
        total = tf.reduce_sum(boxes)
    np.testing.assert_allclose(boxes[0, 0], [11, 10, 21, 20], rtol=1e-6)
    assert tape.gradient(total, deltas) is None


def test_the_xla_compiled_nms_keeps_the_same_proposals(rng):
    corners = rng.uniform(0, 200, (2, 600, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(4, 60, (2, 600, 2))], axis=-1).astype(np.float32)
    anchors = [tf.constant(boxes[0, :400]), tf.constant(boxes[0, 400:])]
    logits = tf.constant(rng.normal(size=(2, 600)).astype(np.float32))
    logits, deltas = [logits[:, :400], logits[:, 400:]], [tf.zeros([2, 400, 4]), tf.zeros([2, 200, 4])]
    config = ProposalConfig(300, 500, 0.7)  # room for every candidate: NMS decides the count
    expected = generate_proposals(logits, deltas, anchors, 256, config)
    compiled = tf.function(lambda: generate_proposals(logits, deltas, anchors, 256, config, xla_compatible=True),
                           jit_compile=True)()
    kept = tf.reduce_sum(tf.cast(expected[2], tf.int32), axis=1).numpy()
    assert np.all((kept > 300) & (kept < 500)), kept  # NMS removed some; padding rows follow
    for wanted, got in zip(expected, compiled):
        np.testing.assert_allclose(got, wanted, atol=1e-5)
