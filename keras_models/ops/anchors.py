"""Multi-level grid anchors (RetinaNet style): P3–P7, 3 scales x 3 aspect ratios per location."""

from __future__ import annotations

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class AnchorConfig:
    """Anchor layout. On level `l` (stride `2**l` pixels) the base anchor side is
    `size_multiplier * 2**l`; each location gets every scale x aspect ratio combination.

    RetinaNet's 32–512 px anchors are `size_multiplier=4` on P3–P7; objects much smaller
    than the P3 base never reach IoU 0.5 with any anchor, so small inputs want a
    smaller multiplier.
    """

    min_level: int = 3
    max_level: int = 7
    size_multiplier: float = 4.0
    scales: tuple[float, ...] = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width

    @property
    def anchors_per_location(self) -> int:
        return len(self.scales) * len(self.aspect_ratios)

    @property
    def levels(self) -> range:
        return range(self.min_level, self.max_level + 1)


def level_shapes(image_size: int, config: AnchorConfig) -> list[tuple[int, int]]:
    """Feature-map `(height, width)` per level for a square `image_size` input (ceil division)."""
    return [(-(-image_size // 2 ** level),) * 2 for level in config.levels]


def level_anchors(image_size: int, level: int, config: AnchorConfig) -> tf.Tensor:
    """`[H_l * W_l * A, 4]` anchors of one level, pixels XYXY, row-major over locations,
    then scales x aspect ratios (the order the heads' outputs are flattened in)."""
    stride = 2 ** level
    cells = -(-image_size // stride)
    centers = (tf.range(cells, dtype=tf.float32) + 0.5) * stride
    center_y, center_x = tf.meshgrid(centers, centers, indexing="ij")
    sizes = []
    for scale in config.scales:
        for ratio in config.aspect_ratios:
            side = config.size_multiplier * stride * scale
            sizes.append((side / ratio ** 0.5, side * ratio ** 0.5))  # (width, height), area side²
    widths, heights = tf.constant([s[0] for s in sizes]), tf.constant([s[1] for s in sizes])
    cx = tf.reshape(center_x, [-1, 1])
    cy = tf.reshape(center_y, [-1, 1])
    boxes = tf.stack([cx - widths / 2, cy - heights / 2, cx + widths / 2, cy + heights / 2], axis=-1)
    return tf.reshape(boxes, [-1, 4])


def image_anchors(image_size: int, config: AnchorConfig) -> tf.Tensor:
    """All levels' anchors concatenated, P3 first: `[sum_l H_l * W_l * A, 4]`."""
    return tf.concat([level_anchors(image_size, level, config) for level in config.levels], axis=0)
