"""`boxflow serve` against the official clients: REST bodies exactly as TF Serving's REST docs
show them, gRPC through tensorflow-serving-api's stubs; TF Serving's answers for metadata,
status and bad requests; and `boxflow predict`."""

import io
import json
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from boxflow.cli import main
from contracts.errors import BoxflowError
from keras_models.runs.run_directory import load_trained_model
from keras_models.inference.detection_functions import detect_encoded_images, detect_images
from contracts.export_schema import OUTPUT_NAMES
from serving.errors import BadRequest, NotFound
from serving.export import export
from serving.model_registry import ModelRegistry
from serving.predictor import BatchingSettings
from serving.request_limits import RequestLimits
from serving.server import Server, ServeSettings
from tests.builders import jpeg_bytes
from tests.helpers.serving import BAD_REQUESTS, HUGE_PNG, JPEG, TINY_JPEG, ServeProcess, b64, rest


@pytest.fixture(scope="module")
def served(tiny_run, exported):
    data, run = tiny_run
    base = exported(run)
    server = Server(ServeSettings(str(base), rest_port=0, grpc_port=0, poll_seconds=0.2,
                                  max_request_bytes=256 * 1024))
    server.start()
    yield {"base": base, "run": run, "data": data, "server": server,
           "rest": f"http://127.0.0.1:{server.rest_port}", "grpc": f"127.0.0.1:{server.grpc_port}",
           "model": load_trained_model(str(run)).model}
    server.stop()


def expected(served, images):
    return detect_encoded_images(served["model"], tf.constant(images))


def test_rest_row_format_with_b64_images(served):
    images = [jpeg_bytes(160, 100, 1), jpeg_bytes(90, 140, 2)]
    status, answer = rest(served["rest"], "/v1/models/shapes:predict", {"instances": [b64(image) for image in images]})
    assert status == 200 and len(answer["predictions"]) == 2
    reference = expected(served, images)
    for row, prediction in enumerate(answer["predictions"]):
        assert set(prediction) == set(OUTPUT_NAMES)
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(prediction[name], reference[name][row], atol=1e-4)


def test_rest_columnar_format_and_named_signatures(served):
    image = jpeg_bytes(120, 120, 3)
    status, answer = rest(served["rest"], "/v1/models/shapes/versions/1:predict",
                          {"signature_name": "serving_default", "inputs": {"images": [b64(image)]}})
    assert status == 200
    np.testing.assert_allclose(answer["outputs"]["detection_boxes"], expected(served, [image])["detection_boxes"],
                               atol=1e-4)
    pixels = np.asarray(Image.open(io.BytesIO(image)))
    status, answer = rest(served["rest"], "/v1/models/shapes:predict",
                          {"signature_name": "serve_images", "instances": [pixels.tolist()]})
    assert status == 200 and len(answer["predictions"]) == 1
    reference = detect_images(served["model"], tf.constant(pixels[np.newaxis]))
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(answer["predictions"][0][name], reference[name][0], atol=1e-4)


def test_rest_status_and_metadata_have_tf_servings_shape(served):
    assert rest(served["rest"], "/v1/models/shapes") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    assert rest(served["rest"], "/v1/models/shapes/versions/1")[0] == 200
    status, metadata = rest(served["rest"], "/v1/models/shapes/metadata")
    assert status == 200 and metadata["model_spec"] == {"name": "shapes", "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "serve_images", "serve_examples"}
    assert signatures["serving_default"]["inputs"]["images"]["dtype"] == "DT_STRING"
    assert signatures["serve_images"]["inputs"]["images"]["dtype"] == "DT_UINT8"
    assert set(signatures["serve_examples"]["outputs"]) == set(OUTPUT_NAMES)
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"


def test_grpc_with_the_official_stubs(served):
    image = jpeg_bytes(130, 90, 4)
    with grpc.insecure_channel(served["grpc"]) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "shapes"
        request.model_spec.signature_name = "serving_default"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        assert response.model_spec.version.value == 1
        reference = expected(served, [image])
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(tf.make_ndarray(response.outputs[name]), reference[name], atol=1e-4)

        without_field = get_model_metadata_pb2.GetModelMetadataRequest()
        without_field.model_spec.name = "shapes"
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(without_field)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details() == "GetModelMetadataRequest must specify at least one metadata_field"
        metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata_request.model_spec.name = "shapes"
        metadata = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(metadata_request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signature_map)
        assert set(signature_map.signature_def) == {"serving_default", "serve_images", "serve_examples"}

        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "shapes"
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request)
        assert [(s.version, s.state) for s in status.model_version_status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]

        request.model_spec.name = "nothing"
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("path, body, status, message", BAD_REQUESTS)
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(served, path, body, status, message):
    answer_status, answer = rest(served["rest"], path, body)
    assert answer_status == status and message in answer["error"], answer
    assert rest(served["rest"], "/v1/models/shapes:predict", {"instances": [b64(JPEG)]})[0] == 200


