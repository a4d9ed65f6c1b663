"""Run in a fresh process (logical devices must be set before TensorFlow starts): trains the
same detector (RetinaNet, Faster R-CNN or Mask R-CNN) for a few steps, backbone trainable and
normalization in training mode, on one device and under MirroredStrategy over 2 logical CPUs with
the same global batch; prints, as JSON, the largest weight change and the largest one-device/Mirrored
difference with synchronized BatchNorm and, for the `--control` CONFIG, with per-replica BatchNorm
(the control that shows the comparison can fail).

Each CONFIG is MODEL:BACKBONE:DTYPE, DTYPE the Keras dtype policy; all of them run in this one
process, and each prints its JSON line. A randomly initialized MobileNetV2 at 2 images per replica
is chaotic in float32: two float32 runs whose sums differ only in order end 3 SGD steps as far apart
as the weights moved (measured here: difference 0.037 against a change of 0.037). In float64 that
rounding no longer grows past the comparison, so the strategy's own arithmetic is what the
comparison sees.

With `--crowded DIR` it also prints the boxes that reach the replicas from the first global batch
of the dataset in DIR, read as `boxflow train --strategy mirrored` reads it (padded to the
`max_boxes` fitted to the data); with `--validation DIR`, what Mirrored validation reads of the
dataset in DIR and the losses it reports (`validation_report`).

Usage: python -m tests.helpers.strategy_equivalence DATA_DIR STEPS CONFIG [CONFIG ...] [--control CONFIG]
       [--crowded DIR] [--validation DIR]
"""

import json
import sys
from typing import Optional

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
# Deterministic kernels: TensorFlow's multi-threaded CPU kernels otherwise sum in an order that
# varies from run to run, and Faster R-CNN's untrained RPN ranks proposals whose float32 scores
# differ by that rounding. Measured over three runs without it: differences of 3.7e-9, 2.3e-6 and
# 3.8e-4 (1.1% of the change); with it 3.7e-9 each time.
tf.config.experimental.enable_op_determinism()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_models.models.faster_rcnn import FasterRCNN  # noqa: E402

from keras_models.models.faster_rcnn_config import FasterRCNNConfig  # noqa: E402
from keras_models.models.mask_rcnn import MaskRCNN  # noqa: E402
from keras_models.models.mask_rcnn_config import MaskRCNNConfig  # noqa: E402
from keras_models.models.retinanet import RetinaNet  # noqa: E402
from keras_models.models.retinanet_config import RetinaNetConfig  # noqa: E402
from keras_models.training.strategy import mirrored_strategy  # noqa: E402
from keras_models.training.train_job import fit_datasets  # noqa: E402
from keras_models.training.train_settings import train_settings  # noqa: E402
from pipeline.augment.config import AugmentationConfig  # noqa: E402
from pipeline.dataset import IMAGE_VALID, make_dataset, most_boxes_per_image, read_dataset_info  # noqa: E402
from pipeline.ragged_padding import PADDING_CLASS  # noqa: E402
from tests.builders import SMALL_FASTER_RCNN  # noqa: E402

DETECTORS = {
    "retinanet": lambda backbone, norm: RetinaNet(
        RetinaNetConfig(num_classes=3, image_size=128, backbone=backbone, norm=norm, fpn_channels=32, head_depth=1,
                        head_channels=32), name="detector"),
    "faster_rcnn": lambda backbone, norm: FasterRCNN(
        FasterRCNNConfig(num_classes=3, image_size=128, backbone=backbone, norm=norm, **SMALL_FASTER_RCNN),
        name="detector"),
    "mask_rcnn": lambda backbone, norm: MaskRCNN(
        MaskRCNNConfig(num_classes=3, image_size=128, backbone=backbone, norm=norm, **SMALL_FASTER_RCNN,
                       mask_head_channels=16), name="detector"),
}


def compiled_detector(strategy: tf.distribute.Strategy, model_name: str, backbone: str, norm: str,
                      start: Optional[dict[str, np.ndarray]] = None) -> keras.Model:
    """The detector built under `strategy` with the weights `start` (or a seeded initialization)."""
    keras.utils.set_random_seed(7)
    with strategy.scope():
        model = DETECTORS[model_name](backbone, norm)
        if start is not None:
            for variable in model.weights:
                variable.assign(start[variable.path])
        model.compile(optimizer=keras.optimizers.SGD(0.01))
    return model


def weights(model: keras.Model) -> dict[str, np.ndarray]:
    return {variable.path: np.array(variable) for variable in model.weights}


