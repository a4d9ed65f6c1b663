"""`--model`: the settings each detector reads reach it, the others refuse them, the anchor layout
is the model's own, and a run's config.json rebuilds the detector it trained (older runs, which
name no model, as RetinaNet)."""

import numpy as np
import pytest

from contracts.errors import BoxflowError
from keras_models.models.faster_rcnn import FasterRCNN
from keras_models.models.retinanet import RetinaNet
from keras_models.ops.anchors import AnchorConfig
from keras_models.models.registry import rebuild_model
from keras_models.training.model_factory import build_model
from keras_models.training.train_settings import TrainSettings, train_settings


def settings(**values) -> TrainSettings:
    return train_settings("data", "run", image_size=128, **values)


def anchor_layout(chosen: TrainSettings) -> AnchorConfig:
    return chosen.model_config.anchor_layout()


def test_each_model_has_its_own_anchor_layout_and_the_multiplier_setting_sizes_it():
    assert anchor_layout(settings()) == AnchorConfig()
    two_stage = anchor_layout(settings(model="faster_rcnn"))
    assert (two_stage.min_level, two_stage.max_level, two_stage.size_multiplier, two_stage.scales) == (2, 6, 8.0, (1.0,))
    assert anchor_layout(settings(model="faster_rcnn", anchor_size_multiplier=5.0)).size_multiplier == 5.0
    assert anchor_layout(settings(anchor_size_multiplier=2.0)).size_multiplier == 2.0
    single = anchor_layout(settings(model="faster_rcnn", pyramid=False, anchor_size_multiplier=4.0))
    assert (single.min_level, single.max_level, single.size_multiplier, single.scales) == (4, 4, 4.0, (1.0, 2.0, 4.0))
    assert single.anchors_per_location == 9


def test_the_two_stage_settings_reach_faster_rcnn_and_rebuild_it():
    chosen = settings(model="faster_rcnn", fpn_channels=16, box_head="4conv1fc", box_head_width=32,
                      training_pre_nms=300, training_proposals=200, inference_pre_nms=150, inference_proposals=60,
                      rpn_sample_size=64, rois_per_image=48, foreground_fraction=0.5)
    model = build_model(chosen, 3, "batch", anchor_layout(chosen))
    assert isinstance(model, FasterRCNN)
    config = model.get_config()
    for name in ("box_head", "box_head_width", "training_pre_nms", "training_proposals", "inference_pre_nms",
                 "inference_proposals", "rpn_sample_size", "rois_per_image", "foreground_fraction", "fpn_channels"):
        assert config[name] == getattr(chosen.model_config, name), name
    rebuilt = rebuild_model({"settings": {"model": "faster_rcnn"}, "model": config})
    assert isinstance(rebuilt, FasterRCNN) and rebuilt.get_config() == config


def test_faster_rcnns_samples_follow_the_seed():
    """--seed reaches the RPN's and the second stage's draws: another seed samples other anchors."""
    import tensorflow as tf

    from keras_models.ops.sampling import rpn_targets

    def sampled(seed: int) -> np.ndarray:
        chosen = settings(model="faster_rcnn", fpn_channels=16, box_head_width=32, seed=seed)
        model = build_model(chosen, 3, "batch", anchor_layout(chosen))
        assert model.get_config()["sampling_seed"] == seed
        image_seed = model._sampling_seeds(tf.constant(1))[0]
        objectness, _ = rpn_targets(model.anchors, tf.constant([[20.0, 20, 60, 60]]), tf.constant([0]), image_seed)
        return objectness.numpy()

    first = sampled(0)
    assert np.array_equal(sampled(0), first) and not np.array_equal(sampled(1), first)


def test_a_run_that_names_no_model_is_a_retinanet():
    model = build_model(settings(head_depth=1, head_channels=16, fpn_channels=16), 2, "batch", AnchorConfig())
    assert isinstance(rebuild_model({"settings": {}, "model": model.get_config()}), RetinaNet)


def test_a_run_of_a_model_this_version_does_not_build_is_refused():
    with pytest.raises(BoxflowError, match="config.json: the run trained a 'yolo_v8', which this boxflow does not"):
        rebuild_model({"settings": {"model": "yolo_v8"}, "model": {}})


@pytest.mark.parametrize("values, message", [
    (dict(box_head="4conv1fc"), "box_head set, but only --model faster_rcnn or mask_rcnn or panoptic_fpn reads it; this run trains retinanet"),
    (dict(rois_per_image=64, training_proposals=500),
     "training_proposals, rois_per_image set, but only --model faster_rcnn or mask_rcnn or panoptic_fpn reads them"),
    (dict(model="faster_rcnn", head_depth=3), "head_depth set, but only --model retinanet reads it"),
    (dict(pyramid=False), "pyramid set, but only --model faster_rcnn or mask_rcnn or panoptic_fpn reads it; this run trains retinanet"),
    (dict(model="faster_rcnn", mask_head_channels=64),
     "mask_head_channels set, but only --model mask_rcnn or panoptic_fpn reads it; this run trains faster_rcnn"),
    (dict(variance_voting=True), "variance_voting weighs boxes by their predicted variance: it needs "
                                 "box_uncertainty laplace or normal"),
    (dict(model="faster_rcnn", head_norm="group"), "head_norm set, but only --model retinanet reads it"),
    (dict(model="faster_rcnn", box_head="3fc"), "box_head must be one of 2fc, 4conv1fc, got '3fc'"),
    (dict(model="faster_rcnn", foreground_fraction=0.0), "foreground_fraction must be in (0, 1], got 0.0"),
    (dict(model="faster_rcnn", rois_per_image=0), "rois_per_image must be at least 1, got 0"),
    (dict(anchor_size_multiplier=-1.0), "anchor_size_multiplier must be positive, got -1.0"),
    (dict(model="yolo_v8"), "model must be one of retinanet, faster_rcnn, mask_rcnn, semantic_fpn, panoptic_fpn, "
                           "got 'yolo_v8'"),
    (dict(model="mask_rcnn", semantic_loss_weight=1.0), "semantic_loss_weight set, but only --model panoptic_fpn"),
    (dict(model="panoptic_fpn", stuff_min_area=2.0), "stuff_min_area must lie in [0, 1], got 2.0"),
    (dict(model="semantic_fpn", score_threshold=0.3), "score_threshold set, but only --model"),
])
def test_settings_another_model_reads_are_refused(values, message):
    with pytest.raises(BoxflowError) as error:
        settings(**values)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("model, sizes", [("retinanet", dict(head_depth=1, head_channels=16)),
                                          ("faster_rcnn", dict(box_head_width=32, rois_per_image=32))])
def test_box_uncertainty_and_variance_voting_reach_either_detector_and_rebuild_it(model, sizes):
    chosen = settings(model=model, box_uncertainty="normal", variance_voting=True, fpn_channels=16, **sizes)
    detector = build_model(chosen, 2, "batch", anchor_layout(chosen))
    assert detector.box_uncertainty == "normal" and detector.nms.variance_voting
    rebuilt = rebuild_model({"settings": {"model": model}, "model": detector.get_config()})
    assert rebuilt.box_uncertainty == "normal" and rebuilt.nms.variance_voting
