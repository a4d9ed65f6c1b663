"""ROI Align's two implementations side by side (`keras_models/ops/roi_align.py`): milliseconds per
call, forward and forward + backward, on a Faster R-CNN training batch: P2-P5 of a square image,
512 ROIs per image spread over the levels by FPN's rule. Rounds interleave; the best of each counts.
The last line is the ratio gather / crop_and_resize time for forward + backward (below 1: the
gather implementation is faster).

    python benchmarks/roi_align_bench.py [--image-size 256] [--batch-size 2] [--rois 512] [--channels 256]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_models.ops.roi_align import assign_levels, roi_align, roi_align_crop_and_resize  # noqa: E402

LEVELS = (2, 3, 4, 5)


def milliseconds(function, repeats: int) -> float:
    function()  # tracing
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return 1000 * (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--rois", type=int, default=512)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    features = [tf.constant(rng.normal(size=(args.batch_size, args.image_size // 2 ** level,
                                             args.image_size // 2 ** level, args.channels)), tf.float32)
                for level in LEVELS]
    corners = rng.uniform(0, args.image_size, (args.batch_size, args.rois, 2, 2))
    boxes = tf.constant(np.concatenate([corners.min(axis=2), corners.max(axis=2)], axis=-1), tf.float32)
    levels = assign_levels(boxes, LEVELS[0], LEVELS[-1], canonical_size=224 * args.image_size / 800) - LEVELS[0]
    strides = [2 ** level for level in LEVELS]
    weights = tf.constant(rng.normal(size=(args.batch_size, args.rois, 7, 7, args.channels)), tf.float32)

    def timed_pair(implementation):
        forward = tf.function(lambda: implementation(features, strides, boxes, levels))

        @tf.function
        def forward_backward():
            # A training step needs both: the crops for the head, the features' gradient for the
            # backbone (ROI Align is linear in the features, so the gradient alone skips the forward).
            with tf.GradientTape() as tape:
                tape.watch(features)
                crops = implementation(features, strides, boxes, levels)
                loss = tf.reduce_sum(crops * weights)
            return loss, tape.gradient(loss, features)

        return forward, forward_backward

    implementations = {"gather": timed_pair(roi_align), "crop_and_resize": timed_pair(roi_align_crop_and_resize)}
    np.testing.assert_allclose(implementations["gather"][0](), implementations["crop_and_resize"][0](), atol=1e-4)
    best = {(name, part): float("inf") for name in implementations for part in ("forward", "forward + backward")}
    for _ in range(args.rounds):
        for name, (forward, forward_backward) in implementations.items():
            best[name, "forward"] = min(best[name, "forward"], milliseconds(forward, args.repeats))
            best[name, "forward + backward"] = min(best[name, "forward + backward"],
                                                   milliseconds(forward_backward, args.repeats))
    counts = np.bincount(levels.numpy().ravel(), minlength=len(LEVELS))
    print(f"{args.batch_size} x {args.rois} ROIs (P2-P5: {', '.join(map(str, counts))}), {args.image_size}px, "
          f"{args.channels} channels, 7x7, {os.cpu_count()} cores")
    for (name, part), value in best.items():
        print(f"{name:<16} {part:<19} {value:8.2f} ms")
    print(f"gather / crop_and_resize, forward + backward: "
          f"{best['gather', 'forward + backward'] / best['crop_and_resize', 'forward + backward']:.2f}x")


if __name__ == "__main__":
    main()
