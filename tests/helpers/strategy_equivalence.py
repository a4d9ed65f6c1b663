"""Run in a fresh process (logical devices must be set before TensorFlow starts): trains the
same RetinaNet for a few steps on one device and under MirroredStrategy over 2 logical CPUs
with the same global batch, and prints the largest weight difference as JSON."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_models.retinanet import RetinaNet  # noqa: E402
from pipeline.dataset import make_dataset  # noqa: E402


def train(strategy: tf.distribute.Strategy, data_dir: str, steps: int) -> list[np.ndarray]:
    keras.utils.set_random_seed(7)
    with strategy.scope():
        # BatchNorm batch statistics are per replica under MirroredStrategy, so a frozen
        # backbone (BN in inference mode) is what makes the two runs comparable.
        model = RetinaNet(num_classes=3, image_size=128, fpn_channels=32, head_depth=1, head_channels=32)
        model.backbone.trainable = False
        model.compile(optimizer=keras.optimizers.SGD(0.01))
    if steps:
        dataset = make_dataset(data_dir, "train", 128, 4, training=False, deterministic=True, padded_max_boxes=8)
        model.fit(dataset.take(steps), epochs=1, verbose=0)
    return model.get_weights()


def main() -> None:
    data_dir, steps = sys.argv[1], int(sys.argv[2])
    single = train(tf.distribute.OneDeviceStrategy("/cpu:0"), data_dir, steps)
    mirrored = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), data_dir, steps)
    changed = max(float(np.abs(w - w0).max()) for w, w0 in zip(single, _initial(data_dir)))
    difference = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
    print(json.dumps({"max_difference": difference, "max_change": changed, "replicas": 2}))


def _initial(data_dir: str) -> list[np.ndarray]:
    return train(tf.distribute.OneDeviceStrategy("/cpu:0"), data_dir, 0)


if __name__ == "__main__":
    main()
