"""`boxflow show`: a grid of examples with their boxes and class names, as a person checks them."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from contracts.errors import BoxflowError
from pipeline.augment.config import AugmentationConfig
from pipeline.dataset import make_dataset, read_dataset_info
from pipeline.drawing import draw_example

GAP = 4


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
    """The first `count` examples of a split (augmented when `augmentation` is given) as one grid,
    their instance masks filled in and their per-pixel labels tinted when the split has them."""
    split_info = read_dataset_info(data_dir)["splits"].get(split, {})
    with_masks, with_semantic = split_info.get("masks", 0) > 0, split_info.get("semantic_images", 0) > 0
    dataset = make_dataset(data_dir, split, image_size, batch_size=1, training=augmentation is not None, seed=seed,
                           deterministic=True, augmentation=augmentation, with_masks=with_masks,
                           with_semantic=with_semantic)
    pictures = []
    for images, targets in dataset.take(count):
        boxes = targets["boxes"][0].numpy()
        masks = None
        if with_masks:
            instances = targets["instance_map"][0].numpy()
            masks = instances[np.newaxis] == np.arange(1, len(boxes) + 1)[:, np.newaxis, np.newaxis]
        class_map = targets["class_map"][0].numpy() if with_semantic else None
        pictures.append(draw_example(images[0].numpy(), boxes, targets["classes"][0].numpy(), class_names,
                                     masks=masks, class_map=class_map))
    if not pictures:
        raise BoxflowError(f"{data_dir}: split '{split}' has no examples to show")
    return grid(pictures)