def test_grpc_refuses_work_over_the_limits_and_keeps_serving(served):
    with grpc.insecure_channel(served["grpc"]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for images, message in (([TINY_JPEG] * 65, "the request has 65 instances; the limit is 64"),
                                ([HUGE_PNG], "the image is 6000x5000 pixels")):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "shapes"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
            with pytest.raises(grpc.RpcError) as error:
                stub.Predict(request, timeout=60)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([JPEG], dtype=tf.string))
        assert tf.make_ndarray(stub.Predict(request, timeout=60).outputs["num_detections"]).shape == (1,)


def test_pixel_arrays_are_limited_by_their_shape():
    limits = RequestLimits(max_instances=4, max_image_pixels=100 * 100)
    limits.check({"images": np.broadcast_to(np.uint8(0), (4, 100, 100, 3))})
    with pytest.raises(BadRequest, match="instance 0: the image is 101x100 pixels; the limit is 10000 pixels"):
        limits.check({"images": np.broadcast_to(np.uint8(0), (1, 100, 101, 3))})
    with pytest.raises(BoxflowError, match="--max-instances must be at least 1, got 0"):
        RequestLimits(max_instances=0)


def test_the_answer_is_bounded_by_the_outputs_shapes_and_the_images_sizes():
    outputs = {"detection_boxes": ([None, 100, 4], 4), "detection_image_masks": ([None, 100, None, None], 1)}
    limits = RequestLimits(max_answer_bytes=2 * (100 * 4 * 4 + 100 * 90 * 120))
    limits.check({"images": np.broadcast_to(np.uint8(0), (2, 90, 120, 3))}, outputs)  # exactly the limit
    with pytest.raises(BadRequest, match=r"the answer to 2 instance\(s\) would hold 2187200 bytes; the limit is "
                                         r"2163200 bytes per answer \(boxflow serve --max-answer-bytes\)"):
        limits.check({"images": np.broadcast_to(np.uint8(0), (2, 91, 120, 3))}, outputs)


def test_predict_command_over_rest_and_grpc(served, tmp_path, capsys):
    image = tmp_path / "image.jpg"
    image.write_bytes(JPEG)
    label_map = served["run"] / "label_map.pbtxt"
    assert main(["predict", "--server", served["rest"], "--name", "shapes", "--image", str(image),
                 "--label-map", str(label_map), "--min-score", "0", "--out", str(tmp_path / "boxes.png")]) == 0
    over_rest = capsys.readouterr().out
    # The picture is drawn enlarged, its shorter side to 512 px, so that the labels can be read.
    assert "detection(s) with score >= 0" in over_rest and Image.open(tmp_path / "boxes.png").size == (640, 512)
    assert main(["predict", "--server", served["grpc"], "--grpc", "--name", "shapes", "--image", str(image),
                 "--label-map", str(label_map), "--min-score", "0"]) == 0
    assert capsys.readouterr().out == over_rest.replace(f"wrote {tmp_path / 'boxes.png'}\n", "")
    assert main(["predict", "--server", served["rest"], "--name", "nothing", "--image", str(image)]) == 2
    assert "HTTP 404: Servable not found" in capsys.readouterr().err


def grpc_version_loop(address: str, image: bytes, stop, results: list) -> None:
    """Predicts until `stop` is set, recording each answer's version or its error. No cap on the
    count: a cap can end the requests before a slow export's version arrives."""
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "shapes"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
        while not stop.is_set():
            try:
                results.append(stub.Predict(request, timeout=60).model_spec.version.value)
            except grpc.RpcError as error:
                results.append(error)


