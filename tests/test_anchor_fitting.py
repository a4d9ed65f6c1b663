"""`--anchors auto`: anchors that move only as far as the boxes need. Boxes RetinaNet's default
anchors reach keep their sizes; small ones get smaller anchors, elongated ones fitted ratios."""

import numpy as np
import pytest

from beam_jobs.source_records import ValidatedImage, ValidatedObject
from beam_jobs.statistics import DatasetStatisticsFn
from contracts.errors import BoxflowError
from keras_models.ops.anchor_fitting import MIN_MULTIPLIER, fit_anchors, histogram_quantile
from keras_models.ops.anchors import AnchorConfig, image_anchors
from keras_models.ops.box_format import pairwise_iou

IMAGE_SIZE = 256


def statistics_of(boxes: np.ndarray, image_side: int) -> dict:
    """dataset_info.json's statistics of square images of `image_side` px holding `boxes` (pixels xyxy)."""
    fn = DatasetStatisticsFn()
    accumulator = fn.create_accumulator()
    for box in boxes:
        obj = ValidatedObject(1, "thing", tuple(map(float, box)), False, False, False, 1.0)
        accumulator = fn.add_input(accumulator, ValidatedImage("id", "f.jpg", b"", "jpeg", image_side, image_side,
                                                              (obj,), "train"))
    return fn.extract_output(accumulator)


def random_boxes(rng, count: int, sides: tuple[float, float], aspect: tuple[float, float], image_side: int):
    """Boxes of side sqrt(w·h) in `sides` and width/height in `aspect` (log-uniform), inside the image."""
    side = np.exp(rng.uniform(*np.log(sides), count))
    ratio = np.exp(rng.uniform(*np.log(aspect), count))
    width, height = side * np.sqrt(ratio), side / np.sqrt(ratio)
    x = rng.uniform(0, image_side - width)
    y = rng.uniform(0, image_side - height)
    return np.stack([x, y, x + width, y + height], axis=1)


def matched_share(boxes: np.ndarray, config: AnchorConfig, iou: float = 0.5) -> float:
    """The share of boxes whose best anchor reaches `iou` (0.5: a positive in training)."""
    best = np.asarray(pairwise_iou(boxes.astype(np.float32), image_anchors(IMAGE_SIZE, config))).max(axis=1)
    return float(np.mean(best >= iou))


def fitted_to(sides: tuple[float, float], aspect: tuple[float, float]) -> tuple[AnchorConfig, np.ndarray]:
    """Anchors fitted to the statistics of source images twice the model's input, and the boxes
    as the model sees them."""
    source = random_boxes(np.random.default_rng(0), 400, tuple(2 * s for s in sides), aspect, 2 * IMAGE_SIZE)
    return fit_anchors(statistics_of(source, 2 * IMAGE_SIZE), IMAGE_SIZE, "dataset_info.json"), source / 2


def test_boxes_the_default_anchors_reach_keep_their_sizes():
    # The synthetic shapes' sizes: smaller anchors would cover every box at IoU 0.5, yet trained
    # far worse (AP50 0.02 against 0.26 after 4 epochs, see anchor_fitting's docstring).
    fitted, _ = fitted_to((20, 90), (0.8, 1.25))
    assert fitted.size_multiplier == AnchorConfig().size_multiplier


def test_small_boxes_get_anchors_within_reach():
    fitted, boxes = fitted_to((8, 24), (0.7, 1.4))
    assert fitted.size_multiplier == pytest.approx(2.12, abs=0.05)  # the 5th percentile, 8.5 px, times REACH
    # A box within a factor 2 in side of a concentric square anchor overlaps it at IoU ≥ 0.25.
    assert matched_share(boxes, fitted, 0.25) >= 0.95
    assert matched_share(boxes, AnchorConfig(), 0.25) == pytest.approx(0.41, abs=0.01)
    tiny, _ = fitted_to((4, 8), (0.7, 1.4))
    assert tiny.size_multiplier == MIN_MULTIPLIER  # never below two strides


@pytest.mark.parametrize("aspect, default_share", [
    ((3.0, 5.0), 0.77),  # wide: RetinaNet's ratios (to 2:1) miss a quarter of them
    ((0.2, 0.33), 0.77),  # tall
])
def test_elongated_boxes_get_fitted_aspect_ratios(aspect, default_share):
    fitted, boxes = fitted_to((24, 72), aspect)
    assert matched_share(boxes, fitted) >= 0.99
    assert matched_share(boxes, AnchorConfig()) == pytest.approx(default_share, abs=0.02)


def test_aspect_ratios_are_height_over_width_around_the_median():
    rng = np.random.default_rng(1)
    wide = random_boxes(rng, 300, (20, 30), (2.9, 3.1), IMAGE_SIZE)  # width / height about 3
    fitted = fit_anchors(statistics_of(wide, IMAGE_SIZE), IMAGE_SIZE, "dataset_info.json")
    assert fitted.aspect_ratios[1] == pytest.approx(1 / 3, rel=0.1)
    assert fitted.aspect_ratios[2] / fitted.aspect_ratios[0] == pytest.approx(2.0, rel=1e-3)  # the least spread


def test_histogram_quantile_interpolates_within_a_bin():
    distribution = {"count": 4, "min": 1.0, "max": 8.0,
                    "histogram": [{"from": 1.0, "to": 2.0, "count": 2}, {"from": 4.0, "to": 8.0, "count": 2}]}
    assert histogram_quantile(distribution, 0.25) == pytest.approx(2 ** 0.5)
    assert histogram_quantile(distribution, 0.75) == pytest.approx(4 * 2 ** 0.5)
    assert histogram_quantile(distribution, 1.0) == pytest.approx(8.0)


def test_a_dataset_without_the_statistics_is_refused():
    with pytest.raises(BoxflowError, match="anchors auto: data/x/dataset_info.json has no box_relative_size"):
        fit_anchors({"box_width_pixels": {"count": 3}}, IMAGE_SIZE, "data/x/dataset_info.json")


def test_faster_rcnns_single_scale_layout_is_fitted_from_its_own_levels():
    # Faster R-CNN's RPN anchors: P2-P6, one scale, 8x the stride (32-512 px). Boxes of 6-20 px lie
    # below the smallest anchor's reach (32 / REACH = 16), so the range moves down from P2's stride.
    layout = AnchorConfig(min_level=2, max_level=6, size_multiplier=8.0, scales=(1.0,))
    source = random_boxes(np.random.default_rng(1), 400, (12, 40), (0.8, 1.25), 2 * IMAGE_SIZE)
    fitted = fit_anchors(statistics_of(source, 2 * IMAGE_SIZE), IMAGE_SIZE, "dataset_info.json", layout)
    assert (fitted.min_level, fitted.max_level, fitted.scales) == (2, 6, (1.0,))
    fifth_percentile = np.percentile(np.sqrt(np.prod(source[:, 2:] - source[:, :2], axis=1)) / 2, 5)
    assert fitted.size_multiplier * 4 == pytest.approx(2 * fifth_percentile, rel=0.15)
    assert fitted.size_multiplier < 8.0
