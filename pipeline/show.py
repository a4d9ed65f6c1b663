"""`boxflow show`: a grid of examples with their boxes and class names, as a person checks them."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from boxflow.errors import BoxflowError
from pipeline.augment.config import AugmentationConfig
from pipeline.dataset import make_dataset

# Distinct, saturated colours; class k uses PALETTE[k % len(PALETTE)].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (0, 255, 0), (0, 96, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 128, 0),
    (128, 0, 255),
)
GAP = 4


def draw_example(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, class_names: Sequence[str],
                 scores: Optional[np.ndarray] = None) -> Image.Image:
    """`image` `[H, W, 3]` 0..255, `boxes` `[N, 4]` pixels xyxy, `classes` `[N]` from 0 → a picture.

    With `scores` `[N]` (detections), each label carries its score.
    """
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    score_texts = [f" {score:.2f}" for score in scores.tolist()] if scores is not None else [""] * len(boxes)
    for box, label, score_text in zip(boxes.tolist(), classes.tolist(), score_texts):
        colour = PALETTE[label % len(PALETTE)]
        left, top, right, bottom = box
        draw.rectangle((left, top, max(left, right - 1), max(top, bottom - 1)), outline=colour, width=2)
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        draw.text((left + 3, top + 2), name + score_text, fill=colour)
    return picture


def grid(pictures: Sequence[Image.Image], columns: Optional[int] = None) -> Image.Image:
    """Tiles equally sized pictures, `GAP` pixels apart, on a dark background."""
    columns = columns or math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / columns)
    width, height = pictures[0].size
    sheet = Image.new("RGB", (columns * (width + GAP) - GAP, rows * (height + GAP) - GAP), (24, 24, 24))
    for index, picture in enumerate(pictures):
        row, column = divmod(index, columns)
        sheet.paste(picture, (column * (width + GAP), row * (height + GAP)))
    return sheet


def show_dataset(data_dir: str, split: str, count: int, image_size: int, class_names: Sequence[str],
                 augmentation: Optional[AugmentationConfig] = None, seed: int = 0) -> Image.Image:
    """The first `count` examples of a split (augmented when `augmentation` is given) as one grid."""
    dataset = make_dataset(data_dir, split, image_size, batch_size=1, training=augmentation is not None, seed=seed,
                           deterministic=True, augmentation=augmentation)
    pictures = []
    for images, targets in dataset.take(count):
        pictures.append(draw_example(images[0].numpy(), targets["boxes"][0].numpy(),
                                     targets["classes"][0].numpy(), class_names))
    if not pictures:
        raise BoxflowError(f"{data_dir}: split '{split}' has no examples to show")
    return grid(pictures)
