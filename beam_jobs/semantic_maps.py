"""Pure semantic-label work for `prepare`: a source's label PNG and its segments → the record's PNG
of label ids (0 background, `IGNORE_LABEL` void), with a rejection for each segment it cannot use.

A thing's segment is also an object of the image, validated and reported as one (its box, its
mask); here it only lends its class to its pixels. A stuff segment exists only here, so its
problems are reported here, at `Level.SEGMENT`.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from beam_jobs.instance_masks import png_bytes
from beam_jobs.label_pngs import UnreadableLabels, read_png_ids
from beam_jobs.source_records import Level, Reason, Rejection, SourceSemantic
from contracts.record_schema import IGNORE_LABEL


class SemanticProblem(ValueError):
    """Labels that cannot be used at all, so the image is rejected, with its reason code."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclasses.dataclass(frozen=True)
class SemanticLabels:
    """The record's labels: `png` (one channel, a label id per pixel), its pixels per label id
    (`(label, count)`, ascending), and the segments rejected on the way."""

    png: bytes
    pixels: tuple[tuple[int, int], ...]
    rejections: tuple[Rejection, ...]


def semantic_labels(semantic: SourceSemantic, width: int, height: int,
                    class_ids: Mapping[str, int]) -> SemanticLabels:
    """Draws `semantic` as label ids of `class_ids` (name → id from 1, at most 254 classes) for an
    image `width` x `height`. Raises `SemanticProblem` for an unreadable PNG or one of another size."""
    try:
        ids = read_png_ids(semantic.png, semantic.rgb_ids)
    except UnreadableLabels as error:
        raise SemanticProblem(Reason.SEGMENTATION_UNREADABLE, f"{semantic.where}: {error}") from None
    if ids.shape != (height, width):
        raise SemanticProblem(Reason.SEGMENTATION_SIZE_MISMATCH, f"{semantic.where} is {ids.shape[1]}x{ids.shape[0]}, "
                                                                 f"the image {width}x{height}")
    present, counts = np.unique(ids, return_counts=True)
    pixels_of = dict(zip(present.tolist(), counts.tolist()))
    label_of = {segment_id: 0 for segment_id in semantic.background_ids}
    rejections = []
    for segment in semantic.segments:
        where = f"{semantic.where}#segment {segment.id}"
        present = segment.id in pixels_of
        # A thing is reported as an object; a palette's class only where its pixels are.
        reported_here = not segment.is_thing or (semantic.palette and present)
        if segment.class_name not in class_ids:
            if reported_here:
                rejections.append(Rejection(where, Reason.CLASS_UNKNOWN, f"class '{segment.class_name}' is not in the "
                                            "class list; its pixels are void", Level.SEGMENT))
        elif present:
            label_of[segment.id] = class_ids[segment.class_name]
        elif reported_here and not semantic.palette:
            rejections.append(Rejection(where, Reason.SEGMENT_MISSING, f"'{segment.class_name}': no pixel of "
                                        f"the PNG holds its id {segment.id}", Level.SEGMENT))
    known = {segment.id for segment in semantic.segments} | set(label_of) | set(semantic.void_ids)
    for segment_id in sorted(set(pixels_of) - known):
        rejections.append(Rejection(f"{semantic.where}#id {segment_id}", Reason.SEGMENT_UNLISTED,
                                    f"{pixels_of[segment_id]} pixels hold id {segment_id}, which no segment lists; "
                                    "they are void", Level.SEGMENT))
    return SemanticLabels(*encoded_labels(_looked_up(ids, label_of)), tuple(rejections))


def encoded_labels(labels: np.ndarray) -> tuple[bytes, tuple[tuple[int, int], ...]]:
    """uint8 `[H, W]` label ids → the record's PNG and its pixels per label id (ascending)."""
    counts = np.bincount(labels.ravel(), minlength=IGNORE_LABEL + 1)
    return png_bytes(labels), tuple((int(label), int(counts[label])) for label in np.flatnonzero(counts))


def _looked_up(ids: np.ndarray, label_of: Mapping[int, int]) -> np.ndarray:
    """uint8 labels of `ids` (int64 `[H, W]`) by `label_of`, `IGNORE_LABEL` for any id it lacks."""
    labels = np.full(ids.shape, IGNORE_LABEL, np.uint8)
    if not label_of:
        return labels
    keys = np.array(sorted(label_of), np.int64)
    values = np.array([label_of[key] for key in keys.tolist()], np.uint8)
    positions = np.clip(np.searchsorted(keys, ids), 0, len(keys) - 1)
    found = keys[positions] == ids
    labels[found] = values[positions[found]]
    return labels
