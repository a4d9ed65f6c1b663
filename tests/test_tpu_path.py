"""What `--strategy tpu` runs, checked on CPU: under the choice it makes (steps compiled by XLA,
batches padded), the train and test steps of every detector compile and run with
`jit_compile=True` (predict: test_model_contract.py), and the graphs of all three hold none of the ops
XLA cannot compile or a TPU cannot shape: `CombinedNonMaxSuppression`, `CropAndResize`, ragged
ops, and data-dependent `Where` / `Unique`. Validation batches come full (the last one filled up with blank images that count in no
loss). No TPU was at hand: this is XLA on CPU."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_models.models.registry import MODEL_CLASSES
from keras_models.training.strategy import compiles_steps
from pipeline.dataset import make_dataset
from tests.builders import SMALL_MODELS, prepared_stuff, prepared_synth, small_model

DENYLIST = {"CombinedNonMaxSuppression", "CropAndResize", "Where", "Unique", "UniqueV2"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("tpu_path"), 8, 128, (16, 48), seed=9, val_fraction=0.0, masks=True)


@pytest.fixture(scope="module")
def padded_batch(data):
    # With the instance maps a mask model trains on; the other models leave them alone.
    return next(iter(make_dataset(str(data), "train", 128, 4, training=False, padded_max_boxes=16, with_masks=True)))


def op_types(function, *arguments) -> set[str]:
    """Every op type in the traced graph of `function`, the bodies of its loops and maps included."""
    graph = function.get_concrete_function(*arguments).graph.as_graph_def()
    types = {node.op for node in graph.node}
    for library_function in graph.library.function:
        types |= {node.op for node in library_function.node_def}
    return types


def denied(types: set[str]) -> set[str]:
    return {op for op in types if op in DENYLIST or op.startswith("Ragged")}


class FakeTPUStrategy(tf.distribute.TPUStrategy):
    """Only for `isinstance`: the choice `compiles_steps` makes for a TPU, without one."""

    def __init__(self):  # noqa: D107 (no TPU to connect to)
        pass


# Mask R-CNN's steps hold every op of Faster R-CNN's, and its mask stage's.
@pytest.mark.parametrize("name", ["retinanet", "mask_rcnn"])
def test_the_steps_a_tpu_runs_compile_with_xla_and_hold_no_op_it_cannot_shape(name, padded_batch):
    assert compiles_steps(FakeTPUStrategy(), xla=False) and not compiles_steps(tf.distribute.get_strategy(), False)
    images, targets = padded_batch
    assert isinstance(targets["boxes"], tf.Tensor), "a TPU gets padded batches"
    model = small_model(name)
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=compiles_steps(FakeTPUStrategy(), xla=False))
    model.optimizer.build(model.trainable_variables)  # its variables exist before the steps are traced
    steps = {"train": (model.train_step, (images, targets)), "test": (model.test_step, (images, targets)),
             "predict": (model.predict_step, images)}
    for step, (function, data) in steps.items():
        compiled = tf.function(function, jit_compile=True)
        found = denied(op_types(compiled, data))
        assert not found, (step, found)
        if step != "predict":  # test_model_contract.py runs predict compiled, against the graph's detections
            results = compiled(data)  # XLA compiles and runs it
            assert all(bool(tf.reduce_all(tf.math.is_finite(value))) for value in tf.nest.flatten(results)), step
    # The check can fail: uncompiled, detection takes the faster ops XLA has no kernel for.
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False)
    assert "CombinedNonMaxSuppression" in denied(op_types(tf.function(model.predict_step), images))


@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_blank_images_that_fill_up_a_batch_change_no_loss(name, data, tmp_path):
    """8 images in batches of 3: the last batch holds 2 and a blank one; its losses are the 2's."""
    model_class = MODEL_CLASSES[name]
    semantic = model_class.TRAINS_ON_SEMANTIC
    if semantic:  # per-pixel labels: `synth --stuff`, its 3 shapes and 3 stuff regions
        data = prepared_stuff(tmp_path, 8, 128, seed=9, val_fraction=0.0)
    model = small_model(name, 6 if semantic else 3)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    maps = dict(with_masks=model_class.TRAINS_ON_MASKS or not semantic, with_semantic=semantic)
    # deterministic: the same images in the same order, so that both last batches hold the same two
    ragged = list(make_dataset(str(data), "train", 128, 3, training=False, deterministic=True, **maps))[-1]
    full = list(make_dataset(str(data), "train", 128, 3, training=False, deterministic=True, full_batches=True,
                             padded_max_boxes=16, **maps))[-1]
    np.testing.assert_array_equal(full[0][:2], ragged[0])
    assert ragged[0].shape[0] == 2 and full[0].shape[0] == 3
    for loss_name, value in model._losses_for(*ragged, training=False).items():
        # A batch of 3 runs other kernels than a batch of 2: 1e-5 apart (measured); a blank image
        # that counted would move a loss by a third.
        expected = float(value)
        assert float(model._losses_for(*full, training=False)[loss_name]) == pytest.approx(expected, rel=1e-4), \
            loss_name


def test_compiled_training_validates_on_full_batches(tmp_path):
    from keras_models.training.train_job import fit_datasets
    from keras_models.training.train_settings import train_settings
    from pipeline.dataset import IMAGE_VALID, read_dataset_info

    data = prepared_synth(tmp_path, 16, 128, (16, 48), seed=10, val_fraction=0.5)
    val_images = read_dataset_info(str(data))["splits"]["val"]["images"]
    assert val_images % 3, "the split must leave a last, smaller batch"
    settings = train_settings(str(data), str(tmp_path / "run"), image_size=128, batch_size=3, xla=True).padded_to(8)
    _, validation, _ = fit_datasets(settings, tf.distribute.get_strategy(), val_images)
    batches = list(validation)
    assert validation.element_spec[0].shape == (3, 128, 128, 3) and len(batches) == -(-val_images // 3)
    assert sum(int(tf.reduce_sum(targets[IMAGE_VALID])) for _, targets in batches) == val_images
