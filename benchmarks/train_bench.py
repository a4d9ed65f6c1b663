"""Training images/s: boxflow's RetinaNet against `keras_cv.models.RetinaNet`, side by side.

Both get the same backbone architecture (ResNet-50 v1, built from constructors: keras-cv's
`ResNet50Backbone` and Keras Applications' `ResNet50` in ours), the same FPN and head sizes
(keras-cv's fixed 256 channels; heads of 3 convolutions before the predicting one), the same
anchors (sizes 4x the stride, 9 per location), input size and batch, and the very same padded
batches from `make_dataset`.
Each contender trains `--steps` timed steps after a warm-up (tracing, XLA compilation),
with XLA off and on, in alternating rounds; a contender that fails to compile is reported
as such. The last line is the ratio ours/keras-cv (best XLA setting of each; target >= 1.0).

    python benchmarks/train_bench.py [--image-size 256] [--batch-size 8] [--steps 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from beam_jobs.prepare_job import run  # noqa: E402
from beam_jobs.prepare_settings import PrepareSettings  # noqa: E402
from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset  # noqa: E402
from keras_models.models.retinanet import RetinaNet  # noqa: E402
from keras_models.models.retinanet_config import RetinaNetConfig  # noqa: E402
from pipeline.dataset import make_dataset  # noqa: E402

NUM_CLASSES = 3


def boxflow_model(image_size: int, xla: bool) -> keras.Model:
    # keras-cv's PredictionHead stacks 3 convolutions (num_conv_layers=3) before the prediction one.
    model = RetinaNet(RetinaNetConfig(NUM_CLASSES, image_size, backbone="resnet50", fpn_channels=256, head_depth=3,
                                      head_channels=256, anchor_size_multiplier=4.0))
    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9, global_clipnorm=10.0), jit_compile=xla)
    return model


def keras_cv_model(image_size: int, xla: bool) -> keras.Model:
    import keras_cv

    # ResNet-50 v1 (bottleneck "block"s) from the constructor: the ResNet50Backbone alias loads a preset,
    # which downloads.
    backbone = keras_cv.models.ResNetBackbone(stackwise_filters=[64, 128, 256, 512], stackwise_blocks=[3, 4, 6, 3],
                                              stackwise_strides=[1, 2, 2, 2],
                                              include_rescaling=True, input_shape=(image_size, image_size, 3))
    model = keras_cv.models.RetinaNet(backbone=backbone, num_classes=NUM_CLASSES, bounding_box_format="xyxy")
    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9, global_clipnorm=10.0),
                  classification_loss="focal", box_loss="smoothl1", jit_compile=xla)
    return model


def images_per_second(model: keras.Model, dataset: tf.data.Dataset, steps: int, batch_size: int) -> float:
    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)  # tracing / XLA compilation
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="train_bench_")
    try:
        write_synth_dataset(os.path.join(workdir, "synth"), 64, SynthConfig.for_image_size(args.image_size), seed=0)
        data_dir = os.path.join(workdir, "data")
        run(PrepareSettings(source_format="coco", input_path=os.path.join(workdir, "synth", ANNOTATIONS_FILE),
                            out_dir=data_dir, val_fraction=0.0, workers=1), progress=lambda _: None)
        # Padded batches (class -1): the form both models take, and the one XLA needs. Cached,
        # so the input pipeline costs both the same (nothing).
        dataset = make_dataset(data_dir, "train", args.image_size, args.batch_size, training=True, seed=0,
                               padded_max_boxes=16).take(8).cache().repeat()

        contenders = {"boxflow": boxflow_model, "keras-cv": keras_cv_model}
        rates: dict[tuple[str, bool], dict[int, float]] = {}  # by round
        for round_index in range(args.rounds):
            for xla in (False, True):
                for name, build in contenders.items():
                    keras.utils.set_random_seed(round_index)
                    try:
                        rate = images_per_second(build(args.image_size, xla), dataset, args.steps, args.batch_size)
                    except Exception as error:  # a contender that cannot compile is a result, not a crash
                        print(f"round {round_index + 1}: {name:<8} XLA {'on ' if xla else 'off'}: failed: "
                              f"{type(error).__name__}: {str(error).splitlines()[0][:150]}", flush=True)
                        traceback.print_exc(limit=1)
                        continue
                    rates.setdefault((name, xla), {})[round_index] = rate
                    print(f"round {round_index + 1}: {name:<8} XLA {'on ' if xla else 'off'}: "
                          f"{rate:6.3f} images/s ({args.batch_size / rate:.2f} s/step)", flush=True)
                    keras.backend.clear_session()

        for xla in (False, True):
            ours, theirs = rates.get(("boxflow", xla)), rates.get(("keras-cv", xla))
            if ours and theirs:
                # Rounds pair the two runs made back to back, which share the machine's load of the moment.
                paired = sorted(ours[index] / theirs[index] for index in ours.keys() & theirs.keys())
                best_ours, best_theirs = max(ours.values()), max(theirs.values())
                print(f"XLA {'on ' if xla else 'off'}: ours/keras-cv {best_ours / best_theirs:.2f}x best of each "
                      f"({best_ours:.3f} vs {best_theirs:.3f} images/s), median of rounds "
                      f"{paired[len(paired) // 2]:.2f}x")
        ours = max(rate for (name, _), runs in rates.items() if name == "boxflow" for rate in runs.values())
        theirs = max(rate for (name, _), runs in rates.items() if name == "keras-cv" for rate in runs.values())
        print(f"training images/s ours/keras-cv (best XLA setting each, {args.image_size}px, batch "
              f"{args.batch_size}, ResNet-50): {ours / theirs:.2f}x")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
