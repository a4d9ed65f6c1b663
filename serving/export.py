"""`boxflow export`: a run directory → `MODEL_BASE/NAME/VERSION/`, a SavedModel TF Serving loads as is.

Written with `keras.export.ExportArchive` (DESIGN.md §6: a plain `tf.saved_model.save` of a
Keras 3 model fails under the session-based loader TF Serving uses). Three signatures, one
per input type, each with a dynamic batch dimension and decoding, letterbox and NMS inside
the graph (`keras_models/inference/detection_functions.py`; a semantic model's masks,
`segmentation_functions.py`):

- `serving_default`: `images`, tf.string `[None]`, encoded JPEG or PNG;
- `serve_images`: `images`, uint8 `[None, None, None, 3]`;
- `serve_examples`: `examples`, tf.string `[None]`, serialized `tf.train.Example`s.

A version is written in a staging folder and renamed into place, so a watcher (TF Serving,
`boxflow serve`) never sees half of one.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import tempfile
from typing import Callable, Optional

import keras
import tensorflow as tf

from contracts import export_schema, record_schema
from contracts.errors import BoxflowError
from contracts.user_paths import make_folder
from keras_models.ops.box_uncertainty import NO_UNCERTAINTY
from keras_models.runs.run_directory import load_trained_model
from serving import model_base
from keras_models.inference.detection_functions import detect_encoded_images, detect_examples, detect_images
from keras_models.inference.segmentation_functions import segment_encoded_images, segment_examples, segment_images
from pipeline.as_written import as_written
from serving.warmup import write_warmup_requests



@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: str
    version: int
    class_names: tuple[str, ...]


def export(run_dir: str, model_dir: str, version: Optional[int] = None, image_masks: bool = False) -> ExportResult:
    """Exports the run's latest weights as version `version` (default: the next free one) of
    the model at `model_dir` (= `MODEL_BASE/NAME`), and writes the model base's server files.
    `image_masks` adds a mask model's `detection_image_masks` to every signature."""
    base, name = model_base.split_model_dir(model_dir)
    trained = load_trained_model(run_dir)
    if image_masks and not trained.model.TRAINS_ON_MASKS:
        raise BoxflowError(f"--image-masks: the model of {run_dir} predicts no masks (train --model mask_rcnn)")
    version = version if version is not None else model_base.next_version(model_dir)
    if version < 1:
        raise BoxflowError(f"--version must be a positive integer, got {version}")
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target):
        raise BoxflowError(f"{target} exists; TF Serving versions are immutable, choose another --version")
    make_folder(model_dir, "--out")
    staging = tempfile.mkdtemp(prefix=f".staging-{version}-", dir=model_dir)
    try:
        _write_saved_model(trained.model, staging, image_masks)
        assets = os.path.join(staging, export_schema.ASSETS_EXTRA)
        os.makedirs(assets, exist_ok=True)
        shutil.copy(os.path.join(run_dir, record_schema.LABEL_MAP_FILE),
                    os.path.join(assets, record_schema.LABEL_MAP_FILE))
        write_warmup_requests(os.path.join(assets, export_schema.WARMUP_FILE), name, trained.model.image_size)
        box_uncertainty = getattr(trained.model, "box_uncertainty", NO_UNCERTAINTY)
        if box_uncertainty != NO_UNCERTAINTY:
            with open(os.path.join(assets, export_schema.BOX_UNCERTAINTY_FILE), "w") as f:
                f.write(box_uncertainty + "\n")
        calibration = os.path.join(run_dir, export_schema.BOX_CALIBRATION_FILE)
        if os.path.exists(calibration):  # the temperatures in the graph, and where they were fitted
            shutil.copy(calibration, os.path.join(assets, export_schema.BOX_CALIBRATION_FILE))
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    model_base.write_server_files(base, name)
    return ExportResult(target, version, trained.class_names)


@dataclasses.dataclass(frozen=True)
class _TracedOnce:
    """A model's `detect` and `predict_outputs`, each one `tf.function` over letterboxed float32
    `[None, S, S, 3]`: the three signatures call it, so the model is traced and saved once, not once
    per signature."""

    image_size: int
    detect: Callable[[tf.Tensor], dict[str, tf.Tensor]]
    predict_outputs: Callable[[tf.Tensor], dict[str, tf.Tensor]]

    @classmethod
    def of(cls, model: keras.Model) -> "_TracedOnce":
        side = model.image_size
        signature = [tf.TensorSpec([None, side, side, 3], tf.float32)]
        traced = functools.partial(tf.function, input_signature=signature, autograph=False)
        detect = traced(model.detect) if hasattr(model, "detect") else None
        return cls(side, detect, traced(model.predict_outputs))


def _serving_functions(model: keras.Model, image_masks: bool) -> tuple[Callable, Callable, Callable]:
    """The functions of the three signatures (encoded images, pixel images, examples): a semantic
    model's segmentation, a detector's detection."""
    traced = _TracedOnce.of(model)
    if not model.FINDS_OBJECTS:
        return (as_written(lambda images: segment_encoded_images(traced, images)),
                as_written(lambda images: segment_images(traced, images)),
                as_written(lambda examples: segment_examples(traced, examples)))
    return (as_written(lambda images: detect_encoded_images(traced, images, image_masks)),
            as_written(lambda images: detect_images(traced, images, image_masks)),
            as_written(lambda examples: detect_examples(traced, examples, image_masks)))


def _write_saved_model(model: keras.Model, path: str, image_masks: bool = False) -> None:
    encoded_images, pixel_images, examples = _serving_functions(model, image_masks)
    archive = keras.export.ExportArchive()
    archive.track(model)
    _add_traced_endpoint(archive, export_schema.ENCODED_IMAGES_SIGNATURE, encoded_images,
                         tf.TensorSpec([None], tf.string, name=export_schema.IMAGES_INPUT))
    _add_traced_endpoint(archive, export_schema.PIXEL_IMAGES_SIGNATURE, pixel_images,
                         tf.TensorSpec([None, None, None, 3], tf.uint8, name=export_schema.IMAGES_INPUT))
    _add_traced_endpoint(archive, export_schema.EXAMPLES_SIGNATURE, examples,
                         tf.TensorSpec([None], tf.string, name=export_schema.EXAMPLES_INPUT))
    archive.write_out(path, verbose=False)


def _add_traced_endpoint(archive: keras.export.ExportArchive, name: str, function: Callable,
                         spec: tf.TensorSpec) -> None:
    """`archive.add_endpoint(name, function, [spec])`, but saved as one concrete function, traced
    once. ExportArchive's endpoints are `tf.function`s, which it traces to list their variables and
    which `tf.saved_model.save` traces again in the context of saving (a cache key of its own):
    every signature was traced twice, and tracing is most of an export's time. The archive has no
    public way to take a concrete function, so this fills in what `add_endpoint` does (Keras 3.x's
    fields; tests/test_export.py holds the result to the in-process model)."""
    setattr(archive._tf_trackable, name, tf.function(function, autograph=False).get_concrete_function(spec))
    archive._endpoint_names.append(name)
    archive._endpoint_signatures[name] = [spec]
