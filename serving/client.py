"""`boxflow predict`: one image to a TF Serving API (REST or gRPC), detections or a semantic mask back.

Works against `boxflow serve` and the real TensorFlow Serving alike: REST sends the row
format with a `{"b64": …}` image, gRPC a `PredictRequest` through the official
`PredictionServiceStub`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import urllib.error
import urllib.request
from typing import Optional

import numpy as np

from contracts import box_overlap
from contracts.errors import BoxflowError
from contracts.export_schema import (BOXES_OUTPUT, CLASSES_OUTPUT, COUNT_OUTPUT, ENCODED_IMAGES_SIGNATURE, IMAGES_INPUT,
                                     MASKS_OUTPUT, PANOPTIC_CATEGORY_PNG_OUTPUT, PANOPTIC_INSTANCE_PNG_OUTPUT,
                                     SCORES_OUTPUT, SEMANTIC_MASK_PNG_OUTPUT, STDDEV_OUTPUT)

# Pictures of detections are drawn at least this large (pixels, shorter side).
PICTURE_MIN_SIDE = 512

@dataclasses.dataclass(frozen=True)
class Detection:
    label: int  # label-map id, from 1
    score: float
    box: tuple[float, float, float, float]  # normalized (ymin, xmin, ymax, xmax)
    # Each edge's standard deviation, normalized as `box`, from a model with box uncertainty.
    stddev: Optional[tuple[float, float, float, float]] = None
    # `[M, M]` mask probabilities over `box`, from a mask model.
    mask: Optional[np.ndarray] = dataclasses.field(default=None, compare=False)


def predict_rest(server: str, name: str, image: bytes, timeout: float = 60.0) -> dict[str, np.ndarray]:
    """`server` like `http://127.0.0.1:8501`; returns the outputs of the one image."""
    body = json.dumps({"signature_name": ENCODED_IMAGES_SIGNATURE,
                       "instances": [{"b64": base64.b64encode(image).decode()}]}).encode()
    request = urllib.request.Request(f"{server.rstrip('/')}/v1/models/{name}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        try:
            detail = json.loads(detail)["error"]
        except (ValueError, KeyError, TypeError):
            pass
        raise BoxflowError(f"{server}: HTTP {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise BoxflowError(f"{server}: cannot reach the server: {getattr(error, 'reason', error)}") from None
    return {key: np.asarray(value) for key, value in answer["predictions"][0].items()}


def predict_grpc(address: str, name: str, image: bytes, timeout: float = 60.0) -> dict[str, np.ndarray]:
    """`address` like `127.0.0.1:8500`; returns the outputs of the one image."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = ENCODED_IMAGES_SIGNATURE
    request.inputs[IMAGES_INPUT].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
    with grpc.insecure_channel(address) as channel:
        try:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise BoxflowError(f"{address}: gRPC {error.code().name}: {error.details()}") from None
    return {key: tf.make_ndarray(value)[0] for key, value in response.outputs.items()}


def detections(outputs: dict[str, np.ndarray], min_score: float = 0.0) -> list[Detection]:
    """The valid detections of one image's outputs, best first, at least `min_score`."""
    count = int(outputs[COUNT_OUTPUT])
    stddevs = outputs.get(STDDEV_OUTPUT, [None] * count)
    masks = outputs.get(MASKS_OUTPUT, [None] * count)
    found = [Detection(int(label), float(score), tuple(float(v) for v in box),
                       None if stddev is None else tuple(float(v) for v in stddev),
                       None if mask is None else np.asarray(mask, np.float32))
             for label, score, box, stddev, mask in zip(outputs[CLASSES_OUTPUT][:count],
                                                        outputs[SCORES_OUTPUT][:count],
                                                        outputs[BOXES_OUTPUT][:count], stddevs[:count], masks[:count])]
    return [detection for detection in found if detection.score >= min_score]


def semantic_mask(outputs: dict[str, np.ndarray]) -> Optional[np.ndarray]:
    """One image's uint8 `[H, W]` classes per pixel (0 background, else label-map ids), decoded from
    its `semantic_mask_png` output (a REST answer's `{"b64": …}` or gRPC's bytes); None for a model
    that labels no pixels."""
    return _decoded_png(outputs[SEMANTIC_MASK_PNG_OUTPUT]) if SEMANTIC_MASK_PNG_OUTPUT in outputs else None


