"""`boxflow synth`: a small detection dataset with exact ground truth.

Each image is a smooth random-colour background with pixel noise and 0..N filled
shapes (circle, square, triangle) of random colour and size; pairs of shapes overlap
by at most a configurable IoU. Each box is the exact pixel extent of its shape's
mask, so the ground truth is known to the pixel. With `masks`, each object also gets its
visible mask (what later shapes leave of it) as a COCO RLE, and its box is that mask's extent;
a shape hidden entirely by later ones is not annotated. With `stuff` (which needs `masks`) the
background is stuff regions (`synth_stuff`) and every pixel's labels are written too: COCO panoptic,
and label PNGs with their label map.
The output is a COCO JSON file (plus a COCO panoptic JSON and its PNGs) and JPEG images, written to
a staging folder and moved into place once complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from beam_jobs.label_pngs import write_png_ids
from boxflow.synth_stuff import (LABEL_MAP_FILE, LABELS_DIR, PANOPTIC_DIR, PANOPTIC_FILE, STUFF, category_map,
                                 panoptic_segments, segment_ids, stuff_background)
from contracts import owned_folder
from contracts.box_overlap import iou
from contracts.errors import BoxflowError
from contracts.label_map import format_label_map

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """What a synthetic scene may contain. Sizes are in pixels of a square image."""

    image_size: int = 256
    max_objects: int = 4
    min_object_size: int = 20
    max_object_size: int = 90
    max_overlap_iou: float = 0.3
    noise_stddev: float = 8.0
    masks: bool = False
    stuff: bool = False

    def __post_init__(self) -> None:
        if self.stuff and not self.masks:
            raise BoxflowError("stuff regions need the shapes' masks too (panoptic labels cover every pixel)")
        if self.image_size < 32:
            raise BoxflowError(f"--image-size must be at least 32 pixels, got {self.image_size}")
        if self.max_objects < 0:
            raise BoxflowError(f"--max-objects must be 0 or more, got {self.max_objects}")
        if not 1 <= self.min_object_size <= self.max_object_size < self.image_size:
            raise BoxflowError(
                f"object sizes must satisfy 1 <= min ({self.min_object_size}) <= max "
                f"({self.max_object_size}) < image size ({self.image_size})"
            )

    @classmethod
    def for_image_size(cls, image_size: int) -> "SynthConfig":
        """Object sizes scaled from the 20-90 px used at 256 px."""
        return cls(
            image_size=image_size,
            min_object_size=max(4, round(image_size * 20 / 256)),
            max_object_size=max(8, round(image_size * 90 / 256)),
        )


@dataclasses.dataclass(frozen=True)
class SynthObject:
    """One drawn shape: `box` is its exact mask extent `(xmin, ymin, xmax, ymax)` in pixels;
    `visible`, with `SynthConfig.masks`, its `[S, S]` bool mask of the pixels it shows."""

    shape: str
    box: tuple[int, int, int, int]
    area: int
    visible: Optional[np.ndarray] = None


@dataclasses.dataclass(frozen=True)
class SynthScene:
    """A rendered scene: its `[S, S, 3]` uint8 `image`, the shapes drawn on it, and with
    `SynthConfig.stuff` the int64 `[S, S]` STUFF index of each background pixel."""

    image: np.ndarray
    objects: list[SynthObject]
    stuff: Optional[np.ndarray] = None


def render_scene(rng: np.random.Generator, config: SynthConfig) -> SynthScene:
    """Renders one scene."""
    size = config.image_size
    stuff = None
    if config.stuff:
        image, stuff = stuff_background(rng, size, config.noise_stddev)
    else:
        image = _background(rng, size, config.noise_stddev)
    objects: list[SynthObject] = []
    owners = np.zeros((size, size), np.int16)  # which object shows at each pixel: index + 1, 0 for none
    for _ in range(rng.integers(0, config.max_objects + 1)):
        placed = _place_shape(rng, config, [obj.box for obj in objects])
        if placed is None:
            continue
        shape, (left, top), mask = placed
        ys, xs = np.nonzero(mask)
        box = (left + int(xs.min()), top + int(ys.min()), left + int(xs.max()) + 1, top + int(ys.max()) + 1)
        region = image[top:top + mask.shape[0], left:left + mask.shape[1]]
        region[mask] = _contrasting_colour(rng, region[mask].mean(axis=0))
        owners[top:top + mask.shape[0], left:left + mask.shape[1]][mask] = len(objects) + 1
        objects.append(SynthObject(shape=shape, box=box, area=int(mask.sum())))
    return SynthScene(image, _visible_objects(objects, owners) if config.masks else objects, stuff)


def _visible_objects(objects: list[SynthObject], owners: np.ndarray) -> list[SynthObject]:
    """Each object as far as it shows: its visible mask, that mask's extent and area; objects
    hidden entirely are left out."""
    visible_objects = []
    for index, drawn in enumerate(objects):
        visible = owners == index + 1
        ys, xs = np.nonzero(visible)
        if len(ys):
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            visible_objects.append(SynthObject(drawn.shape, box, int(visible.sum()), visible))
    return visible_objects


def _background(rng: np.random.Generator, size: int, noise_stddev: float) -> np.ndarray:
    corners = rng.uniform(0, 255, size=(3, 3, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(corners).resize((size, size), Image.BILINEAR), np.int16)
    # Uniform integer noise with the requested standard deviation: much cheaper to draw than Gaussian.
    amplitude = int(round(noise_stddev * 3**0.5))
    noisy = smooth + rng.integers(-amplitude, amplitude + 1, size=smooth.shape, dtype=np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _place_shape(
    rng: np.random.Generator, config: SynthConfig, existing: Sequence[tuple[int, int, int, int]]
) -> tuple[str, tuple[int, int], np.ndarray] | None:
    """A random shape, its top-left corner and its `[side, side]` mask, overlapping no existing
    box by more than the IoU limit."""
    for _ in range(50):
        shape = SHAPES[rng.integers(len(SHAPES))]
        side = int(rng.integers(config.min_object_size, config.max_object_size + 1))
        left = int(rng.integers(0, config.image_size - side + 1))
        top = int(rng.integers(0, config.image_size - side + 1))
        candidate = (left, top, left + side, top + side)
        if all(iou(candidate, box) <= config.max_overlap_iou for box in existing):
            return shape, (left, top), _shape_mask(shape, side)
    return None


def _shape_mask(shape: str, side: int) -> np.ndarray:
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    last = side - 1  # PIL's ellipse and rectangle include their right and bottom edges
    if shape == "circle":
        draw.ellipse((0, 0, last, last), fill=255)
    elif shape == "square":
        draw.rectangle((0, 0, last, last), fill=255)
    else:
        draw.polygon([(last / 2, 0), (0, last), (last, last)], fill=255)
    return np.asarray(canvas) > 0


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour at least 80 (Euclidean, 0..255 RGB) from the background it covers."""
    for _ in range(20):
        colour = rng.uniform(0, 255, size=3)
        if np.linalg.norm(colour - background) >= 80:
            return colour.astype(np.uint8)
    return (255 - background).astype(np.uint8)


