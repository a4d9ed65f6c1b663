"""`assets.extra/tf_serving_warmup_requests`: requests TF Serving replays when it loads a version,
so the first real request does not pay for graph warm-up. Built with tensorflow-serving-api's protos."""

from __future__ import annotations

import tensorflow as tf

from contracts.export_schema import ENCODED_IMAGES_SIGNATURE, IMAGES_INPUT


def write_warmup_requests(path: str, model_name: str, image_size: int, batch_sizes: tuple[int, ...] = (1, 4)) -> None:
    """One `PredictionLog` per batch size for `serving_default`: grey JPEGs of the model's size."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    image = tf.io.encode_jpeg(tf.fill([image_size, image_size, 3], tf.constant(128, tf.uint8))).numpy()
    with tf.io.TFRecordWriter(path) as writer:
        for batch_size in batch_sizes:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=ENCODED_IMAGES_SIGNATURE))
            request.inputs[IMAGES_INPUT].CopyFrom(tf.make_tensor_proto([image] * batch_size, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