def panoptic_masks(outputs: dict[str, np.ndarray]) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """One image's panoptic maps, decoded from its PNG outputs: uint8 `[H, W]` categories (0 void,
    else label-map ids) and uint16 `[H, W]` instances (0 stuff or void, else the detection's row + 1);
    None for a model without them."""
    if PANOPTIC_CATEGORY_PNG_OUTPUT not in outputs:
        return None
    return (_decoded_png(outputs[PANOPTIC_CATEGORY_PNG_OUTPUT]),
            _decoded_png(outputs[PANOPTIC_INSTANCE_PNG_OUTPUT]).astype(np.uint16))


def _decoded_png(value) -> np.ndarray:
    """A one-channel PNG output (a REST answer's `{"b64": …}` or gRPC's bytes) as its array."""
    import io

    from PIL import Image

    value = value.item() if isinstance(value, np.ndarray) else value
    png = base64.b64decode(value["b64"]) if isinstance(value, dict) else value
    with Image.open(io.BytesIO(png)) as opened:
        return np.asarray(opened)


def draw_semantic_mask(image: bytes, mask: np.ndarray, path: str) -> None:
    """Writes `image` with each pixel of `mask` (`semantic_mask`) tinted in its class colour, as a PNG
    at least `PICTURE_MIN_SIDE` pixels on its shorter side."""
    from pipeline.drawing import draw_example

    draw_example(_pixels(image), np.zeros((0, 4)), np.zeros(0, int), [], min_side=PICTURE_MIN_SIDE,
                 class_map=mask).save(path)


def _pixels(image: bytes) -> np.ndarray:
    """`[H, W, 3]` uint8 of encoded `image`."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(image)) as opened:
        return np.asarray(opened.convert("RGB"))


def one_label_per_object(found: list[Detection], iou: float = 0.5) -> list[Detection]:
    """`found` (best first) without the detections that overlap a more confident one at IoU ≥ `iou`,
    whatever their classes. A detector suppresses duplicates class by class, so an object it is
    unsure about keeps one box per class it considers; a person reading a picture wants its most
    likely class once (TF OD API's visualization calls this agnostic mode)."""
    kept: list[Detection] = []
    for detection in found:
        if all(box_overlap.iou(detection.box, other.box) < iou for other in kept):
            kept.append(detection)
    return kept


def draw_detections(image: bytes, found: list[Detection], names: dict[int, str], path: str,
                    panoptic: Optional[tuple[np.ndarray, np.ndarray]] = None) -> None:
    """Writes `image` with `found` drawn (boxes, class names from `names` by label id, scores) as a PNG,
    enlarged to at least `PICTURE_MIN_SIDE` pixels so that the labels can be read. With a panoptic
    model's maps (`panoptic_masks`), its stuff is tinted and each thing filled in its own colour,
    in place of the detections' own masks."""
    from pipeline.drawing import draw_example

    pixels = _pixels(image)
    height, width = pixels.shape[:2]

    def xyxy_pixels(yxyx: tuple[float, float, float, float]) -> list[float]:
        return [yxyx[1] * width, yxyx[0] * height, yxyx[3] * width, yxyx[2] * height]

    boxes = np.array([xyxy_pixels(d.box) for d in found]).reshape(-1, 4)
    stddev = (np.array([xyxy_pixels(d.stddev) for d in found]).reshape(-1, 4)
              if found and all(d.stddev is not None for d in found) else None)
    masks = (np.stack([image_mask(d.mask, box, height, width) for d, box in zip(found, boxes)])
             if found and all(d.mask is not None for d in found) and panoptic is None else None)
    stuff, things = (None, None) if panoptic is None else (np.where(panoptic[1] == 0, panoptic[0], 0), panoptic[1])
    class_names = [names.get(label, f"class {label}") for label in range(1, max([d.label for d in found] + [0]) + 1)]
    draw_example(pixels, boxes, np.array([d.label - 1 for d in found], int), class_names,
                 np.array([d.score for d in found]), min_side=PICTURE_MIN_SIDE, box_stddev=stddev,
                 masks=masks, class_map=stuff, instance_map=things).save(path)


def image_mask(mask: np.ndarray, box: np.ndarray, height: int, width: int) -> np.ndarray:
    """A box-relative mask `[M, M]` (probabilities) over `box` (pixels xyxy) → bool `[height, width]`:
    resized bilinearly onto the box's pixels and thresholded at 0.5 (for drawing; `evaluate` pastes
    in the graph, `keras_models/ops/mask_pasting.py`)."""
    from PIL import Image

    left, top = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    right, bottom = min(width, int(round(box[2]))), min(height, int(round(box[3])))
    full = np.zeros((height, width), bool)
    if right > left and bottom > top:
        resized = Image.fromarray(np.asarray(mask, np.float32), mode="F").resize((right - left, bottom - top),
                                                                                 Image.BILINEAR)
        full[top:bottom, left:right] = np.asarray(resized) >= 0.5
    return full