def test_the_registry_reports_a_broken_version_or_an_unlistable_base_once_and_recovers(served, tmp_path, caplog,
                                                                                      monkeypatch):
    import os
    import shutil

    base = tmp_path / "models"
    shutil.copytree(served["base"] / "shapes" / "1", base / "shapes" / "1")
    registry = ModelRegistry(str(base))
    registry.refresh()
    (base / "shapes" / "2").mkdir()
    (base / "shapes" / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    with caplog.at_level("ERROR", logger="serving.model_registry"):
        for _ in range(3):
            registry.refresh()
    assert [record.getMessage() for record in caplog.records if "version 2" in record.getMessage()] == [
        caplog.records[0].getMessage()]  # once, not at every poll
    assert caplog.records[0].getMessage().startswith("cannot load shapes version 2:")
    assert registry.get("shapes").version == 1  # version 1 serves meanwhile

    caplog.clear()
    listdir = os.listdir

    def unavailable(path):
        if str(path) == str(base):
            raise OSError(116, "Stale file handle")
        return listdir(path)

    monkeypatch.setattr(os, "listdir", unavailable)  # an NFS outage
    with caplog.at_level("ERROR", logger="serving.model_registry"):
        assert registry.refresh() == [] and registry.refresh() == []
    assert [record.getMessage() for record in caplog.records] == [
        f"cannot list the model base {base} ([Errno 116] Stale file handle); retrying"]
    monkeypatch.setattr(os, "listdir", listdir)
    shutil.rmtree(base / "shapes" / "2")
    shutil.copytree(served["base"] / "shapes" / "1", base / "shapes" / "3")
    assert [version.version for version in registry.refresh()] == [3]  # back, and it finds the new version


def test_a_named_model_is_the_only_one_served(served, tmp_path):
    import shutil

    base = tmp_path / "models"
    for name in ("shapes", "other"):
        shutil.copytree(served["base"] / "shapes" / "1", base / name / "1")
    registry = ModelRegistry(str(base), "other")
    assert [version.name for version in registry.refresh()] == ["other"]
    with pytest.raises(NotFound, match=r"Latest\(shapes\)"):
        registry.get("shapes")
    with pytest.raises(BoxflowError, match="--name must be the name of a folder under --model-base"):
        ServeSettings(str(base), "../models")
    absent = Server(ServeSettings(str(base), "absent", rest_port=0, grpc_port=0))
    try:
        with pytest.raises(BoxflowError, match=f"--name absent: no {base}/absent/VERSION SavedModel"):
            absent.start()
    finally:
        absent.stop()


@pytest.mark.slow
def test_hot_swap_switches_versions_without_failing_a_request(served, tmp_path):
    import shutil
    import threading
    import time

    base = tmp_path / "models"
    shutil.copytree(served["base"] / "shapes" / "1", base / "shapes" / "1")
    server = Server(ServeSettings(str(base), rest_port=0, grpc_port=0, poll_seconds=0.2))
    server.start()
    stop, results = threading.Event(), []
    clients = [threading.Thread(target=grpc_version_loop,
                                args=(f"127.0.0.1:{server.grpc_port}", JPEG, stop, results))
               for _ in range(2)]
    try:
        for client in clients:
            client.start()
        time.sleep(1.0)
        export(str(served["run"]), str(base / "shapes"))  # version 2 appears while requests flow
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and 2 not in results[-5:]:
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
        server.stop()
    failures = [result for result in results if isinstance(result, grpc.RpcError)]
    assert not failures, failures[:3]
    assert results[0] == 1 and results[-1] == 2
    switch = results.index(2)
    assert all(version == 2 for version in results[switch + 2:]), "once switched, requests stay on the new version"


def test_server_side_batching_joins_concurrent_requests_with_the_same_answers(served, tmp_path):
    import concurrent.futures

    batched = Server(ServeSettings(str(served["base"]), rest_port=0, grpc_port=0,
                                   batching=BatchingSettings(max_batch_size=8, batch_timeout=0.05)))
    batched.start()
    try:
        images = [jpeg_bytes(100 + 10 * index, 90, index) for index in range(8)]

        def one(image):
            request = urllib.request.Request(f"http://127.0.0.1:{batched.rest_port}/v1/models/shapes:predict",
                                             data=json.dumps({"instances": [b64(image)]}).encode())
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["predictions"][0]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, images))
    finally:
        batched.stop()
    reference = expected(served, images)
    for row, answer in enumerate(answers):
        np.testing.assert_allclose(answer["detection_boxes"], reference["detection_boxes"][row], atol=1e-4)
    assert batched.predictor.requests_batched == 8 and batched.predictor.batches_run < 8


def test_batching_refuses_a_request_larger_than_a_batch_as_tf_serving_does(served):
    batched = Server(ServeSettings(str(served["base"]), rest_port=0, grpc_port=0,
                                   batching=BatchingSettings(max_batch_size=2, batch_timeout=0.01)))
    batched.start()
    try:
        url = f"http://127.0.0.1:{batched.rest_port}"
        status, answer = rest(url, "/v1/models/shapes:predict", {"instances": [b64(JPEG)] * 3})
        assert status == 400 and answer["error"] == ("Task size 3 is larger than maximum input batch size 2 "
                                                     "(boxflow serve --max-batch-size)")
        assert rest(url, "/v1/models/shapes:predict", {"instances": [b64(JPEG)] * 2})[0] == 200
    finally:
        batched.stop()
    with pytest.raises(BoxflowError, match="--max-batch-size must be at least 1, got 0"):
        BatchingSettings(max_batch_size=0)
    with pytest.raises(BoxflowError, match="--batch-timeout-ms must be between 0 and 1000, got 5000"):
        BatchingSettings(batch_timeout=5.0)


