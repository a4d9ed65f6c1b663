"""The layers Faster R-CNN adds to the shared ones: backbones from C2, the pyramid down to P2 with
FPN's pooled P6, the RPN head in the anchors' order, and the box head."""

import keras
import numpy as np
import pytest

from contracts.errors import BoxflowError
from keras_models.layers.backbones import backbone_features, build_backbone
from keras_models.layers.feature_pyramid import POOL_TOP, FeaturePyramid
from keras_models.layers.two_stage_heads import BoxHead, RegionProposalHead
from keras_models.ops.anchors import AnchorConfig, level_anchors


@pytest.mark.parametrize("name", ["tiny", "mobilenet_v2"])
def test_backbones_give_the_levels_asked_for(name):
    images = keras.ops.zeros((1, 128, 128, 3))
    from_c2 = [feature.shape[1] for feature in build_backbone(name, 128, min_level=2)(images)]
    from_c3 = [feature.shape[1] for feature in build_backbone(name, 128)(images)]
    only_c4 = build_backbone(name, 128, min_level=4, max_level=4)
    assert from_c2 == [32, 16, 8, 4] and from_c3 == [16, 8, 4]
    assert [feature.shape[1] for feature in backbone_features(only_c4, images)] == [8]
    # Ending at C4 builds nothing above it.
    assert only_c4.count_params() < 0.7 * build_backbone(name, 128, min_level=4).count_params()
    with pytest.raises(BoxflowError, match="levels within C2-C5, not C1-C5"):
        build_backbone(name, 128, min_level=1)
    with pytest.raises(BoxflowError, match="not C4-C3"):
        build_backbone(name, 128, min_level=4, max_level=3)


def test_the_pyramid_from_p2_pools_p6_from_p5(rng):
    features = [keras.ops.convert_to_tensor(rng.normal(size=(2, 64 // 2 ** index, 64 // 2 ** index, 8)), "float32")
                for index in range(4)]  # C2-C5 of a 256 px image
    pyramid = FeaturePyramid(16, min_level=2, top=POOL_TOP)
    levels = pyramid(features)
    assert [level.shape[1] for level in levels] == [64, 32, 16, 8, 4] and list(pyramid.levels) == [2, 3, 4, 5, 6]
    np.testing.assert_array_equal(levels[4], np.asarray(levels[3])[:, ::2, ::2])


def test_retinanets_pyramid_keeps_its_layers_and_their_names():
    pyramid = FeaturePyramid(16, name="fpn")
    levels = pyramid([keras.ops.zeros((1, 16 // 2 ** index, 16 // 2 ** index, 8)) for index in range(3)])
    assert [level.shape[1] for level in levels] == [16, 8, 4, 2, 1]
    # Earlier runs' weight files are read by these paths.
    assert {weight.path.split("/")[-2] for weight in pyramid.weights} == {
        "lateral_c3", "lateral_c4", "lateral_c5", "output_p3", "output_p4", "output_p5", "p6", "p7"}


def test_the_rpn_head_lists_each_levels_outputs_in_the_anchors_order():
    config = AnchorConfig(min_level=2, max_level=6, size_multiplier=8, scales=(1.0,))
    head = RegionProposalHead(config.anchors_per_location, 16)
    levels = [keras.ops.zeros((2, 128 // 2 ** level, 128 // 2 ** level, 16)) for level in config.levels]
    logits, deltas = head(levels)
    counts = [int(level_anchors(128, level, config).shape[0]) for level in config.levels]
    assert [tuple(level.shape) for level in logits] == [(2, count) for count in counts]
    assert [tuple(level.shape) for level in deltas] == [(2, count, 4) for count in counts]


@pytest.mark.parametrize("kind", ["2fc", "4conv1fc"])
def test_the_box_head_scores_background_last_and_boxes_per_class(kind):
    logits, deltas = BoxHead(3, kind, width=32, conv_channels=8)(keras.ops.zeros((2, 5, 7, 7, 16)))
    assert tuple(logits.shape) == (2, 5, 4) and tuple(deltas.shape) == (2, 5, 3, 4)
    with pytest.raises(BoxflowError, match="box_head must be one of 2fc, 4conv1fc"):
        BoxHead(3, "3fc")
