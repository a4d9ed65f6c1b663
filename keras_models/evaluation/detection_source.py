"""Where detections come from: a run directory's model or an exported SavedModel, run over
a split's records, paired with the records' ground truth."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from contracts import record_schema
from contracts.errors import BoxflowError
from contracts.export_schema import (ASSETS_EXTRA, BOXES_OUTPUT, BOX_UNCERTAINTY_FILE, CLASSES_OUTPUT, COUNT_OUTPUT,
                                     EXAMPLES_SIGNATURE, MASKS_OUTPUT, PANOPTIC_CATEGORY_OUTPUT,
                                     PANOPTIC_INSTANCE_OUTPUT, PANOPTIC_OUTPUT_NAMES, SCORES_OUTPUT,
                                     SEMANTIC_MASK_OUTPUT, STDDEV_OUTPUT)
from contracts.label_map import parse_label_map
from keras_models.evaluation.evaluation_image import EvaluationImage
from keras_models.evaluation.mask_encoding import detection_rles, encode, truth_masks
from keras_models.evaluation.panoptic_evaluation import image_panoptic_counts, truth_panoptic
from keras_models.ops.box_uncertainty import NO_UNCERTAINTY
from pipeline.dataset import shard_files
from pipeline.record_decoding import decode_ground_truth
from keras_models.inference.detection_functions import Detector, detect_examples

# serialized tf.Examples [B] → the TF OD API outputs of keras_models/inference/detection_functions.py
DetectExamples = Callable[[tf.Tensor], dict[str, tf.Tensor]]


def model_detector(model: Detector, masks: bool = True) -> DetectExamples:
    """The in-process model behind the same function the export's `serve_examples` runs; without
    `masks`, its outputs lack `detection_masks` and the panoptic maps, so the graph skips a mask
    model's mask stage (and a panoptic model's merge) and `collect` scores the boxes alone."""
    left_out = {MASKS_OUTPUT, *PANOPTIC_OUTPUT_NAMES}

    def detect(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = detect_examples(model, serialized)
        return outputs if masks else {name: value for name, value in outputs.items() if name not in left_out}

    return tf.function(detect, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)


def _exported_class_names(model_dir: str) -> tuple[str, ...]:
    """The class names an export ships in `assets.extra/label_map.pbtxt`."""
    label_map = os.path.join(model_dir, ASSETS_EXTRA, record_schema.LABEL_MAP_FILE)
    if not os.path.exists(label_map):
        raise BoxflowError(f"--model {model_dir}: no {ASSETS_EXTRA}/{record_schema.LABEL_MAP_FILE}; "
                           "is it a boxflow export version directory?")
    with open(label_map) as f:
        return tuple(parse_label_map(f.read(), source=label_map))


def _load(model_dir: str):
    try:
        loaded = tf.saved_model.load(model_dir)
    except (OSError, ValueError) as error:
        raise BoxflowError(f"--model {model_dir}: cannot load the SavedModel: {error}") from None
    if EXAMPLES_SIGNATURE not in loaded.signatures:
        raise BoxflowError(f"--model {model_dir}: no '{EXAMPLES_SIGNATURE}' signature "
                           f"(has {sorted(loaded.signatures)})")
    return loaded


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    """An exported SavedModel's `serve_examples` signature (`detect`), the class names it ships, the
    distribution of its box uncertainty (`"none"` for a deterministic model) and the signature's
    output names (a semantic model's are `SEMANTIC_OUTPUT_NAMES`)."""

    detect: DetectExamples
    class_names: tuple[str, ...]
    box_uncertainty: str
    outputs: frozenset[str]

    @property
    def labels_pixels(self) -> bool:
        return SEMANTIC_MASK_OUTPUT in self.outputs


def saved_model_detector(model_dir: str) -> ExportedModel:
    """The SavedModel version directory `model_dir`, loaded once."""
    class_names = _exported_class_names(model_dir)
    loaded = _load(model_dir)
    (input_name,) = loaded.signatures[EXAMPLES_SIGNATURE].structured_input_signature[1]

    def detect(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        # Reaching the signature through `loaded` keeps the SavedModel's variables alive.
        return loaded.signatures[EXAMPLES_SIGNATURE](**{input_name: serialized})

    uncertainty_file = os.path.join(model_dir, ASSETS_EXTRA, BOX_UNCERTAINTY_FILE)
    box_uncertainty = NO_UNCERTAINTY
    if os.path.exists(uncertainty_file):
        with open(uncertainty_file) as f:
            box_uncertainty = f.read().strip()
    outputs = frozenset(loaded.signatures[EXAMPLES_SIGNATURE].structured_outputs)
    return ExportedModel(detect, class_names, box_uncertainty, outputs)


@dataclasses.dataclass(frozen=True)
class DetectionSource:
    """A model ready to run over records: `detect` answers the export's outputs, a detector's or,
    when it `labels_pixels` only, a semantic model's; `description` names it in reports (`{"run",
    "weights"}` or `{"model"}`)."""

    detect: DetectExamples
    class_names: tuple[str, ...]
    box_uncertainty: str
    description: dict
    labels_pixels: bool = False


def detection_source(path: str) -> DetectionSource:
    """The model at `path`: a run directory of `boxflow train` (its latest weights, calibrated when it
    has been) or an exported SavedModel version directory."""
    from keras_models.evaluation.semantic_evaluation import model_segmenter
    from keras_models.runs.run_directory import CONFIG_FILE, load_trained_model

    if os.path.exists(os.path.join(path, "saved_model.pb")):
        exported = saved_model_detector(path)
        return DetectionSource(exported.detect, exported.class_names, exported.box_uncertainty, {"model": path},
                               exported.labels_pixels)
    if os.path.exists(os.path.join(path, CONFIG_FILE)):
        trained = load_trained_model(path)
        description = {"run": path, "weights": trained.weights_path}
        if not trained.model.FINDS_OBJECTS:
            return DetectionSource(model_segmenter(trained.model), trained.class_names, NO_UNCERTAINTY, description,
                                   labels_pixels=True)
        return DetectionSource(model_detector(trained.model), trained.class_names,
                               getattr(trained.model, "box_uncertainty", NO_UNCERTAINTY), description)
    raise BoxflowError(f"{path}: neither a run directory of boxflow train (no {CONFIG_FILE}) nor an exported "
                       "SavedModel version directory (no saved_model.pb)")


def check_dataset_classes(data_dir: str, class_names: Sequence[str], model: str) -> None:
    """Fails unless the prepared dataset's label map lists `class_names`, in order."""
    path = os.path.join(data_dir, record_schema.LABEL_MAP_FILE)
    try:
        with open(path) as f:
            dataset_classes = parse_label_map(f.read(), source=path)
    except OSError as error:
        raise BoxflowError(f"--data {data_dir}: cannot read {record_schema.LABEL_MAP_FILE}: {error}") from None
    if list(class_names) != dataset_classes:
        raise BoxflowError(f"the classes of {model}, {list(class_names)}, differ from the dataset's {dataset_classes} "
                           f"({data_dir}); use data with the model's label map")


def collect(data_dir: str, split: str, detect: DetectExamples, batch_size: int = 16,
            progress: Callable[[int], None] = lambda _: None, progress_every: int = 256) -> list[EvaluationImage]:
    """Runs `detect` over the split and pairs detections with ground truth.

    `progress(images done)` is called about every `progress_every` images.
    """
    records = tf.data.TFRecordDataset(shard_files(data_dir, split))
    images: list[EvaluationImage] = []
    for serialized in records.batch(batch_size).prefetch(1):
        before = len(images)
        images.extend(_pair(_as_arrays(decode_ground_truth(serialized)), _as_arrays(detect(serialized))))
        if len(images) // progress_every > before // progress_every:
            progress(len(images))
    if not images:
        raise BoxflowError(f"{data_dir}: split '{split}' has no records to evaluate")
    return images


def _as_arrays(batch: dict[str, tf.Tensor | tf.RaggedTensor]) -> dict[str, list[np.ndarray] | np.ndarray]:
    """A batch's eager tensors as NumPy, once: each ragged one as the list of its `B` rows. Indexed
    image by image, eager tensors ran an op per index and field: 0.15-0.2 s per batch of 16,
    measured, as long as decoding the batch's annotations took."""

    def rows(ragged: tf.RaggedTensor) -> list[np.ndarray]:
        values, splits = ragged.values.numpy(), ragged.row_splits.numpy()
        return [values[start:end] for start, end in zip(splits[:-1], splits[1:])]

    return {name: rows(value) if isinstance(value, tf.RaggedTensor) else value.numpy() for name, value in batch.items()}


def _pair(truth: dict, detections: dict) -> list[EvaluationImage]:
    """One `EvaluationImage` per image of a batch, from `_as_arrays` of its ground truth and detections."""
    paired = []
    for index, (height, width) in enumerate(zip(truth["height"].tolist(), truth["width"].tolist())):
        count = int(detections[COUNT_OUTPUT][index])

        def xyxy_pixels(output: str) -> np.ndarray:
            ymin, xmin, ymax, xmax = np.moveaxis(detections[output][index, :count], -1, 0)
            return np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=-1)

        boxes = truth["boxes"][index].reshape(-1, 4)
        detection_boxes = xyxy_pixels(BOXES_OUTPUT)
        masked = MASKS_OUTPUT in detections
        # Masks are decoded only to score a mask model, once for its segm AP and its PQ.
        masks = truth_masks(truth["mask_pngs"][index].tolist(), len(boxes), height, width) if masked else None
        paired.append(EvaluationImage(
            source_id=truth["source_id"][index].decode("utf-8", "replace"),
            height=height,
            width=width,
            boxes=boxes,
            classes=truth["classes"][index],
            is_crowd=truth["is_crowd"][index],
            difficult=truth["difficult"][index],
            detection_boxes=detection_boxes,
            detection_scores=detections[SCORES_OUTPUT][index, :count],
            detection_classes=detections[CLASSES_OUTPUT][index, :count].astype(np.int64) - 1,
            detection_stddev=xyxy_pixels(STDDEV_OUTPUT) if STDDEV_OUTPUT in detections else None,
            masks=None if masks is None else [encode(mask) for mask in masks],
            detection_masks=(detection_rles(detections[MASKS_OUTPUT][index, :count], detection_boxes, height,
                                            width) if masked else None),
            panoptic_counts=_panoptic_counts(truth, detections, index, masks or []),
        ))
    return paired


def _panoptic_counts(truth: dict, detections: dict, index: int, masks: Sequence[np.ndarray]) -> Optional[dict]:
    """Image `index`'s per-class panoptic matches, from a panoptic model on a record with per-pixel
    labels (`masks` its objects' decoded masks); None otherwise."""
    semantic_png = truth["semantic_png"][index]
    if PANOPTIC_CATEGORY_OUTPUT not in detections or not semantic_png:
        return None
    height, width = int(truth["height"][index]), int(truth["width"][index])
    return image_panoptic_counts(
        truth_panoptic(semantic_png, masks, truth["classes"][index], truth["is_crowd"][index]),
        detections[PANOPTIC_CATEGORY_OUTPUT][index, :height, :width],
        detections[PANOPTIC_INSTANCE_OUTPUT][index, :height, :width])
