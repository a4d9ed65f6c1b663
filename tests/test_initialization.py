"""`--init-from`: a detector started from an earlier run takes every weight whose name and shape
match, starts the rest fresh, and so begins where that run ended."""

import json

import numpy as np
import pytest

from boxflow.cli import main
from contracts.errors import BoxflowError
from keras_models.training.initialization import INIT_FROM_FILE, initialize_from, weight_name
from keras_models.models.retinanet import RetinaNet
from keras_models.models.retinanet_config import RetinaNetConfig
from keras_models.runs.run_directory import load_trained_model, read_run_config
from pipeline.dataset import make_dataset


def validation_loss(model: RetinaNet, data, batch_size: int) -> float:
    model.compile()
    dataset = make_dataset(str(data), "val", 128, batch_size, training=False, deterministic=True)
    return model.evaluate(dataset, verbose=0, return_dict=True)["loss"]


def test_a_model_started_from_a_run_begins_at_that_runs_validation_loss(tiny_run):
    data, run = tiny_run
    model = RetinaNet.from_config(read_run_config(str(run))["model"])
    # The loss is normalized per batch: both are measured on the same batches, in the same order.
    fresh_loss = validation_loss(model, data, 8)
    initialization = initialize_from(model, str(run))
    assert initialization.fresh == () and initialization.source.endswith("model.weights.h5")
    started = validation_loss(model, data, 8)
    assert started == pytest.approx(validation_loss(load_trained_model(str(run)).model, data, 8), rel=1e-6)
    # Training moved the loss by far more than the 1e-4 matched above.
    assert abs(fresh_loss - started) > 0.01 * started, "a fresh model had the same loss: nothing was tested"


def test_a_class_head_for_other_classes_starts_fresh_and_the_rest_is_taken(tiny_run):
    _, run = tiny_run
    config = {**read_run_config(str(run))["model"], "num_classes": 5}
    config.pop("name", None)
    model = RetinaNet.from_config(config)
    before = {weight_name(variable, model): np.array(variable) for variable in model.weights}
    checkpoint = run / "checkpoints" / "epoch-001.weights.h5"
    initialization = initialize_from(model, str(checkpoint))
    assert initialization.fresh == ("class_head/predict/kernel", "class_head/predict/bias")
    assert len(initialization.taken) == len(model.weights) - 2
    assert "started fresh: class_head/predict/kernel, class_head/predict/bias" in initialization.summary()
    source = load_trained_model(str(run), weights=str(checkpoint)).model
    earlier = {weight_name(variable, source): np.array(variable) for variable in source.weights}
    now = {weight_name(variable, model): np.array(variable) for variable in model.weights}
    assert all(np.array_equal(now[name], earlier[name]) for name in initialization.taken)
    assert all(np.array_equal(now[name], before[name]) for name in initialization.fresh)


@pytest.mark.parametrize("make_source, message", [
    (lambda tmp: tmp / "missing", "no such run directory or weights file"),
    (lambda tmp: (tmp / "loose.weights.h5").write_bytes(b"x") and tmp / "loose.weights.h5",
     "no config.json beside it or above it"),
    (lambda tmp: tmp, "cannot read config.json"),
])
def test_a_source_that_is_not_a_run_is_refused(tmp_path, make_source, message):
    model = RetinaNet(RetinaNetConfig(num_classes=2, image_size=128))
    with pytest.raises(BoxflowError, match=message):
        initialize_from(model, str(make_source(tmp_path)))


def test_train_init_from_writes_what_it_took(tiny_run, tmp_path, capsys):
    data, run = tiny_run
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(out), "--image-size", "128", "--epochs", "1",
                 "--batch-size", "4", "--eval-every", "0", "--init-from", str(run)]) == 0
    record = json.loads((out / INIT_FROM_FILE).read_text())
    assert record["fresh"] == [] and len(record["taken"]) > 40
    assert f"--init-from {run}/model.weights.h5: took {len(record['taken'])} of" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "other"), "--init-from", str(run),
                 "--weights", "x.h5"]) == 2
    assert "--weights (a backbone) and --init-from (a whole detector) exclude each other" in capsys.readouterr().err
