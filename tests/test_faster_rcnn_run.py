"""`boxflow train --model faster_rcnn` end to end: the run directory rebuilds the detector it trained,
and `boxflow serve` answers the official gRPC client and REST with the in-process model's detections.
(Its export, `saved_model_cli` and `evaluate` are checked for both detectors in test_export.py;
Mirrored and multi-worker training in test_strategy.py and test_multi_worker.py.)"""

import json

import numpy as np
import pytest
import tensorflow as tf

from boxflow.cli import main
from keras_models.models.faster_rcnn import FasterRCNN
from keras_models.models.faster_rcnn_sizing import SIZED_FIELDS, fit_faster_rcnn
from keras_models.runs.run_directory import load_trained_model
from contracts.export_schema import OUTPUT_NAMES
from tests.builders import SMALL_FASTER_RCNN_FILE
from tests.helpers.serving import b64, grpc_predict, held_out_images_and_answer, rest, serving_run


def test_the_run_directory_holds_the_faster_rcnn_it_trained(tiny_faster_rcnn_run):
    data, run = tiny_faster_rcnn_run
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["model"] == "faster_rcnn"
    # No --config: the sizes were fitted to 128 px and the training split's boxes, and recorded.
    info = json.loads((data / "dataset_info.json").read_text())["splits"]["train"]
    fitted = fit_faster_rcnn(128, info["boxes"] / info["images"])
    assert config["model_sizes"] == {"fitted": fitted.values(), "rule": fitted.reason}
    assert {name: config["model"][name] for name in SIZED_FIELDS} == fitted.values()
    assert config["model"]["anchor_size_multiplier"] == 8.0 and config["model"]["box_head"] == "2fc"
    assert isinstance(load_trained_model(str(run)).model, FasterRCNN)
    history = json.loads((run / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4, 5, 6]
    assert {"rpn_class_loss", "rpn_box_loss", "class_loss", "box_loss", "val_rpn_class_loss"} <= set(history[0])
    assert "val_mAP" in history[5] and "val_mAP" not in history[0]  # --eval-every 6
    assert history[5]["rpn_class_loss"] < history[0]["rpn_class_loss"]


def test_settings_of_the_other_detector_exit_2_naming_them(tiny_run, tmp_path, capsys):
    config = tmp_path / "two_stage.yaml"
    config.write_text("rois_per_image: 64\n")
    assert main(["train", "--data", str(tiny_run[0]), "--out", str(tmp_path / "run"), "--config", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("rois_per_image set, but only --model faster_rcnn or mask_rcnn or panoptic_fpn reads it; this run trains "
                          "retinanet")
    assert len(error.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_the_single_level_variant_trains_with_fitted_anchors_and_evaluates_as_it_validated(tiny_run, tmp_path):
    data = tiny_run[0]
    config = tmp_path / "single_level.yaml"
    config.write_text(SMALL_FASTER_RCNN_FILE.read_text() + "pyramid: false\n")
    run = tmp_path / "run"
    assert main(["train", "--model", "faster_rcnn", "--config", str(config), "--data", str(data), "--out", str(run),
                 "--image-size", "128", "--epochs", "2", "--batch-size", "8", "--learning-rate", "0.003",
                 "--anchors", "auto", "--eval-every", "2"]) == 0
    model_config = json.loads((run / "config.json").read_text())["model"]
    assert model_config["pyramid"] is False
    model = load_trained_model(str(run)).model
    assert model.pyramid is None and model.anchor_config.levels == range(4, 5)
    assert model.anchor_config.size_multiplier == model_config["anchor_size_multiplier"]
    assert main(["evaluate", "--run", str(run), "--data", str(data), "--resamples", "0"]) == 0
    report = json.loads((run / "evaluation" / "val.json").read_text())
    history = json.loads((run / "history.json").read_text())
    assert report["coco"]["AP50"] == pytest.approx(history[-1]["val_mAP50"], abs=1e-6)


@pytest.fixture(scope="module")
def served(tiny_faster_rcnn_run, exported):
    with serving_run(*tiny_faster_rcnn_run, exported(tiny_faster_rcnn_run[1])) as served:
        yield served


def test_serve_answers_the_official_grpc_client_and_rest_as_the_model_does(served):
    # Eight held-out images: 3 epochs in, the model finds something in some of them, not in each.
    images, reference = held_out_images_and_answer(served)
    response = grpc_predict(served["grpc"], "shapes", images)
    assert response.model_spec.version.value == 1
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(tf.make_ndarray(response.outputs[name]), reference[name], atol=1e-4)
    status, answer = rest(served["rest"], "/v1/models/shapes:predict", {"instances": [b64(i) for i in images]})
    assert status == 200
    for row, prediction in enumerate(answer["predictions"]):
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(prediction[name], reference[name][row], atol=1e-4)
