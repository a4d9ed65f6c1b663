"""Mask R-CNN's sizes fitted to the run: Faster R-CNN's, and the foreground ROIs per image its mask
head learns from (all of them at 800 px and above, as He et al.; two per object below, at most
the foreground slots); a value set by the user is kept."""

import pytest

from keras_models.models.faster_rcnn_sizing import SIZED_FIELDS, fit_faster_rcnn
from keras_models.models.mask_rcnn_sizing import MASK_ROIS_PER_OBJECT, fit_mask_rois
from keras_models.training.train_settings import train_settings


@pytest.mark.parametrize("image_size", [800, 1024])
def test_every_foreground_slot_from_800_px_up(image_size):
    assert fit_mask_rois(image_size, 128, 7.3)[0] == 128


def test_below_800_px_two_per_object_at_most_the_slots():
    assert MASK_ROIS_PER_OBJECT == 2
    rois, reason = fit_mask_rois(256, 16, 2.3)  # 3 objects
    assert rois == 6 and "2 per object for 2.3 boxes per image" in reason and "16 foreground slots" in reason
    assert fit_mask_rois(256, 48, 11.2)[0] == 24
    assert fit_mask_rois(256, 16, 11.2)[0] == 16
    assert fit_mask_rois(128, 16, 0.0)[0] == 2  # no boxes at all still learns from some


def test_the_run_fits_the_mask_rois_to_its_foreground_slots_and_records_why():
    sized, fit = train_settings("d", "r", model="mask_rcnn", image_size=256).sized_to(2.3)
    box_stages = fit_faster_rcnn(256, 2.3)
    assert sized.model_config.rois_per_image == box_stages.rois_per_image == 64  # 16 foreground slots
    assert sized.model_config.mask_rois_per_image == 6
    assert fit.values() == {**box_stages.values(), "mask_rois_per_image": 6}
    assert fit.reason == f"{box_stages.reason}; 2 per object for 2.3 boxes per image, at most the 16 foreground slots"
    assert fit.describe().startswith(box_stages.describe())
    assert "the mask head learns from 6 foreground ROIs per image" in fit.describe()
    # Fewer ROIs set by the user: fewer foreground slots to take from.
    few = train_settings("d", "r", model="mask_rcnn", image_size=256, rois_per_image=16).sized_to(11.2)[0]
    assert few.model_config.mask_rois_per_image == 4


def test_a_size_the_user_set_is_kept_and_not_reported_as_fitted():
    sized, fit = train_settings("d", "r", model="mask_rcnn", image_size=256, mask_rois_per_image=5).sized_to(2.3)
    assert sized.model_config.mask_rois_per_image == 5
    assert fit.values() == fit_faster_rcnn(256, 2.3).values()
    every = {name: 64 for name in SIZED_FIELDS}
    only_masks, fit = train_settings("d", "r", model="mask_rcnn", **every).sized_to(2.3)
    assert only_masks.model_config.mask_rois_per_image == 6 and fit.values() == {"mask_rois_per_image": 6}
    assert fit.describe() == ("the mask head learns from 6 foreground ROIs per image (2 per object for 2.3 boxes "
                              "per image, at most the 16 foreground slots)")
    assert train_settings("d", "r", model="mask_rcnn", mask_rois_per_image=3, **every).sized_to(2.3)[1] is None
