"""`--anchors auto`: anchors fitted to the boxes `prepare` counted give every box an anchor at
IoU ≥ 0.5, where RetinaNet's default anchors miss small and elongated ones."""

import numpy as np
import pytest

from beam_jobs.source_records import ValidatedImage, ValidatedObject
from beam_jobs.statistics import DatasetStatisticsFn
from boxflow.errors import BoxflowError
from keras_models.ops.anchor_fitting import fit_anchors, histogram_quantile
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


def matched_share(boxes: np.ndarray, config: AnchorConfig) -> float:
    """The share of boxes whose best anchor reaches IoU 0.5 (a positive in training)."""
    iou = np.asarray(pairwise_iou(boxes.astype(np.float32), image_anchors(IMAGE_SIZE, config)))
    return float(np.mean(iou.max(axis=1) >= 0.5))


@pytest.mark.parametrize("sides, aspect, default_share", [
    ((16, 48), (2.0, 3.0), 0.73),  # small and wide: RetinaNet's anchors miss a quarter of them
    ((20, 60), (0.7, 1.4), 0.89),
    ((30, 120), (0.3, 0.5), 1.0),  # large ones: the default already fits, and the fit keeps up
])
def test_fitted_anchors_match_nearly_every_box(sides, aspect, default_share):
    rng = np.random.default_rng(0)
    # Statistics of the source images (twice the model's input), then boxes as the model sees them.
    source = random_boxes(rng, 400, tuple(2 * s for s in sides), aspect, 2 * IMAGE_SIZE)
    fitted = fit_anchors(statistics_of(source, 2 * IMAGE_SIZE), IMAGE_SIZE, "dataset_info.json")
    model_boxes = source / 2
    assert matched_share(model_boxes, fitted) >= 0.95
    assert matched_share(model_boxes, AnchorConfig()) == pytest.approx(default_share, abs=0.01)


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
    with pytest.raises(BoxflowError, match="--anchors auto: data/x/dataset_info.json has no box_relative_size"):
        fit_anchors({"box_width_pixels": {"count": 3}}, IMAGE_SIZE, "data/x/dataset_info.json")
