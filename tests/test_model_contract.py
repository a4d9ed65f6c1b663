"""The contract every registered model keeps (DESIGN.md §5, §6), one test run on each: its config
round-trips, ragged and padded batches give the same loss, a few steps lower it, padded `predict`
stays inside the image, XLA predicts what the graph does, and its export has the signatures,
inputs and outputs the export schema names. Each model's own test file keeps what is its own."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from contracts import export_schema
from keras_models.models import DETECTOR_MODELS
from keras_models.models.registry import MODEL_CLASSES
from keras_models.runs.run_directory import load_trained_model
from pipeline.dataset import make_dataset
from tests.builders import prepared_stuff, prepared_synth, small_model
from tests.conftest import SHARED_MODEL_NAME

MODELS = sorted(MODEL_CLASSES)
DETECTORS = sorted(DETECTOR_MODELS)
# The session's trained run of each model (tests/conftest.py).
TRAINED_RUNS = {"retinanet": "tiny_run", "faster_rcnn": "tiny_faster_rcnn_run", "mask_rcnn": "tiny_mask_rcnn_run",
                "semantic_fpn": "tiny_semantic_run", "panoptic_fpn": "tiny_panoptic_run"}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict:
    """`{kind: data dir}`: `synth --masks` data for the detectors, `synth --stuff` for the pixel models."""
    root = tmp_path_factory.mktemp("contract")
    return {"masks": str(prepared_synth(root / "masks", 24, 128, (16, 48), seed=3, val_fraction=0.25, masks=True)),
            "stuff": str(prepared_stuff(root / "stuff", 24, 128, seed=3, val_fraction=0.25))}


def data_for(name: str, datasets: dict) -> tuple[str, dict, int]:
    """The data model `name` trains on, the `make_dataset` maps its batches must carry, and the
    data's classes (3 shapes, and 3 stuff regions with `--stuff`)."""
    model = MODEL_CLASSES[name]
    return (datasets["stuff" if model.TRAINS_ON_SEMANTIC else "masks"],
            dict(with_masks=model.TRAINS_ON_MASKS, with_semantic=model.TRAINS_ON_SEMANTIC),
            6 if model.TRAINS_ON_SEMANTIC else 3)


def test_every_registered_model_is_under_contract():
    assert set(TRAINED_RUNS) == set(MODEL_CLASSES)
    assert {"retinanet", "panoptic_fpn"} == set(JIT_DETECTORS) and issubclass(MODEL_CLASSES["panoptic_fpn"],
                                                                              MODEL_CLASSES["mask_rcnn"])
    assert set(DETECTORS) == {name for name, model in MODEL_CLASSES.items() if model.FINDS_OBJECTS}


@pytest.mark.parametrize("name", MODELS)
def test_the_config_rebuilds_the_same_model(name, datasets):
    data_dir, _, classes = data_for(name, datasets)
    model = small_model(name, classes, **({"anchor_size_multiplier": 6.0} if name in DETECTORS
                                          else {"semantic_channels": 24}))
    rebuilt = type(model).from_config(model.get_config())
    assert rebuilt.get_config() == model.get_config()
    rebuilt.set_weights(model.get_weights())
    images = next(iter(make_dataset(data_dir, "val", 128, 2, training=False, deterministic=True)))[0]
    for output, values in model.predict_outputs(images).items():
        np.testing.assert_allclose(rebuilt.predict_outputs(images)[output], values, atol=1e-5, err_msg=output)


@pytest.mark.parametrize("name", MODELS)
def test_ragged_and_padded_batches_give_the_same_losses(name, datasets):
    data_dir, maps, classes = data_for(name, datasets)
    model = small_model(name, classes)
    model.compile(optimizer="adam")
    ragged = make_dataset(data_dir, "train", 128, 4, training=False, deterministic=True, **maps).take(1)
    padded = make_dataset(data_dir, "train", 128, 4, training=False, deterministic=True, padded_max_boxes=16,
                          **maps).take(1)
    first = model.evaluate(ragged, verbose=0, return_dict=True)
    second = model.evaluate(padded, verbose=0, return_dict=True)
    assert set(first) == set(type(model).LOSS_NAMES)
    for loss_name, value in first.items():
        assert second[loss_name] == pytest.approx(value, rel=1e-5), loss_name


