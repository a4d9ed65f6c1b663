"""RetinaNet with a probabilistic box head (`box_uncertainty`): it predicts each edge's location and
log-scale, learns from the negative log-likelihood, and its detections carry each edge's standard
deviation in pixels through NMS."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from contracts.errors import BoxflowError
from keras_models.models.retinanet import RetinaNet
from keras_models.models.retinanet_config import RetinaNetConfig
from keras_models.ops.box_coding import decode_edges, edge_scales_to_pixels
from keras_models.ops.box_uncertainty import LAPLACE, NORMAL
from pipeline.dataset import make_dataset
from tests.builders import prepared_synth

SMALL = dict(fpn_channels=16, head_depth=1, head_channels=16, anchor_size_multiplier=2.0)


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory):
    return str(prepared_synth(tmp_path_factory.mktemp("uncertain"), 32, 128, (16, 48), seed=7, val_fraction=0.25))


@pytest.mark.parametrize("kind", [LAPLACE, NORMAL])
def test_it_trains_and_detections_carry_the_stddev_of_their_own_anchor(shapes_data, kind):
    keras.utils.set_random_seed(0)
    model = RetinaNet(RetinaNetConfig(num_classes=3, image_size=128, box_uncertainty=kind, **SMALL))
    images = next(iter(make_dataset(shapes_data, "val", 128, 4, training=False, deterministic=True)))[0]
    outputs = model(images)
    assert outputs["box_predictions"].shape == (images.shape[0], model.anchors.shape[0], 8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(make_dataset(shapes_data, "train", 128, 8, training=True, seed=0), epochs=3,
                        verbose=0).history
    assert np.all(np.isfinite(history["box_loss"])) and history["box_loss"][-1] < history["box_loss"][0]

    model.nms = type(model.nms)(score_threshold=0.0, max_detections=20, max_detections_per_class=20)
    detections = model.detect(images)
    predictions = tf.cast(model(images)["box_predictions"], tf.float32)
    # Each detection is one anchor's decoded box: find it, and its stddev must be that anchor's.
    boxes = tf.clip_by_value(decode_edges(predictions[..., :4], model.anchors), 0.0, 128.0).numpy()
    scale = np.exp(np.clip(predictions[..., 4:].numpy(), -7, 7)) * (np.sqrt(2) if kind == LAPLACE else 1.0)
    stddev = edge_scales_to_pixels(tf.constant(scale), model.anchors).numpy()
    for image in range(images.shape[0]):
        for row in range(int(detections["num_detections"][image])):
            anchor = np.argmin(np.abs(boxes[image] - detections["boxes"][image, row].numpy()).sum(axis=1))
            np.testing.assert_allclose(detections["box_stddev"][image, row], stddev[image, anchor], rtol=1e-5)
    assert np.all(detections["box_stddev"].numpy()[0, :int(detections["num_detections"][0])] > 0)
    assert np.all(detections["box_stddev"].numpy()[0, int(detections["num_detections"][0]):] == 0)


def test_the_config_rebuilds_the_probabilistic_head_and_unknown_kinds_are_refused():
    model = RetinaNet(RetinaNetConfig(num_classes=2, image_size=128, box_uncertainty=NORMAL, **SMALL))
    rebuilt = RetinaNet.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (1, 128, 128, 3)).astype(np.float32)
    np.testing.assert_allclose(rebuilt(images)["box_predictions"], model(images)["box_predictions"], atol=1e-6)
    with pytest.raises(BoxflowError, match="box_uncertainty must be one of none, laplace, normal, got 'cauchy'"):
        RetinaNet(RetinaNetConfig(num_classes=2, image_size=128, box_uncertainty="cauchy"))
