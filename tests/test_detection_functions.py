"""The serving functions map detections back onto the original image, for each input type.

The detector here is a real (if simple) one: it boxes the bright pixels of the letterboxed
input. Images with one bright rectangle at a known place, in odd sizes and aspect ratios,
must come back as that rectangle in normalized (ymin, xmin, ymax, xmax) of the original.
"""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from contracts import record_schema
from keras_models.inference.detection_functions import detect_encoded_images, detect_examples, detect_images


class BrightRegionDetector:
    """Boxes the pixels brighter than 128 (one detection of class 0 per image), DESIGN.md §5 form."""

    image_size = 128

    def detect(self, images):
        bright = tf.reduce_mean(images, axis=-1) > 128
        rows, columns = tf.reduce_any(bright, axis=2), tf.reduce_any(bright, axis=1)

        def extent(mask):
            first = tf.argmax(tf.cast(mask, tf.int32), axis=1)
            last = tf.shape(mask, out_type=tf.int64)[1] - tf.argmax(tf.cast(mask[:, ::-1], tf.int32), axis=1)
            return tf.cast(first, tf.float32), tf.cast(last, tf.float32)

        (ymin, ymax), (xmin, xmax) = extent(rows), extent(columns)
        batch = tf.shape(images)[0]
        return {"boxes": tf.stack([xmin, ymin, xmax, ymax], axis=-1)[:, tf.newaxis, :],
                "scores": tf.ones([batch, 1]), "classes": tf.zeros([batch, 1], tf.int32),
                "num_detections": tf.ones([batch], tf.int32)}


def picture(height, width, box):
    """A dark image with a white rectangle over pixels `box` = (xmin, ymin, xmax, ymax), end exclusive."""
    pixels = np.full((height, width, 3), 20, np.uint8)
    xmin, ymin, xmax, ymax = box
    pixels[ymin:ymax, xmin:xmax] = 255
    return pixels


def encoded(pixels, image_format):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, quality=95)
    return buffer.getvalue()


def expected(height, width, box):
    xmin, ymin, xmax, ymax = box
    return [ymin / height, xmin / width, ymax / height, xmax / width]


CASES = [(90, 160, (40, 20, 100, 50)), (300, 120, (10, 200, 60, 290)), (640, 480, (100, 300, 400, 620))]


@pytest.mark.parametrize("height, width, box", CASES)
@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_encoded_images_come_back_in_original_coordinates(height, width, box, image_format):
    data = tf.constant([encoded(picture(height, width, box), image_format)])
    outputs = detect_encoded_images(BrightRegionDetector(), data)
    # One letterboxed pixel is 1/128 of the longer side; allow two for JPEG ringing.
    np.testing.assert_allclose(outputs["detection_boxes"][0, 0], expected(height, width, box), atol=2 / 128)
    assert outputs["detection_classes"].numpy().tolist() == [[1.0]] and outputs["num_detections"].numpy() == [1.0]


def test_uint8_batches_and_examples_give_the_same_boxes():
    height, width, box = CASES[0]
    pixels = picture(height, width, box)
    from_images = detect_images(BrightRegionDetector(), tf.constant(np.stack([pixels, pixels])))
    example = tf.train.Example(features=tf.train.Features(feature={record_schema.ENCODED: tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[encoded(pixels, "PNG")]))}))
    from_examples = detect_examples(BrightRegionDetector(), tf.constant([example.SerializeToString()]))
    for outputs in (from_images, from_examples):
        np.testing.assert_allclose(outputs["detection_boxes"][0, 0], expected(height, width, box), atol=1 / 128)
    assert from_images["detection_boxes"].shape == (2, 1, 4)