def test_the_serve_command_starts_on_loopback_and_stops_on_sigterm(served):
    import os

    with ServeProcess(str(served["base"]), "--name", "shapes", "--batching", "--max-batch-size", "4",
                      "--batch-timeout-ms", "5") as process:
        # --batching and --max-batch-size reached the server: a request over the batch is refused.
        status, answer = rest(process.rest_url, "/v1/models/shapes:predict", {"instances": [b64(JPEG)] * 5})
        assert status == 400 and answer["error"].startswith("Task size 5 is larger than maximum input batch size 4")
        assert process.stop() == 0, process.output[-2000:]
    assert (f"REST http://127.0.0.1:{process.rest_port}, gRPC 127.0.0.1:{process.grpc_port}" in process.output
            and "stopped" in process.output)
    assert os.path.exists(served["base"] / "models.config")


def test_a_single_output_signature_is_answered_without_its_name(tmp_path):
    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def double(self, x):
            return {"y": 2 * x}

    module = Doubler()
    tf.saved_model.save(module, str(tmp_path / "models" / "doubler" / "1"),
                        signatures={"serving_default": module.double})
    server = Server(ServeSettings(str(tmp_path / "models"), rest_port=0, grpc_port=0))
    server.start()
    try:
        here = f"http://127.0.0.1:{server.rest_port}"
        assert rest(here, "/v1/models/doubler:predict", {"instances": [[1, 2], [3, 4]]}) == (
            200, {"predictions": [[2.0, 4.0], [6.0, 8.0]]})
        assert rest(here, "/v1/models/doubler:predict", {"inputs": [[1, 2]]}) == (200, {"outputs": [[2.0, 4.0]]})
    finally:
        server.stop()


def test_status_lists_every_version_and_labels_name_versions(served, tmp_path):
    import shutil

    base = tmp_path / "models"
    shutil.copytree(served["base"] / "shapes" / "1", base / "shapes" / "1")
    (base / "models.config").write_text(
        'model_config_list { config { name: "shapes" base_path: "/models/shapes" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } } }')
    server = Server(ServeSettings(str(base), rest_port=0, grpc_port=0, poll_seconds=3600))
    server.start()
    try:
        here = f"http://127.0.0.1:{server.rest_port}"
        shutil.copytree(base / "shapes" / "1", base / "shapes" / "2")
        server.registry.refresh()  # 2 replaces 1
        (base / "shapes" / "3").mkdir()
        (base / "shapes" / "3" / "saved_model.pb").write_bytes(b"broken")
        server.registry.refresh()  # 3 fails to load: 2 stays

        status, answer = rest(here, "/v1/models/shapes")
        assert status == 200
        states = [(entry["version"], entry["state"], entry["status"]["error_code"])
                  for entry in answer["model_version_status"]]
        assert states == [("1", "END", "OK"), ("2", "AVAILABLE", "OK"), ("3", "END", "UNKNOWN")]
        assert answer["model_version_status"][2]["status"]["error_message"]  # why it failed
        assert rest(here, "/v1/models/shapes/labels/canary")[1]["model_version_status"][0]["version"] == "2"
        assert rest(here, "/v1/models/shapes/labels/canary:predict", {"instances": [b64(JPEG)]})[0] == 200
        assert rest(here, "/v1/models/shapes/labels/stable:predict", {"instances": [b64(JPEG)]}) == (
            404, {"error": "Servable not found for request: Specific(shapes, 1)"})
        assert rest(here, "/v1/models/shapes/labels/beta/metadata") == (
            400, {"error": "Unrecognized servable version label: beta"})

        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "shapes"
            statuses = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request).model_version_status
            assert [status.version for status in statuses] == [1, 2, 3]
            predict = predict_pb2.PredictRequest()
            predict.model_spec.name = "shapes"
            predict.model_spec.version_label = "canary"
            predict.inputs["images"].CopyFrom(tf.make_tensor_proto([JPEG], dtype=tf.string))
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert stub.Predict(predict, timeout=60).model_spec.version.value == 2
            predict.model_spec.version_label = "beta"
            with pytest.raises(grpc.RpcError) as error:
                stub.Predict(predict, timeout=60)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.value.details() == "Unrecognized servable version label: beta"
    finally:
        server.stop()