def write_synth_dataset(out_dir: str, num_images: int, config: SynthConfig, seed: int) -> dict:
    """Writes `num_images` scenes as JPEGs plus a COCO JSON file into `out_dir`.

    Returns the COCO dictionary written. Deterministic for a given `seed` and config.
    """
    if num_images < 1:
        raise BoxflowError(f"--images must be at least 1, got {num_images}")
    owned_folder.check_replaceable(out_dir, "--out", "synth")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".synth-", dir=parent)
    try:
        coco, panoptic = _render_all(staging, num_images, config, seed)
        with open(os.path.join(staging, ANNOTATIONS_FILE), "w") as f:
            json.dump(coco, f)
        if panoptic is not None:
            with open(os.path.join(staging, PANOPTIC_FILE), "w") as f:
                json.dump(panoptic, f)
        owned_folder.mark(staging, "synth")
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return coco


def _rle(mask: np.ndarray) -> dict:
    """COCO's compressed RLE of a bool mask, as JSON holds it."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": [int(v) for v in rle["size"]]}


def _render_all(staging: str, num_images: int, config: SynthConfig, seed: int) -> tuple[dict, Optional[dict]]:
    """Writes the images (and panoptic and label PNGs, and the label map); returns the COCO instances
    dict and, with stuff, the COCO panoptic one."""
    os.makedirs(os.path.join(staging, IMAGES_DIR))
    if config.stuff:
        os.makedirs(os.path.join(staging, PANOPTIC_DIR))
        os.makedirs(os.path.join(staging, LABELS_DIR))
        with open(os.path.join(staging, LABEL_MAP_FILE), "w") as f:
            f.write(format_label_map((*SHAPES, *STUFF)))
    images, annotations, panoptic_annotations = [], [], []
    for index in range(num_images):
        scene = render_scene(np.random.default_rng([seed, index]), config)
        file_name = f"synth_{index:06d}.jpg"
        Image.fromarray(scene.image).save(os.path.join(staging, IMAGES_DIR, file_name), quality=95)
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "width": config.image_size, "height": config.image_size})
        for obj in scene.objects:
            xmin, ymin, xmax, ymax = obj.box
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": SHAPES.index(obj.shape) + 1,
                "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                "area": obj.area,
                "iscrowd": 0,
                **({"segmentation": _rle(obj.visible)} if obj.visible is not None else {}),
            })
        if scene.stuff is not None:
            panoptic_annotations.append(_panoptic_annotation(staging, scene, image_id, file_name,
                                                             np.random.default_rng([seed, index, 1])))
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)]
    coco = {
        "info": {"description": f"boxflow synth, seed {seed}", "version": "1"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    if not config.stuff:
        return coco, None
    stuff_categories = [{"id": len(SHAPES) + k + 1, "name": name, "supercategory": "stuff", "isthing": 0}
                        for k, name in enumerate(STUFF)]
    panoptic = {**coco, "annotations": panoptic_annotations,
                "categories": [{**entry, "isthing": 1} for entry in categories] + stuff_categories}
    return coco, panoptic


def _panoptic_annotation(staging: str, scene: SynthScene, image_id: int, file_name: str,
                         rng: np.random.Generator) -> dict:
    things = [(obj.visible, SHAPES.index(obj.shape) + 1, False) for obj in scene.objects]
    id_map, segments = panoptic_segments(scene.stuff, things, segment_ids(rng, len(things) + len(STUFF)),
                                         first_stuff_category=len(SHAPES) + 1)
    png_name = file_name.replace(".jpg", ".png")
    with open(os.path.join(staging, PANOPTIC_DIR, png_name), "wb") as f:
        f.write(write_png_ids(id_map))
    Image.fromarray(category_map(id_map, segments)).save(os.path.join(staging, LABELS_DIR, png_name))
    return {"image_id": image_id, "file_name": png_name, "segments_info": segments}
