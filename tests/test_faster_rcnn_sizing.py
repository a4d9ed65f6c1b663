"""Faster R-CNN's sizes fitted to the run: FPN's at 800 px, scaled by the area below, with floors
that follow the objects per image; a size set by the user is kept."""

import pytest

from keras_models.models.faster_rcnn_sizing import FPN_SIZES, SIZED_FIELDS, fit_faster_rcnn
from keras_models.training.train_settings import TrainSettings, train_settings


@pytest.mark.parametrize("image_size", [800, 1024])
def test_fpn_numbers_from_800_px_up(image_size):
    assert fit_faster_rcnn(image_size, 7.3).values() == FPN_SIZES


def test_a_small_input_scales_the_counts_by_the_area_and_the_head_by_the_side():
    sizes = fit_faster_rcnn(512, 2.3)  # area (512/800)² = 0.4096
    assert sizes.values() == dict(training_pre_nms=820, training_proposals=820, inference_pre_nms=410,
                                  inference_proposals=410, rpn_sample_size=256, rois_per_image=210,
                                  box_head_width=640)
    assert "(512/800)² = 0.41" in sizes.reason and "2.3 boxes per image" in sizes.reason


def test_the_floors_follow_the_objects_per_image():
    few, crowded = fit_faster_rcnn(256, 2.3), fit_faster_rcnn(256, 11.2)
    assert (few.training_pre_nms, few.inference_proposals, few.rois_per_image) == (205, 150, 64)
    # 12 objects: 50 proposals and 16 ROIs each, above the area's share.
    assert (crowded.training_pre_nms, crowded.inference_proposals, crowded.rois_per_image) == (600, 600, 192)
    assert few.box_head_width == crowded.box_head_width == 320
    tiny = fit_faster_rcnn(128, 0.0)  # no boxes at all still keeps the minimums
    assert (tiny.training_proposals, tiny.rois_per_image, tiny.box_head_width) == (100, 64, 256)
    assert fit_faster_rcnn(768, 400.0).values() == {**FPN_SIZES, "box_head_width": 960}  # capped at FPN's counts


def test_the_settings_fill_only_what_the_user_left_unset():
    settings = train_settings("d", "r", model="faster_rcnn", image_size=256, rois_per_image=100, box_head_width=1024)
    sized, fit = settings.sized_to(2.3)
    config = sized.model_config
    assert (config.rois_per_image, config.box_head_width) == (100, 1024)
    assert (config.training_pre_nms, config.inference_proposals) == (fit.training_pre_nms, 150)
    assert all(getattr(config, name) is not None for name in SIZED_FIELDS)
    every = {name: 64 for name in SIZED_FIELDS}
    assert train_settings("d", "r", model="faster_rcnn", **every).sized_to(2.3)[1] is None
    retinanet = TrainSettings(data_dir="d", run_dir="r")
    assert retinanet.sized_to(2.3) == (retinanet, None)
