"""`boxflow train --box-uncertainty` end to end: the run rebuilds its probabilistic head, and
`boxflow serve` answers the official gRPC client with `detection_box_stddev`, listed in the model's
metadata, equal to the in-process model's."""

import dataclasses
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

from boxflow.cli import main
from keras_models.runs.run_directory import load_trained_model
from keras_models.inference.detection_functions import detect_encoded_images
from contracts.export_schema import OUTPUT_NAMES, STDDEV_OUTPUT
from tests.builders import read_records
from tests.helpers.serving import grpc_predict, held_out_images_and_answer, serving_run


def test_the_run_keeps_its_probabilistic_head(tiny_uncertain_run):
    _, run = tiny_uncertain_run
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["box_uncertainty"] == config["model"]["box_uncertainty"] == "laplace"
    assert load_trained_model(str(run)).model.box_uncertainty == "laplace"
    history = json.loads((run / "history.json").read_text())
    assert history[-1]["box_loss"] < history[0]["box_loss"]


def test_variance_voting_without_uncertainty_exits_2_in_one_line(tiny_run, tmp_path, capsys):
    assert main(["train", "--model", "faster_rcnn", "--variance-voting", "--data", str(tiny_run[0]),
                 "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("--variance-voting weighs boxes by their predicted variance: it needs --box-uncertainty "
                          "laplace or normal")
    assert len(error.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_evaluate_with_variance_voting_moves_boxes_but_keeps_the_detections(tiny_uncertain_run, tiny_run, tmp_path,
                                                                            capsys):
    data, run = tiny_uncertain_run
    common = ["--run", str(run), "--data", str(data), "--resamples", "0"]
    assert main(["evaluate", *common, "--out", str(tmp_path / "plain.json")]) == 0
    assert main(["evaluate", *common, "--variance-voting", "--out", str(tmp_path / "voted.json")]) == 0
    plain, voted = (json.loads((tmp_path / name).read_text()) for name in ("plain.json", "voted.json"))
    assert voted["detections"] == plain["detections"] and voted["coco"] != plain["coco"]
    model = load_trained_model(str(run)).model
    images = tf.constant([record["encoded"] for record in read_records(data, "val")[:8]])
    before = detect_encoded_images(model, images)
    model.nms = dataclasses.replace(model.nms, variance_voting=True)
    after = detect_encoded_images(model, images)
    for name in ("detection_scores", "detection_classes", "num_detections", STDDEV_OUTPUT):
        np.testing.assert_array_equal(after[name], before[name])
    moved = np.abs(after["detection_boxes"] - before["detection_boxes"]).max(axis=-1)
    assert 0 < np.mean(moved[before["detection_scores"].numpy() > 0.3] > 1e-4)
    assert main(["evaluate", "--run", str(tiny_run[1]), "--data", str(data), "--variance-voting"]) == 2
    assert "--variance-voting: the model of" in capsys.readouterr().err


@pytest.fixture(scope="module")
def served(tiny_uncertain_run, exported):
    with serving_run(*tiny_uncertain_run, exported(tiny_uncertain_run[1])) as served:
        yield served


def test_the_official_grpc_client_reads_the_stddev_and_the_metadata_lists_it(served):
    images, reference = held_out_images_and_answer(served)
    response = grpc_predict(served["grpc"], "shapes", images)
    with grpc.insecure_channel(served["grpc"]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata_request.model_spec.name = "shapes"
        metadata = stub.GetModelMetadata(metadata_request)
    for name in (*OUTPUT_NAMES, STDDEV_OUTPUT):
        np.testing.assert_allclose(tf.make_ndarray(response.outputs[name]), reference[name], atol=1e-4)
    stddev = tf.make_ndarray(response.outputs[STDDEV_OUTPUT])
    shown = np.arange(stddev.shape[1]) < tf.make_ndarray(response.outputs["num_detections"])[:, np.newaxis]
    assert np.all(stddev[shown] > 0) and np.all(stddev[~shown] == 0)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signature_map)
    for signature in signature_map.signature_def.values():
        assert STDDEV_OUTPUT in signature.outputs
        assert [dim.size for dim in signature.outputs[STDDEV_OUTPUT].tensor_shape.dim] == [-1, 100, 4]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_predict_prints_each_edge_with_its_stddev_and_draws_the_band(served, protocol, tmp_path, capsys):
    record = read_records(served["data"], "val")[0]
    image = tmp_path / "image.jpg"
    image.write_bytes(record["encoded"])
    picture = tmp_path / "detections.png"
    flags = ["--grpc"] if protocol == "grpc" else []
    assert main(["predict", "--server", served[protocol], *flags, "--name", "shapes", "--image", str(image),
                 "--min-score", "0.0", "--out", str(picture)]) == 0
    lines = capsys.readouterr().out.splitlines()
    reference = detect_encoded_images(served["model"], tf.constant([record["encoded"]]))
    count = int(reference["num_detections"][0])
    assert lines[count] == f"{count} detection(s) with score >= 0.0" and count > 0
    # "class 1   0.912  ymin 0.123±0.004 xmin …": each edge's value, then its stddev.
    fields = [field.split("±") for field in lines[0].split()[4::2]]
    np.testing.assert_allclose([float(value) for value, _ in fields], reference["detection_boxes"][0, 0], atol=1e-3)
    np.testing.assert_allclose([float(spread) for _, spread in fields], reference[STDDEV_OUTPUT][0, 0], atol=1e-3)
    assert picture.exists()
