"""Feature pyramid (FPN) over C3–C5, with P6 and P7 from strided convolutions (RetinaNet)."""

from __future__ import annotations

import keras

from keras_models import conv


@keras.saving.register_keras_serializable(package="boxflow")
class FeaturePyramid(keras.layers.Layer):
    """`[C3, C4, C5]` → `[P3, P4, P5, P6, P7]`, each with `channels` channels."""

    def __init__(self, channels: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.lateral = [conv.Conv2D(channels, 1, name=f"lateral_c{level}") for level in (3, 4, 5)]
        self.smooth = [conv.Conv2D(channels, 3, padding="same", name=f"output_p{level}") for level in (3, 4, 5)]
        self.p6 = conv.Conv2D(channels, 3, strides=2, padding="same", name="p6")
        self.p7 = conv.Conv2D(channels, 3, strides=2, padding="same", name="p7")
        self.upsample = keras.layers.UpSampling2D(2)

    def call(self, features):
        c3, c4, c5 = features
        p5 = self.lateral[2](c5)
        p4 = self.lateral[1](c4) + self.upsample(p5)
        p3 = self.lateral[0](c3) + self.upsample(p4)
        p3, p4, p5 = (smooth(p) for smooth, p in zip(self.smooth, (p3, p4, p5)))
        p6 = self.p6(c5)
        p7 = self.p7(keras.activations.relu(p6))
        return [p3, p4, p5, p6, p7]

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels}