def train(strategy: tf.distribute.Strategy, data_dir: str, steps: int, model_name: str, backbone: str, norm: str,
          start: Optional[dict[str, np.ndarray]] = None) -> dict[str, np.ndarray]:
    """The weights by path after `steps` steps from `start` (or a seeded initialization)."""
    model = compiled_detector(strategy, model_name, backbone, norm, start)
    if steps:
        dataset = make_dataset(data_dir, "train", 128, 4, training=False, deterministic=True, padded_max_boxes=8,
                               with_masks=model.TRAINS_ON_MASKS)
        model.fit(dataset.take(steps), epochs=1, verbose=0)
    return weights(model)


def largest_difference(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> float:
    assert first.keys() == second.keys()
    return max(float(np.abs(first[path] - second[path]).max()) for path in first)


def crowded_report(data_dir: str) -> dict:
    """`max_boxes` as fitted to the data, and the boxes per image that reach the two replicas."""
    whole = AugmentationConfig(flip_probability=0.0, scale_range=None, colour_probability=0.0, jpeg_probability=0.0,
                               cutout_probability=0.0)
    settings = train_settings(data_dir, "unused", image_size=128, batch_size=8, strategy="mirrored",
                              augmentation=whole).padded_to(most_boxes_per_image(data_dir, read_dataset_info(data_dir)))
    train, _, _ = fit_datasets(settings, mirrored_strategy(["/cpu:0", "/cpu:1"]), val_images=0)
    _, targets = next(iter(train))
    per_image = [int(count) for replica in targets["classes"].values
                 for count in np.sum(np.array(replica) != PADDING_CLASS, axis=1)]
    return {"config": "crowded", "max_boxes": settings.max_boxes, "boxes_per_image": sorted(per_image)}


def validation_report(data_dir: str) -> dict:
    """The validation split of the dataset in DIR as `boxflow train --strategy mirrored` reads it,
    global batch 4 over the 2 replicas: the images its steps carry, and RetinaNet's `evaluate`
    losses on it beside one device's on the plain split in batches of 4 (the same images together)."""
    info = read_dataset_info(data_dir)
    settings = train_settings(data_dir, "unused", image_size=128, batch_size=4, strategy="mirrored",
                              deterministic_input=True).padded_to(most_boxes_per_image(data_dir, info))
    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])
    _, validation, steps = fit_datasets(settings, strategy, info["splits"]["val"]["images"])
    shapes, valid = set(), 0
    batches = iter(validation)
    for _ in range(steps):
        images, targets = next(batches)
        for replica_images, replica_valid in zip(images.values, targets[IMAGE_VALID].values):
            shapes.add(list(replica_images.shape)[0])
            valid += int(np.sum(replica_valid))
    one_device = compiled_detector(tf.distribute.OneDeviceStrategy("/cpu:0"), "retinanet", "tiny", "batch")
    plain = make_dataset(data_dir, "val", 128, 4, training=False, deterministic=True)
    mirrored = compiled_detector(strategy, "retinanet", "tiny", "batch", weights(one_device))
    return {"config": "validation", "val_images": info["splits"]["val"]["images"], "steps": steps,
            "replica_batch_sizes": sorted(shapes), "valid_images": valid,
            "one_device": one_device.evaluate(plain, return_dict=True, verbose=0),
            "mirrored": {name: float(np.ravel(value)[0]) for name, value in
                         mirrored.evaluate(validation, steps=steps, return_dict=True, verbose=0).items()}}


def _option(arguments: list[str], name: str) -> tuple[Optional[str], list[str]]:
    """The value of `name` among `arguments`, if there, and the other arguments."""
    if name not in arguments:
        return None, arguments
    at = arguments.index(name)
    return arguments[at + 1], arguments[:at] + arguments[at + 2:]


def main() -> None:
    crowded, arguments = _option(sys.argv[1:], "--crowded")
    validation, arguments = _option(arguments, "--validation")
    control, arguments = _option(arguments, "--control")
    data_dir, steps = arguments[0], int(arguments[1])
    if crowded:
        print(json.dumps(crowded_report(crowded)), flush=True)
    if validation:
        print(json.dumps(validation_report(validation)), flush=True)
    for config in arguments[2:]:
        model_name, backbone, dtype = config.split(":")
        keras.config.set_dtype_policy(dtype)
        one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
        initial = train(one_device, data_dir, 0, model_name, backbone, "batch")
        single = train(one_device, data_dir, steps, model_name, backbone, "batch", initial)
        report = {"config": config, "max_change": largest_difference(single, initial), "replicas": 2}
        for norm in ("sync_batch", "batch") if config == control else ("sync_batch",):
            mirrored = train(mirrored_strategy(["/cpu:0", "/cpu:1"]), data_dir, steps, model_name, backbone, norm,
                             initial)
            report[f"{norm}_difference"] = largest_difference(single, mirrored)
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
