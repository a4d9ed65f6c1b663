"""RetinaNet: output shapes, config round trip, ragged and padded targets agree, and the loss falls."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from contracts.errors import BoxflowError
from keras_models.ops.anchors import AnchorConfig, image_anchors
from keras_models.models.retinanet import RetinaNet
from keras_models.models.retinanet_config import RetinaNetConfig
from pipeline.dataset import make_dataset
from tests.builders import prepared_synth


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory):
    return str(prepared_synth(tmp_path_factory.mktemp("retinanet"), 48, 128, (16, 48), seed=5, num_shards=2,
                              val_fraction=0.0))


def test_outputs_cover_every_anchor():
    model = RetinaNet(RetinaNetConfig(num_classes=3, image_size=128))
    outputs = model(np.zeros((2, 128, 128, 3), np.float32))
    anchors = image_anchors(128, AnchorConfig()).shape[0]
    assert outputs["box_predictions"].shape == (2, anchors, 4) and outputs["logits"].shape == (2, anchors, 3)
    # The class prior: an untrained model scores about 0.01 everywhere.
    assert float(tf.reduce_mean(tf.sigmoid(outputs["logits"]))) == pytest.approx(0.01, abs=0.005)


def test_image_size_must_fit_the_pyramid():
    with pytest.raises(BoxflowError, match="multiple of 128"):
        RetinaNet(RetinaNetConfig(num_classes=1, image_size=200))


@pytest.mark.slow
def test_the_xla_compiled_loss_and_gradients_equal_the_graph_ones(shapes_data):
    model = RetinaNet(RetinaNetConfig(num_classes=3, image_size=128))
    images, targets = next(iter(make_dataset(shapes_data, "train", 128, 4, training=False, deterministic=True,
                                             padded_max_boxes=16)))

    def loss_and_gradients(images, targets):
        with tf.GradientTape() as tape:
            loss = model._losses_for(images, targets, training=False)["loss"]
        return loss, tape.gradient(loss, model.trainable_variables)

    graph_loss, graph_gradients = tf.function(loss_and_gradients)(images, targets)
    xla_loss, xla_gradients = tf.function(loss_and_gradients, jit_compile=True)(images, targets)
    assert float(xla_loss) == pytest.approx(float(graph_loss), rel=1e-5)
    for graph, xla in zip(graph_gradients, xla_gradients):
        np.testing.assert_allclose(xla, graph, atol=1e-4 * max(1.0, float(tf.reduce_max(tf.abs(graph)))))


def test_evaluate_averages_the_batches_and_nothing_else(shapes_data):
    # Keras runs one more step on no images after the last batch of a dataset of unknown length;
    # counting its zero loss made every reported validation loss too low (2 batches: by a third).
    model = RetinaNet(RetinaNetConfig(num_classes=3, image_size=128))
    model.compile()
    dataset = make_dataset(shapes_data, "train", 128, 4, training=False, deterministic=True).take(2)
    assert int(dataset.cardinality()) < 0  # unknown, as every prepared split is
    by_hand = [float(model._losses_for(images, targets, training=False)["loss"]) for images, targets in dataset]
    assert model.evaluate(dataset, verbose=0, return_dict=True)["loss"] == pytest.approx(np.mean(by_hand), rel=1e-5)
