"""Dataset statistics as a Beam `CombineFn`: counts per split and class, box and image size distributions."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import apache_beam as beam

from beam_jobs.source_records import ValidatedImage

# Log-spaced histogram edges: pixel sizes 1..8192 in powers of 2, aspect ratios
# 1/16..16 in powers of sqrt(2).
SIZE_EDGES = tuple(float(2**k) for k in range(14))
ASPECT_EDGES = tuple(2 ** (k / 2) for k in range(-8, 9))
# Box side relative to the image's longest side, sqrt(w·h) / max(W, H): what letterboxing to any
# input size keeps, so `train --anchors auto` reads anchor sizes off it. 1/512..1 in quarter octaves.
RELATIVE_SIZE_EDGES = tuple(2 ** (k / 4) for k in range(-36, 1))
FILL_EDGES = tuple(k / 10 for k in range(11))  # the share of its box a mask covers


@dataclasses.dataclass
class Distribution:
    """Count, mean, min, max and a histogram over fixed edges (mergeable)."""

    edges: tuple[float, ...]
    counts: list[int] = dataclasses.field(default_factory=list)
    total: float = 0.0
    count: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.edges) + 1)

    def add(self, value: float) -> None:
        self.counts[sum(value >= edge for edge in self.edges)] += 1
        self.total += value
        self.count += 1
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def merge(self, other: "Distribution") -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.total += other.total
        self.count += other.count
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    def to_json_dict(self) -> dict:
        if not self.count:
            return {"count": 0}
        lower = ("-inf",) + self.edges
        upper = self.edges + ("inf",)
        return {
            "count": self.count,
            "mean": self.total / self.count,
            "min": self.minimum,
            "max": self.maximum,
            "histogram": [{"from": lo, "to": hi, "count": n} for lo, hi, n in zip(lower, upper, self.counts) if n],
        }


@dataclasses.dataclass
class DatasetStatistics:
    images: Counter = dataclasses.field(default_factory=Counter)          # split → images
    boxes: Counter = dataclasses.field(default_factory=Counter)           # split → boxes
    class_boxes: Counter = dataclasses.field(default_factory=Counter)     # (split, class) → boxes
    images_without_boxes: Counter = dataclasses.field(default_factory=Counter)  # split → images
    most_boxes: Counter = dataclasses.field(default_factory=Counter)      # split → the most boxes in one image
    augmented_images: Counter = dataclasses.field(default_factory=Counter)  # split → offline-augmented copies
    augmented_boxes: Counter = dataclasses.field(default_factory=Counter)   # split → boxes in those copies
    image_sizes: Counter = dataclasses.field(default_factory=Counter)     # "WxH" → images
    masks: Counter = dataclasses.field(default_factory=Counter)           # split → objects with an instance mask
    semantic_images: Counter = dataclasses.field(default_factory=Counter)  # split → images with per-pixel labels
    label_pixels: Counter = dataclasses.field(default_factory=Counter)    # label id → pixels (every split and copy)
    mask_box_fill: Distribution = dataclasses.field(default_factory=lambda: Distribution(FILL_EDGES))
    box_width: Distribution = dataclasses.field(default_factory=lambda: Distribution(SIZE_EDGES))
    box_height: Distribution = dataclasses.field(default_factory=lambda: Distribution(SIZE_EDGES))
    box_aspect_ratio: Distribution = dataclasses.field(default_factory=lambda: Distribution(ASPECT_EDGES))
    box_relative_size: Distribution = dataclasses.field(default_factory=lambda: Distribution(RELATIVE_SIZE_EDGES))
    image_width: Distribution = dataclasses.field(default_factory=lambda: Distribution(SIZE_EDGES))
    image_height: Distribution = dataclasses.field(default_factory=lambda: Distribution(SIZE_EDGES))

    def add(self, image: ValidatedImage) -> None:
        self.images[image.split] += 1
        self.boxes[image.split] += len(image.objects)
        self.images_without_boxes[image.split] += not image.objects
        self.most_boxes[image.split] = max(self.most_boxes[image.split], len(image.objects))
        self.augmented_images[image.split] += image.copy_index > 0
        self.augmented_boxes[image.split] += len(image.objects) if image.copy_index > 0 else 0
        self.image_sizes[f"{image.width}x{image.height}"] += 1
        self.image_width.add(image.width)
        self.image_height.add(image.height)
        self.semantic_images[image.split] += image.semantic_png is not None
        self.label_pixels.update(dict(image.semantic_pixels))
        for obj in image.objects:
            self.class_boxes[(image.split, obj.class_name)] += 1
            width, height = obj.box[2] - obj.box[0], obj.box[3] - obj.box[1]
            self.box_width.add(width)
            self.box_height.add(height)
            self.box_aspect_ratio.add(width / height)
            self.box_relative_size.add(math.sqrt(width * height) / max(image.width, image.height))
            if obj.mask is not None:
                self.masks[image.split] += 1
                self.mask_box_fill.add(min(1.0, obj.mask_pixels / max(width * height, 1.0)))

    def merge(self, other: "DatasetStatistics") -> None:
        for name in ("images", "boxes", "class_boxes", "images_without_boxes", "augmented_images", "augmented_boxes",
                     "image_sizes", "masks", "semantic_images", "label_pixels"):
            getattr(self, name).update(getattr(other, name))
        for split, most in other.most_boxes.items():
            self.most_boxes[split] = max(self.most_boxes[split], most)
        for name in ("box_width", "box_height", "box_aspect_ratio", "box_relative_size", "image_width",
                     "image_height", "mask_box_fill"):
            getattr(self, name).merge(getattr(other, name))

    def to_json_dict(self) -> dict:
        splits = {}
        for split in sorted(self.images):
            per_class = {name: n for (s, name), n in sorted(self.class_boxes.items()) if s == split}
            splits[split] = {
                "images": self.images[split],
                "boxes": self.boxes[split],
                "images_without_boxes": self.images_without_boxes[split],
                "max_boxes_per_image": self.most_boxes[split],
                "augmented_images": self.augmented_images[split],
                "augmented_boxes": self.augmented_boxes[split],
                "boxes_per_class": per_class,
                "masks": self.masks[split],
                "semantic_images": self.semantic_images[split],
            }
        optional = {"mask_box_fill": self.mask_box_fill.to_json_dict()} if self.mask_box_fill.count else {}
        if self.label_pixels:
            optional["pixels_per_label"] = {str(label): n for label, n in sorted(self.label_pixels.items())}
        return {
            **optional,
            "splits": splits,
            "box_width_pixels": self.box_width.to_json_dict(),
            "box_height_pixels": self.box_height.to_json_dict(),
            "box_aspect_ratio": self.box_aspect_ratio.to_json_dict(),
            "box_relative_size": self.box_relative_size.to_json_dict(),
            "image_width_pixels": self.image_width.to_json_dict(),
            "image_height_pixels": self.image_height.to_json_dict(),
            "most_common_image_sizes": dict(self.image_sizes.most_common(20)),
        }


class DatasetStatisticsFn(beam.CombineFn):
    """Combines `ValidatedImage`s into a JSON-ready statistics dictionary."""

    def create_accumulator(self) -> DatasetStatistics:
        return DatasetStatistics()

    def add_input(self, accumulator: DatasetStatistics, image: ValidatedImage) -> DatasetStatistics:
        accumulator.add(image)
        return accumulator

    def merge_accumulators(self, accumulators) -> DatasetStatistics:
        merged = DatasetStatistics()
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator: DatasetStatistics) -> dict:
        return accumulator.to_json_dict()
