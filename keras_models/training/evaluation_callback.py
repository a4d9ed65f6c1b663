"""Validation scores during `fit`, written into the epoch's logs (so into `history.json` and
TensorBoard): a detector's COCO mAP, plus TensorBoard images of detections; a semantic model's mIoU."""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from contracts import record_schema
from keras_models.evaluation.coco_metrics import evaluate_coco
from keras_models.evaluation.detection_source import collect, model_detector
from keras_models.evaluation.evaluation_image import EvaluationImage
from keras_models.evaluation.semantic_evaluation import collect_confusions, model_segmenter, semantic_metrics
from pipeline.dataset import shard_files
from pipeline.record_decoding import decode_image
from pipeline.drawing import draw_example

SHOWN_SCORE = 0.3  # detections drawn in TensorBoard; the metrics use every detection


class CocoEvaluation(keras.callbacks.Callback):
    """Every `every_epochs` epochs: `val_mAP` and `val_mAP50` of the model's boxes on `split` (a mask
    model's masks are scored by `boxflow evaluate`).

    With `image_log_dir`, the first `image_count` images of the split are logged with the
    detections scoring at least 0.3 drawn on them. Must precede the TensorBoard callback
    in the callback list, so the values it adds reach TensorBoard.
    """

    def __init__(self, data_dir: str, split: str, class_names: Sequence[str], every_epochs: int = 1,
                 batch_size: int = 16, image_log_dir: Optional[str] = None, image_count: int = 4):
        super().__init__()
        self.data_dir, self.split, self.class_names = data_dir, split, tuple(class_names)
        self.every_epochs, self.batch_size = every_epochs, batch_size
        self.image_log_dir, self.image_count = image_log_dir, image_count
        self._detect = None
        self._writer = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if logs is None or (epoch + 1) % self.every_epochs:
            return
        if self._detect is None:
            # Boxes alone: a mask model's masks, pasted and run-length encoded per detection, took three
            # quarters of its validation, a fifth of a 15-minute budget (measured at 256 px).
            self._detect = model_detector(self.model, masks=False)
        images = collect(self.data_dir, self.split, self._detect, self.batch_size)
        stats = evaluate_coco(images, len(self.class_names)).stats
        logs["val_mAP"], logs["val_mAP50"] = max(float(stats[0]), 0.0), max(float(stats[1]), 0.0)
        if self.image_log_dir:
            self._log_images(epoch, images[: self.image_count])

    def _log_images(self, epoch: int, images: Sequence[EvaluationImage]) -> None:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.image_log_dir)
        records = tf.data.TFRecordDataset(shard_files(self.data_dir, self.split)).take(len(images))
        encoded = [tf.io.parse_single_example(record, {record_schema.ENCODED: tf.io.FixedLenFeature([], tf.string)})
                   for record in records]
        with self._writer.as_default(step=epoch + 1):
            for image, features in zip(images, encoded):
                shown = image.detection_scores >= SHOWN_SCORE
                picture = draw_example(decode_image(features[record_schema.ENCODED]).numpy(),
                                       image.detection_boxes[shown], image.detection_classes[shown],
                                       self.class_names, image.detection_scores[shown])
                tf.summary.image(f"detections/{image.source_id}", np.asarray(picture)[np.newaxis])
        self._writer.flush()


class SemanticEvaluation(keras.callbacks.Callback):
    """Every `every_epochs` epochs: `val_mIoU` and `val_pixel_accuracy` of a semantic model on
    `split`, through the export's own functions (`boxflow evaluate` reports per class)."""

    def __init__(self, data_dir: str, split: str, class_names: Sequence[str], every_epochs: int = 1,
                 batch_size: int = 16):
        super().__init__()
        self.data_dir, self.split, self.class_names = data_dir, split, tuple(class_names)
        self.every_epochs, self.batch_size = every_epochs, batch_size
        self._segment = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if logs is None or (epoch + 1) % self.every_epochs:
            return
        if self._segment is None:
            self._segment = model_segmenter(self.model)
        matrices = collect_confusions(self.data_dir, self.split, self._segment, len(self.class_names) + 1,
                                      self.batch_size)
        metrics = semantic_metrics(matrices, self.class_names, resamples=0)
        logs["val_mIoU"], logs["val_pixel_accuracy"] = metrics["mIoU"] or 0.0, metrics["pixel_accuracy"] or 0.0
