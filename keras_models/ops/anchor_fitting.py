"""`train --anchors auto`: anchor sizes and aspect ratios fitted to the boxes `prepare` counted.

`prepare` writes, per dataset, the distribution of each box's side relative to its image's
longest side (`box_relative_size`, which letterboxing keeps) and of its aspect ratio. With
scales 1, 2^(1/3), 2^(2/3) on every level, anchor sides run without gaps from
`size_multiplier · 2^min_level` to `size_multiplier · 2^max_level · 2^(2/3)` (input pixels).

Sizes move only as far as the boxes need. Smaller anchors put objects on finer pyramid levels,
whose features are shallower, and that costs more than IoU coverage gains: on the synthetic
shapes (20–90 px at 256) after 4 epochs, multiplier 4 reached AP50 0.26, 3 reached 0.22 and 2,
where every box has an anchor at IoU ≥ 0.5, only 0.02 (measured here). So the layout's multiplier
stays while the middle 90% of box sides (5th to 95th percentile) lie within a factor
`REACH` of the anchor range, where a box's best anchor still makes a sound target. Beyond it,
the range moves just enough to bring the 5th (or 95th) percentile back within that factor,
never below two strides (`MIN_MULTIPLIER`). The aspect ratios are the median and a spread
around it that covers the 15th to 85th percentiles.
"""

from __future__ import annotations

import dataclasses
import math

from contracts.errors import SettingError
from keras_models.ops.anchors import AnchorConfig

ANCHOR_CHOICES = ("default", "auto")  # `--anchors`: RetinaNet's layout, or fitted here
MIN_SPREAD = 2 ** 0.5  # the three ratios stay distinct even where every box has one shape
# Anchor sides of at least two strides: anchors sit a stride apart, and a box half a stride off
# an anchor's centre loses IoU 0.5 to it once the two are much smaller than that (a box smaller
# than about 16 px needs a finer level than P3, not a smaller anchor).
MIN_MULTIPLIER = 2.0
# How far (a factor in side) a box may lie outside the anchor range before the range moves.
REACH = 2.0


def histogram_quantile(distribution: dict, fraction: float) -> float:
    """The `fraction` quantile of a `dataset_info.json` distribution (`count`, `min`, `max`,
    `histogram` of `{"from", "to", "count"}` bins), log-linear within its bin."""
    target = fraction * distribution["count"]
    seen = 0
    for bin_ in distribution["histogram"]:
        if seen + bin_["count"] >= target:
            low = distribution["min"] if bin_["from"] == "-inf" else max(bin_["from"], distribution["min"])
            high = distribution["max"] if bin_["to"] == "inf" else min(bin_["to"], distribution["max"])
            share = (target - seen) / bin_["count"]
            return math.exp(math.log(low) + share * (math.log(high) - math.log(low)))
        seen += bin_["count"]
    return distribution["max"]


def fit_anchors(statistics: dict, image_size: int, source: str,
                layout: AnchorConfig = AnchorConfig()) -> AnchorConfig:
    """`layout` with `size_multiplier` and `aspect_ratios` (height / width) fitted to `statistics`
    (dataset_info.json's) for a model input of `image_size` pixels; `source` names the file in errors."""
    sizes, aspects = statistics.get("box_relative_size", {}), statistics.get("box_aspect_ratio", {})
    if not sizes.get("count") or not aspects.get("count"):
        raise SettingError("anchors", f"auto: {source} has no box_relative_size statistics (no boxes, or prepared "
                           "by an older boxflow); run boxflow prepare again")
    small, large = (histogram_quantile(sizes, q) * image_size for q in (0.05, 0.95))
    multiplier = layout.size_multiplier
    smallest_anchor = multiplier * 2 ** layout.min_level
    largest_anchor = multiplier * 2 ** layout.max_level * max(layout.scales)
    if small * REACH < smallest_anchor:
        multiplier = max(small * REACH / 2 ** layout.min_level, MIN_MULTIPLIER)
    elif large > largest_anchor * REACH:
        multiplier = large / REACH / (2 ** layout.max_level * max(layout.scales))
    # Statistics count width / height; AnchorConfig takes height / width.
    low, middle, high = (1 / histogram_quantile(aspects, q) for q in (0.85, 0.5, 0.15))
    spread = max(math.sqrt(high / low), MIN_SPREAD)
    ratios = (middle / spread, middle, middle * spread)
    return dataclasses.replace(layout, size_multiplier=round(multiplier, 3),
                               aspect_ratios=tuple(round(ratio, 3) for ratio in ratios))
