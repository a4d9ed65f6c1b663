"""`boxflow synth --stuff`: scenes of stuff regions (sky, ground, water) under the shapes, and their
labels twice: COCO panoptic (segments, things and stuff) and semantic-only label PNGs (a class per
pixel, named by a label map), the two forms users bring.

A scene's background is two or three horizontal regions with wavy borders, sky always on top, each
region drawn with its kind's texture: sky a vertical gradient, ground blotches, water horizontal
ripples. Colours are drawn per image from overlapping ranges, so the texture tells the kinds apart
as much as the colour. The labels are exact: every pixel is a shape or one region.
"""

from __future__ import annotations

import numpy as np

STUFF: tuple[str, ...] = ("sky", "ground", "water")
# Region orders, top to bottom, as indices of STUFF.
LAYOUTS: tuple[tuple[int, ...], ...] = ((0, 1), (0, 2), (0, 2, 1), (0, 1, 2))
PANOPTIC_FILE = "panoptic.json"
PANOPTIC_DIR = "panoptic"  # the PNGs, in the folder named like the JSON (COCO's layout)
LABELS_DIR = "labels"  # one grayscale PNG per image: each pixel's category id (`prepare --format label_pngs`)
LABEL_MAP_FILE = "label_map.pbtxt"  # names the label PNGs' ids: the shapes, then STUFF


def stuff_background(rng: np.random.Generator, size: int, noise_stddev: float) -> tuple[np.ndarray, np.ndarray]:
    """A `[S, S, 3]` uint8 background of stuff regions and its int64 `[S, S]` labels (indices of STUFF)."""
    layout = LAYOUTS[rng.integers(len(LAYOUTS))]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    # Region k starts below border k-1; borders are sine waves, each well below the one above.
    region = np.zeros((size, size), np.int64)
    top = rng.uniform(0.25, 0.45) * size
    for border in range(len(layout) - 1):
        height = top + border * rng.uniform(0.2, 0.3) * size
        amplitude = rng.uniform(0.01, 0.05) * size
        wavelength = rng.uniform(0.4, 1.2) * size
        wave = height + amplitude * np.sin(2 * np.pi * xs / wavelength + rng.uniform(0, 2 * np.pi))
        region += ys >= wave
    labels = np.array(layout)[region]
    image = np.zeros((size, size, 3))
    for kind in range(len(STUFF)):
        texture = _TEXTURES[STUFF[kind]](rng, ys / size, xs / size)
        image = np.where((labels == kind)[..., None], texture, image)
    amplitude = noise_stddev * 3**0.5
    image += rng.uniform(-amplitude, amplitude, size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), labels


def _sky(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    zenith = np.array([rng.uniform(40, 120), rng.uniform(90, 170), rng.uniform(170, 250)])
    horizon = np.minimum(zenith + rng.uniform(40, 90), 255)
    return zenith + (horizon - zenith) * np.minimum(ys, 1.0)[..., None]


def _ground(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    base = np.array([rng.uniform(60, 150), rng.uniform(80, 170), rng.uniform(20, 80)])
    size = ys.shape[0]
    # Blotches: coarse noise blown up by repetition, about 12 cells across.
    cells = rng.uniform(-45, 45, size=(13, 13))
    cell = np.minimum((np.stack([ys, xs]) * 12).astype(np.int64), 12)
    blotches = cells[cell[0], cell[1]][..., None] * np.array([1.0, 0.8, 0.5])
    return base + blotches + np.zeros((size, size, 3))


def _water(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    base = np.array([rng.uniform(20, 80), rng.uniform(70, 150), rng.uniform(120, 200)])
    period = rng.uniform(0.03, 0.06)
    ripples = 35 * np.sin(2 * np.pi * (ys + 0.01 * np.sin(2 * np.pi * xs * 3)) / period)
    return base + ripples[..., None] * np.array([0.6, 0.8, 1.0])


_TEXTURES = {"sky": _sky, "ground": _ground, "water": _water}


def segment_ids(rng: np.random.Generator, count: int) -> list[int]:
    """`count` distinct panoptic segment ids in 1..2²⁴-1, spread over all three colour channels."""
    return [int(v) for v in rng.choice(np.arange(1, 2**24, 4099), size=count, replace=False)]


def panoptic_segments(stuff: np.ndarray, things: list[tuple[np.ndarray, int, bool]], ids: list[int],
                      first_stuff_category: int) -> tuple[np.ndarray, list[dict]]:
    """An image's panoptic labels: its int64 `[S, S]` segment-id map and COCO `segments_info`.

    `stuff` holds each pixel's STUFF index; `things` the visible masks (bool `[S, S]`) with their
    category ids and crowd flags, drawn over it. `ids` gives one segment id per thing, then per stuff
    kind that shows; stuff kind k is category `first_stuff_category + k`.
    """
    id_map = np.zeros(stuff.shape, np.int64)
    covered = np.zeros(stuff.shape, bool)
    regions = [(mask, category, crowd) for mask, category, crowd in things]
    for kind in range(len(STUFF)):
        regions.append((stuff == kind, first_stuff_category + kind, False))
    segments, next_id = [], iter(ids)
    for mask, category, crowd in regions:
        mask = mask & ~covered
        if not mask.any():
            continue
        segment_id = next(next_id)
        id_map[mask] = segment_id
        covered |= mask
        ys, xs = np.nonzero(mask)
        segments.append({"id": segment_id, "category_id": category, "iscrowd": int(crowd), "area": int(mask.sum()),
                         "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                  int(ys.max() - ys.min() + 1)]})
    return id_map, segments


def category_map(id_map: np.ndarray, segments: list[dict]) -> np.ndarray:
    """uint8 `[S, S]`: each pixel's category id, from its segment id (0 where no segment is)."""
    categories = np.zeros(id_map.shape, np.uint8)
    for segment in segments:
        categories[id_map == segment["id"]] = segment["category_id"]
    return categories
