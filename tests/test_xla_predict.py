"""`predict` on a detector compiled with `jit_compile=True` (Keras' "auto" on a GPU): every op of
detection, per-class NMS included, has an XLA form, and the detections equal the graph's."""

import numpy as np
import pytest

from keras_models.training.run_directory import load_trained_model
from pipeline.dataset import make_dataset


@pytest.mark.slow
@pytest.mark.parametrize("run_fixture", ["tiny_run", "tiny_faster_rcnn_run"])
def test_predict_under_jit_compile_equals_the_graph_detections(request, run_fixture):
    data, run = request.getfixturevalue(run_fixture)
    model = load_trained_model(str(run)).model
    image_size = model.image_size
    images = next(iter(make_dataset(str(data), "val", image_size, 8, training=False)))[0]
    graph = {name: value.numpy() for name, value in model.detect(images).items()}
    model.compile(jit_compile=True)
    compiled = model.predict(images, verbose=0)
    assert graph["num_detections"].sum() > 0  # a trained model: there is something to compare
    np.testing.assert_array_equal(compiled["num_detections"], graph["num_detections"])
    np.testing.assert_array_equal(compiled["classes"], graph["classes"])
    np.testing.assert_allclose(compiled["scores"], graph["scores"], atol=1e-4)
    np.testing.assert_allclose(compiled["boxes"], graph["boxes"], atol=1e-2)  # pixels
