"""The per-pixel maps an example may carry besides its image, and what fills a map where no source
pixel lands (padding, a window past the image's edge): an instance map's 0 (no object), a class
map's `IGNORE_LABEL` (no label, which no loss counts). Every geometric op moves each map present
exactly as it moves the pixels, by nearest neighbour; colour ops leave them unchanged."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from contracts.record_schema import IGNORE_LABEL

INSTANCE_MAP = "instance_map"  # int32 [H, W]: i + 1 where box i shows, 0 elsewhere
CLASS_MAP = "class_map"  # int32 [H, W]: label-map id per pixel, 0 background, IGNORE_LABEL void
FILL = {INSTANCE_MAP: 0, CLASS_MAP: IGNORE_LABEL}


def maps_of(example: dict) -> tuple[str, ...]:
    """The per-pixel maps `example` carries."""
    return tuple(key for key in FILL if key in example)


def with_maps_moved(example: dict, result: dict, move: Callable[[tf.Tensor, int], tf.Tensor]) -> dict:
    """`result` with each of `example`'s maps moved by `move(map, fill)` (int32 `[H, W]` → `[H', W']`)."""
    return {**result, **{key: move(example[key], FILL[key]) for key in maps_of(example)}}
