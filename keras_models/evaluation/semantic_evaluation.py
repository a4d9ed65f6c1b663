"""A semantic model scored on a split: its masks (from a run's model or an export, through the
export's own functions) against the records' label PNGs, as mIoU, per-class IoU and pixel accuracy,
with bootstrap intervals over images."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from contracts.errors import BoxflowError
from contracts.export_schema import SEMANTIC_MASK_OUTPUT
from keras_models.evaluation.bootstrap import interval_report, resample_counts
from keras_models.evaluation.semantic_metrics import ConfusionMatrix
from keras_models.inference.segmentation_functions import Segmenter, segment_examples
from pipeline.dataset import shard_files
from pipeline.record_decoding import decode_ground_truth

BACKGROUND = "background"  # label 0's name in reports
INTERVAL_METRICS = ("mIoU", "pixel_accuracy")

# serialized tf.Examples [B] → the export's outputs (`inference/segmentation_functions.py`)
SegmentExamples = Callable[[tf.Tensor], dict[str, tf.Tensor]]


def model_segmenter(model: Segmenter) -> SegmentExamples:
    """The in-process model behind the same function the export's `serve_examples` runs."""
    return tf.function(lambda serialized: segment_examples(model, serialized),
                       input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)


def collect_confusions(data_dir: str, split: str, segment: SegmentExamples, classes: int, batch_size: int = 16,
                       progress: Callable[[int], None] = lambda _: None,
                       progress_every: int = 256) -> list[ConfusionMatrix]:
    """One `classes`-class confusion matrix per image of the split that has per-pixel labels (an
    image without any has nothing to score and is left out). `progress(images done)` is called
    about every `progress_every` images."""
    matrices: list[ConfusionMatrix] = []
    done = 0
    for serialized in tf.data.TFRecordDataset(shard_files(data_dir, split)).batch(batch_size).prefetch(1):
        truth = decode_ground_truth(serialized)
        masks = segment(serialized)[SEMANTIC_MASK_OUTPUT].numpy()
        for index, png in enumerate(truth["semantic_png"].numpy()):
            if not png:
                continue
            labels = tf.io.decode_png(png, channels=1).numpy()[..., 0]
            height, width = labels.shape
            matrix = ConfusionMatrix(classes)
            matrix.add(labels, masks[index, :height, :width])
            matrices.append(matrix)
        if (done + len(masks)) // progress_every > done // progress_every:
            progress(done + len(masks))
        done += len(masks)
    if not matrices:
        raise BoxflowError(f"{data_dir}: split '{split}' has no records with per-pixel labels to score")
    return matrices


def semantic_metrics(matrices: Sequence[ConfusionMatrix], class_names: Sequence[str], resamples: int = 200,
                     seed: int = 0, level: float = 0.95) -> dict:
    """`{"images", "mIoU", "pixel_accuracy", "per_class_IoU": {name: IoU}, "intervals"}`: the scores
    of every image's pixels together; with `resamples`, each of `INTERVAL_METRICS`' `level`
    percentile interval over bootstrap resamples of the images."""
    counts = np.stack([matrix.counts for matrix in matrices])
    unknown = np.stack([matrix.unknown_predictions for matrix in matrices])
    scores = ConfusionMatrix.summed(counts, unknown, np.ones(len(matrices), np.int64)).scores()
    names = (BACKGROUND, *class_names)
    metrics = {"images": len(matrices), "mIoU": scores["mIoU"], "pixel_accuracy": scores["pixel_accuracy"],
               "per_class_IoU": {names[label]: iou for label, iou in scores["per_class_IoU"].items()}}
    if resamples:
        samples = [ConfusionMatrix.summed(counts, unknown, weights).scores()
                   for weights in resample_counts(len(matrices), resamples, seed)]
        metrics["intervals"] = {name: interval_report([sample[name] for sample in samples], level, resamples)
                                for name in INTERVAL_METRICS}
    return metrics


def format_semantic_metrics(metrics: dict) -> list[str]:
    """The metrics as a person reads them in a terminal."""
    def number(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [f"{metrics['images']} images with per-pixel labels"]
    for name in INTERVAL_METRICS:
        interval = metrics.get("intervals", {}).get(name)
        spread = (f"  {interval['level']:.0%} interval [{interval['low']:.3f}, {interval['high']:.3f}]"
                  if interval else "")
        lines.append(f"{name:<15} {number(metrics[name])}{spread}")
    lines.append(f"{'class':<16} {'IoU':>6}")
    lines += [f"{name:<16} {number(iou):>6}" for name, iou in metrics["per_class_IoU"].items()]
    return lines
