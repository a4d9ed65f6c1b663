"""Boxes, masks and class labels drawn on a picture, large enough for a person to read."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from contracts.record_schema import IGNORE_LABEL
from pipeline.record_decoding import CROWD_CLASS

# Distinct, saturated colours; class k uses PALETTE[k % len(PALETTE)].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (0, 255, 0), (0, 96, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 128, 0),
    (128, 0, 255),
)
CROWD_COLOUR = (160, 160, 160)  # a crowd region (CROWD_CLASS): grey, labelled "crowd"
# Label text height as a share of the picture's shorter side, never below MIN_FONT_PIXELS: about
# 21 px on a 512 px picture, as a caption reads on screen.
FONT_FRACTION = 1 / 24
MIN_FONT_PIXELS = 11
# Opacity (0-255) of the band that shows a box's uncertainty: visible, yet the image shows through.
BAND_OPACITY = 90
# Opacity of an object's mask: its shape stands out, its texture stays visible.
MASK_OPACITY = 110
# Opacity of per-pixel class labels: lighter than a mask, so that an object's mask stands out on them.
LABEL_OPACITY = 60


def draw_example(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, class_names: Sequence[str],
                 scores: Optional[np.ndarray] = None, min_side: int = 0,
                 box_stddev: Optional[np.ndarray] = None, masks: Optional[np.ndarray] = None,
                 class_map: Optional[np.ndarray] = None, instance_map: Optional[np.ndarray] = None) -> Image.Image:
    """`image` `[H, W, 3]` 0..255, `boxes` `[N, 4]` pixels xyxy, `classes` `[N]` from 0 → a picture.

    With `scores` `[N]` (detections), each label carries its score and the best are drawn last, on
    top. With `min_side`, a smaller picture is first enlarged so that its shorter side has that many
    pixels: labels stay legible on thumbnails. With `box_stddev` `[N, 4]` (pixels, xyxy), each edge
    gets a translucent band from one standard deviation inside it to one outside. With `masks`
    `[N, H, W]` bool (pixels of `image`), each object's mask is filled in its class colour. With
    `class_map` `[H, W]` (label-map ids from 1, 0 background, `IGNORE_LABEL` void), every labelled
    pixel is tinted, lighter, in its class colour first. With `instance_map` `[H, W]` (0 none, else
    an instance number), each instance is filled in a colour of its own (a panoptic result's things).
    """
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    if class_map is not None:
        picture = _with_class_map(picture, np.asarray(class_map))
    if masks is not None:
        picture = _with_masks(picture, np.asarray(masks, bool), classes)
    if instance_map is not None:
        picture = _with_instances(picture, np.asarray(instance_map))
    scale = max(1.0, min_side / min(picture.size))
    if scale > 1:
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.BILINEAR)
    boxes = np.asarray(boxes, float).reshape(-1, 4) * scale
    if box_stddev is not None:
        picture = _with_bands(picture, boxes, np.asarray(box_stddev, float).reshape(-1, 4) * scale, classes)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(MIN_FONT_PIXELS, round(min(picture.size) * FONT_FRACTION)))
    line_width = max(2, round(min(picture.size) / 200))
    order = np.argsort(scores, kind="stable") if scores is not None else np.arange(len(boxes))
    for index in order.tolist():
        label = int(classes[index])
        colour = CROWD_COLOUR if label == CROWD_CLASS else PALETTE[label % len(PALETTE)]
        left, top, right, bottom = boxes[index].tolist()
        draw.rectangle((left, top, max(left, right - 1), max(top, bottom - 1)), outline=colour, width=line_width)
        name = class_names[label] if 0 <= label < len(class_names) else "crowd" if label == CROWD_CLASS else str(label)
        text = name if scores is None else f"{name} {scores[index]:.2f}"
        _draw_label(draw, text, font, colour, left, top, picture.size)
    return picture


def _with_masks(picture: Image.Image, masks: np.ndarray, classes: np.ndarray) -> Image.Image:
    """`picture` with each `[H, W]` mask of `masks` blended in its class colour."""
    overlay = np.zeros((picture.height, picture.width, 4), np.uint8)
    for mask, label in zip(masks, np.asarray(classes).tolist()):
        colour = CROWD_COLOUR if label == CROWD_CLASS else PALETTE[int(label) % len(PALETTE)]
        overlay[mask] = (*colour, MASK_OPACITY)
    return Image.alpha_composite(picture.convert("RGBA"), Image.fromarray(overlay, "RGBA")).convert("RGB")


def _with_instances(picture: Image.Image, instance_map: np.ndarray) -> Image.Image:
    """`picture` with each instance of `instance_map` blended in its own colour: hues a golden angle
    apart, so that neighbouring numbers differ most."""
    overlay = np.zeros((picture.height, picture.width, 4), np.uint8)
    for number in np.unique(instance_map[instance_map > 0]).tolist():
        hue = (number * 0.618034) % 1.0
        colour = Image.new("HSV", (1, 1), (round(hue * 255), 220, 255)).convert("RGB").getpixel((0, 0))
        overlay[instance_map == number] = (*colour, MASK_OPACITY)
    return Image.alpha_composite(picture.convert("RGBA"), Image.fromarray(overlay, "RGBA")).convert("RGB")


def _with_class_map(picture: Image.Image, class_map: np.ndarray) -> Image.Image:
    """`picture` with each labelled pixel of `class_map` blended, lightly, in its class colour."""
    labelled = (class_map > 0) & (class_map != IGNORE_LABEL)
    colours = np.asarray(PALETTE, np.uint8)[(class_map.astype(np.int64) - 1) % len(PALETTE)]
    overlay = np.zeros((picture.height, picture.width, 4), np.uint8)
    overlay[labelled] = np.concatenate([colours[labelled], np.full((int(labelled.sum()), 1), LABEL_OPACITY,
                                                                   np.uint8)], axis=-1)
    return Image.alpha_composite(picture.convert("RGBA"), Image.fromarray(overlay, "RGBA")).convert("RGB")


def _with_bands(picture: Image.Image, boxes: np.ndarray, stddev: np.ndarray, classes: np.ndarray) -> Image.Image:
    """`picture` with each box's ±1σ band (the ring between the box grown and shrunk by its edges'
    standard deviations) blended in its class colour."""
    overlay = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for box, spread, label in zip(boxes, stddev, np.asarray(classes).tolist()):
        outer = box + spread * np.array([-1, -1, 1, 1])
        inner = box - spread * np.array([-1, -1, 1, 1])
        draw.rectangle(tuple(outer.tolist()), fill=(*PALETTE[int(label) % len(PALETTE)], BAND_OPACITY))
        if inner[2] > inner[0] and inner[3] > inner[1]:
            draw.rectangle(tuple(inner.tolist()), fill=(0, 0, 0, 0))  # replaces the fill: a ring
    return Image.alpha_composite(picture.convert("RGBA"), overlay).convert("RGB")


def _draw_label(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, colour: tuple[int, int, int],
                left: float, top: float, size: tuple[int, int]) -> None:
    """The text on a filled tab in the class colour, above the box, or just inside it at the top edge."""
    text_left, text_top, text_right, text_bottom = draw.textbbox((0, 0), text, font=font)
    padding = max(1, (text_bottom - text_top) // 6)
    tab_width = text_right - text_left + 2 * padding
    tab_height = text_bottom - text_top + 2 * padding
    x = min(max(0.0, left), max(0.0, size[0] - tab_width))
    y = top - tab_height if top >= tab_height else max(0.0, top)
    draw.rectangle((x, y, x + tab_width, y + tab_height), fill=colour)
    # Dark text on light colours, white on dark ones (ITU-R BT.601 luma).
    luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    draw.text((x + padding - text_left, y + padding - text_top), text, font=font,
              fill=(0, 0, 0) if luma > 128 else (255, 255, 255))