@pytest.mark.parametrize("name", MODELS)
def test_a_few_steps_lower_the_loss(name, datasets):
    data_dir, maps, classes = data_for(name, datasets)
    keras.utils.set_random_seed(0)
    model = small_model(name, classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(data) or step(data)  # runs once per trace
    batches = make_dataset(data_dir, "train", 128, 4, training=True, seed=0, **maps)
    history = model.fit(batches, epochs=4, verbose=0).history
    # Traced once: compile built the optimizer's slots (a step that makes variables is traced twice).
    assert len(traces) == 1
    assert set(history) == set(type(model).LOSS_NAMES)
    assert all(np.isfinite(value) for values in history.values() for value in values)
    assert history["loss"][-1] < 0.9 * history["loss"][0], history["loss"]


@pytest.mark.parametrize("name", DETECTORS)
def test_padded_predict_stays_inside_the_image(name, datasets):
    data_dir, _, _ = data_for(name, datasets)
    model = small_model(name, score_threshold=0.0, max_detections=20)
    images = next(iter(make_dataset(data_dir, "val", 128, 2, training=False, deterministic=True)))[0]
    detections = model.predict(images, verbose=0)
    assert detections["boxes"].shape == (2, 20, 4) and detections["scores"].shape == (2, 20)
    assert detections["classes"].shape == (2, 20) and detections["classes"].dtype == np.int32
    assert detections["num_detections"].shape == (2,) and np.all(detections["num_detections"] > 0)
    shown = np.arange(20) < detections["num_detections"][:, np.newaxis]
    assert detections["boxes"].min() >= 0 and detections["boxes"].max() <= 128
    assert set(np.unique(detections["classes"][shown])) <= {0, 1, 2}
    assert not detections["boxes"][~shown].any() and not detections["scores"][~shown].any()


# Panoptic FPN's detection runs every op of Mask R-CNN's, which runs every op of Faster R-CNN's, and
# adds the merge: compiling it stands for the three (each compile takes minutes on 2 cores).
JIT_DETECTORS = ("retinanet", "panoptic_fpn")


@pytest.mark.slow
@pytest.mark.parametrize("name", JIT_DETECTORS)
def test_predict_under_jit_compile_equals_the_graph(request, name):
    """Keras' "auto" compiles on a GPU: every op of detection, per-class NMS included, has an XLA
    form, and a trained model's detections equal the graph's."""
    data, run = request.getfixturevalue(TRAINED_RUNS[name])
    model = load_trained_model(str(run)).model
    images = next(iter(make_dataset(str(data), "val", model.image_size, 8, training=False, deterministic=True)))[0]
    graph = {output: value.numpy() for output, value in model.predict_outputs(images).items()}
    model.compile(jit_compile=True)
    compiled = model.predict(images, verbose=0)
    assert graph["num_detections"].sum() > 0  # a trained model: there is something to compare
    np.testing.assert_array_equal(compiled["num_detections"], graph["num_detections"])
    np.testing.assert_allclose(compiled["scores"], graph["scores"], atol=1e-4)
    for image, count in enumerate(graph["num_detections"]):
        # Detections whose scores tie may come in either order: XLA's sort breaks ties its own way.
        unmatched = list(range(count))
        for row in range(count):
            match = next((other for other in unmatched if same_detection(compiled, graph, image, row, other)), None)
            assert match is not None, f"image {image}: compiled detection {row} is not among the graph's"
            unmatched.remove(match)
    if "panoptic_categories" in graph:  # the merge compiles too; a tie may swap two instances' order
        assert (compiled["panoptic_categories"] == graph["panoptic_categories"]).mean() > 0.99


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(MODELS) - set(DETECTORS)))
def test_pixel_logits_under_jit_compile_equal_the_graphs(request, name):
    data, run = request.getfixturevalue(TRAINED_RUNS[name])
    model = load_trained_model(str(run)).model
    images = next(iter(make_dataset(str(data), "val", model.image_size, 8, training=False, deterministic=True)))[0]
    graph = model.predict_outputs(images)
    model.compile(jit_compile=True)
    compiled = model.predict(images, verbose=0)
    assert set(compiled) == set(graph)
    for output, values in graph.items():
        np.testing.assert_allclose(compiled[output], values, atol=1e-3, err_msg=output)


def same_detection(compiled: dict, graph: dict, image: int, row: int, other: int) -> bool:
    """Whether `compiled`'s detection `row` of `image` is `graph`'s detection `other`: the same
    class, the score within 1e-4 and the box within 0.01 px."""
    return (compiled["classes"][image, row] == graph["classes"][image, other]
            and abs(compiled["scores"][image, row] - graph["scores"][image, other]) <= 1e-4
            and np.allclose(compiled["boxes"][image, row], graph["boxes"][image, other], atol=1e-2))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_the_export_has_the_schemas_signatures_inputs_and_outputs(request, exported, name):
    _, run = request.getfixturevalue(TRAINED_RUNS[name])
    loaded = tf.saved_model.load(str(exported(run) / SHARED_MODEL_NAME / "1"))
    assert set(loaded.signatures) == set(export_schema.SIGNATURES)
    inputs = {signature: set(loaded.signatures[signature].structured_input_signature[1])
              for signature in export_schema.SIGNATURES}
    assert inputs == {export_schema.ENCODED_IMAGES_SIGNATURE: {export_schema.IMAGES_INPUT},
                      export_schema.PIXEL_IMAGES_SIGNATURE: {export_schema.IMAGES_INPUT},
                      export_schema.EXAMPLES_SIGNATURE: {export_schema.EXAMPLES_INPUT}}
    model = MODEL_CLASSES[name]
    outputs = (set(export_schema.OUTPUT_NAMES) | ({export_schema.MASKS_OUTPUT} if model.TRAINS_ON_MASKS else set())
               | (set(export_schema.PANOPTIC_OUTPUT_NAMES) if model.TRAINS_ON_SEMANTIC else set())
               if model.FINDS_OBJECTS else set(export_schema.SEMANTIC_OUTPUT_NAMES))
    for signature in export_schema.SIGNATURES:
        assert set(loaded.signatures[signature].structured_outputs) == outputs, signature
