import numpy as np
import pytest

from keras_models.ops.anchors import AnchorConfig, image_anchors, level_anchors, level_shapes


def test_counts_per_level_and_in_total():
    config = AnchorConfig()
    assert config.anchors_per_location == 9
    assert level_shapes(256, config) == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    assert image_anchors(256, config).shape == (9 * (32 * 32 + 16 * 16 + 8 * 8 + 4 * 4 + 2 * 2), 4)
    assert level_shapes(100, config)[0] == (13, 13)  # ceil(100 / 8), like a stride-2 conv with SAME padding


def test_positions_sizes_and_order_on_one_level():
    config = AnchorConfig()
    anchors = level_anchors(64, 3, config).numpy().reshape(8, 8, 9, 4)
    centers = (anchors[..., :2] + anchors[..., 2:]) / 2
    # Location (row 2, column 5) is centred at ((5 + 0.5) * 8, (2 + 0.5) * 8) for every anchor.
    np.testing.assert_allclose(centers[2, 5], np.tile([[44.0, 20.0]], (9, 1)), atol=1e-4)
    widths, heights = anchors[0, 0, :, 2] - anchors[0, 0, :, 0], anchors[0, 0, :, 3] - anchors[0, 0, :, 1]
    np.testing.assert_allclose(np.sqrt(widths * heights), np.repeat([32, 32 * 2 ** (1 / 3), 32 * 2 ** (2 / 3)], 3),
                               rtol=1e-5)
    np.testing.assert_allclose((heights / widths)[:3], [0.5, 1.0, 2.0], rtol=1e-5)


@pytest.mark.parametrize("multiplier, level, side", [(4.0, 3, 32.0), (2.0, 3, 16.0), (4.0, 7, 512.0)])
def test_base_anchor_side_follows_the_multiplier(multiplier, level, side):
    config = AnchorConfig(size_multiplier=multiplier, scales=(1.0,), aspect_ratios=(1.0,))
    anchor = level_anchors(1024, level, config).numpy()[0]
    assert anchor[2] - anchor[0] == pytest.approx(side)
