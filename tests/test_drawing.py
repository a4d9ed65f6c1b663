"""Detections drawn so a person can read them: enlarged thumbnails, labels on filled tabs sized to
the picture, the best detection's label on top."""

import numpy as np

from contracts.record_schema import IGNORE_LABEL
from pipeline.drawing import (BAND_OPACITY, CROWD_COLOUR, FONT_FRACTION, LABEL_OPACITY, MASK_OPACITY, PALETTE,
                              draw_example)
from pipeline.record_decoding import CROWD_CLASS

GREY = 90


def grey_image(side: int) -> np.ndarray:
    return np.full((side, side, 3), GREY, np.uint8)


def tab_above(picture: np.ndarray, left: int, top: int) -> np.ndarray:
    """The label tab's rows just above a box's top edge, from its left edge on."""
    tab_height = round(min(picture.shape[:2]) * FONT_FRACTION)
    return picture[top - tab_height:top - 2, left + 2:left + 3 * tab_height]


def test_a_thumbnail_is_enlarged_with_its_boxes_and_labelled_on_a_tab():
    boxes = np.array([[32.0, 48.0, 96.0, 112.0]])  # xyxy on a 128 px image
    picture = np.asarray(draw_example(grey_image(128), boxes, np.array([1]), ["circle", "square"],
                                      np.array([0.9]), min_side=512))
    assert picture.shape == (512, 512, 3)
    colour = PALETTE[1]
    # The box is drawn at 4x: its bottom edge at y = 447, in the class colour.
    assert (picture[446, 140:370] == colour).all(axis=-1).mean() > 0.95
    tab = tab_above(picture, 128, 192)
    # A filled tab in the class colour, with dark text on it (green is light).
    assert (tab == colour).all(axis=-1).mean() > 0.5
    assert (tab.max(axis=-1) < 60).any()
    # The label is not bare text: the tab is as tall as the font, a twenty-fourth of the picture.
    assert (picture[192 - 20:192, 130] == colour).all(axis=-1).mean() > 0.7


def test_the_best_detection_is_labelled_on_top_and_a_top_edge_label_goes_inside():
    boxes = np.array([[8.0, 0.0, 200.0, 200.0], [8.0, 0.0, 200.0, 200.0]])
    picture = np.asarray(draw_example(grey_image(512), boxes, np.array([0, 2]), ["a", "b", "c"],
                                      np.array([0.8, 0.3])))
    # No room above the box: the tab sits inside its top edge, and the 0.8 (class 0) is on top.
    inside = picture[4:18, 12:30]
    assert (inside == PALETTE[0]).all(axis=-1).mean() > 0.5
    assert not (inside == PALETTE[2]).all(axis=-1).any()


def test_the_uncertainty_band_spans_one_stddev_either_side_of_each_edge():
    boxes = np.array([[100.0, 100.0, 300.0, 300.0]])
    stddev = np.array([[4.0, 4.0, 20.0, 4.0]])  # the right edge is the unsure one
    picture = np.asarray(draw_example(grey_image(512), boxes, np.array([0]), ["a"], np.array([0.9]),
                                      box_stddev=stddev)).astype(int)
    tinted = round(GREY + (PALETTE[0][0] - GREY) * BAND_OPACITY / 255)
    row = picture[200]  # through the middle of the box, left to right
    assert row[90, 0] == GREY and row[97, 0] == tinted and row[103, 0] == tinted and row[110, 0] == GREY
    assert row[285, 0] == tinted and row[315, 0] == tinted and row[325, 0] == GREY and row[275, 0] == GREY


def test_a_crowd_region_is_drawn_grey_and_labelled_crowd():
    from PIL import ImageFont

    boxes = np.array([[32.0, 48.0, 96.0, 112.0]])
    with_crowd = np.asarray(draw_example(grey_image(128), boxes, np.array([CROWD_CLASS]), ["circle"], min_side=512))
    assert (with_crowd[446, 140:370] == CROWD_COLOUR).all(axis=-1).mean() > 0.95
    # The tab holds the word "crowd", not the number -2: it is about as wide.
    font = ImageFont.load_default(size=round(512 * FONT_FRACTION))
    tab = (with_crowd[192 - 18:192 - 2, 128:] == CROWD_COLOUR).all(axis=-1).any(axis=0)
    width = int(np.nonzero(tab)[0].max())
    assert font.getlength("crowd") <= width < 1.5 * font.getlength("crowd")


def test_a_mask_is_filled_in_its_class_colour_and_nothing_else():
    ys, xs = np.mgrid[:128, :128]
    disc = (xs - 64) ** 2 + (ys - 64) ** 2 < 30 ** 2
    picture = np.asarray(draw_example(grey_image(128), np.array([[34.0, 34.0, 94.0, 94.0]]), np.array([2]),
                                      ["a", "b", "c"], masks=disc[np.newaxis])).astype(int)
    tinted = [round(GREY + (channel - GREY) * MASK_OPACITY / 255) for channel in PALETTE[2]]
    off_the_outline = disc & (np.abs(xs - 64) < 27) & (np.abs(ys - 64) < 27)
    assert (np.abs(picture[off_the_outline] - tinted) <= 1).all()
    inside_box_outside_disc = ~disc & (xs > 36) & (xs < 92) & (ys > 50) & (ys < 92)
    assert (picture[inside_box_outside_disc] == GREY).all()


def test_class_labels_tint_their_pixels_lightly_and_leave_background_and_void_alone():
    labels = np.zeros((64, 64), np.int32)
    labels[:20], labels[20:40], labels[40:, :32] = 1, 3, IGNORE_LABEL  # 0 (background) in the corner left
    picture = np.asarray(draw_example(grey_image(64), np.zeros((0, 4)), np.zeros(0, int), ["a", "b", "c"],
                                      class_map=labels)).astype(int)
    for label in (1, 3):
        tinted = [round(GREY + (channel - GREY) * LABEL_OPACITY / 255) for channel in PALETTE[label - 1]]
        assert (np.abs(picture[labels == label] - tinted) <= 1).all()
    assert (picture[(labels == 0) | (labels == IGNORE_LABEL)] == GREY).all()


def test_a_served_mask_is_drawn_over_its_box():
    from serving.client import image_mask

    whole = image_mask(np.ones((28, 28)), np.array([10.0, 20.0, 50.0, 60.0]), 80, 100)
    expected = np.zeros((80, 100), bool)
    expected[20:60, 10:50] = True
    np.testing.assert_array_equal(whole, expected)
    left_half = np.zeros((28, 28))
    left_half[:, :14] = 1.0
    drawn = image_mask(left_half, np.array([10.0, 20.0, 50.0, 60.0]), 80, 100)
    assert drawn[20:60, 10:29].all() and not drawn[:, 31:].any() and not drawn[:20].any()
