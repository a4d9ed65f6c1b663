"""`boxflow serve` against the official clients: REST bodies exactly as TF Serving's REST docs
show them, gRPC through tensorflow-serving-api's stubs; TF Serving's answers for metadata,
status and bad requests; and `boxflow predict`."""

import base64
import io
import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from boxflow.cli import main
from boxflow.errors import BoxflowError
from keras_models.training.run_directory import load_trained_model
from serving.detection_functions import OUTPUT_NAMES, detect_encoded_images, detect_images
from serving.errors import NotFound
from serving.export import export
from serving.model_registry import ModelRegistry
from serving.predictor import BatchingSettings
from serving.server import Server, ServeSettings
from tests.builders import free_ports, jpeg_bytes


@pytest.fixture(scope="module")
def served(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    data, run = tiny_run
    export(str(run), str(root / "models" / "shapes"))
    server = Server(ServeSettings(str(root / "models"), rest_port=0, grpc_port=0, poll_seconds=0.2,
                                  max_request_bytes=256 * 1024))
    server.start()
    yield {"root": root, "run": run, "data": data, "server": server,
           "rest": f"http://127.0.0.1:{server.rest_port}", "grpc": f"127.0.0.1:{server.grpc_port}",
           "model": load_trained_model(str(run)).model}
    server.stop()


def rest(served, path, body=None, method=None):
    """`(status, JSON answer)` of one REST call; `body` is sent as is when bytes, else as JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(served["rest"] + path, data=data, method=method or ("POST" if data is not None
                                                                                            else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def expected(served, images):
    return detect_encoded_images(served["model"], tf.constant(images))


def test_rest_row_format_with_b64_images(served):
    images = [jpeg_bytes(160, 100, 1), jpeg_bytes(90, 140, 2)]
    status, answer = rest(served, "/v1/models/shapes:predict", {"instances": [b64(image) for image in images]})
    assert status == 200 and len(answer["predictions"]) == 2
    reference = expected(served, images)
    for row, prediction in enumerate(answer["predictions"]):
        assert set(prediction) == set(OUTPUT_NAMES)
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(prediction[name], reference[name][row], atol=1e-4)


def test_rest_columnar_format_and_named_signatures(served):
    image = jpeg_bytes(120, 120, 3)
    status, answer = rest(served, "/v1/models/shapes/versions/1:predict",
                          {"signature_name": "serving_default", "inputs": {"images": [b64(image)]}})
    assert status == 200
    np.testing.assert_allclose(answer["outputs"]["detection_boxes"], expected(served, [image])["detection_boxes"],
                               atol=1e-4)
    pixels = np.asarray(Image.open(io.BytesIO(image)))
    status, answer = rest(served, "/v1/models/shapes:predict",
                          {"signature_name": "serve_images", "instances": [pixels.tolist()]})
    assert status == 200 and len(answer["predictions"]) == 1
    reference = detect_images(served["model"], tf.constant(pixels[np.newaxis]))
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(answer["predictions"][0][name], reference[name][0], atol=1e-4)


def test_rest_status_and_metadata_have_tf_servings_shape(served):
    assert rest(served, "/v1/models/shapes") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    assert rest(served, "/v1/models/shapes/versions/1")[0] == 200
    status, metadata = rest(served, "/v1/models/shapes/metadata")
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


JPEG = jpeg_bytes(100, 80, 5)


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/shapes:predict", b"{not json", 400, "not valid JSON"),
    ("/v1/models/shapes:predict", {"instances": [b64(JPEG)], "inputs": [b64(JPEG)]}, 400, "exactly one of"),
    ("/v1/models/shapes:predict", {"instances": [{"b64": "%%%not base64"}]}, 400, "invalid base64"),
    ("/v1/models/shapes:predict", {"instances": [b64(b"these bytes are no image")]}, 400, "image"),
    ("/v1/models/shapes:predict", {"instances": [b64(JPEG[: len(JPEG) // 2])]}, 400, ""),
    ("/v1/models/shapes:predict", b"", 400, "empty request body"),
    ("/v1/models/shapes:predict", {"instances": [b64(b"x" * 300_000)]}, 413, "too large"),
    ("/v1/models/nothing:predict", {"instances": [b64(JPEG)]}, 404, "Servable not found"),
    ("/v1/models/shapes/versions/7:predict", {"instances": [b64(JPEG)]}, 404, "Servable not found"),
    ("/v1/models/shapes:predict", {"signature_name": "nope", "instances": [b64(JPEG)]}, 400, "nope"),
    ("/v1/models/shapes:classify", {"instances": [b64(JPEG)]}, 404, "Malformed request"),
])
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(served, path, body, status, message):
    answer_status, answer = rest(served, path, body)
    assert answer_status == status and message in answer["error"], answer
    assert rest(served, "/v1/models/shapes:predict", {"instances": [b64(JPEG)]})[0] == 200


def test_predict_command_over_rest_and_grpc(served, tmp_path, capsys):
    image = tmp_path / "image.jpg"
    image.write_bytes(JPEG)
    label_map = served["run"] / "label_map.pbtxt"
    assert main(["predict", "--server", served["rest"], "--name", "shapes", "--image", str(image),
                 "--label-map", str(label_map), "--min-score", "0", "--out", str(tmp_path / "boxes.png")]) == 0
    over_rest = capsys.readouterr().out
    assert "detection(s) with score >= 0" in over_rest and Image.open(tmp_path / "boxes.png").size == (100, 80)
    assert main(["predict", "--server", served["grpc"], "--grpc", "--name", "shapes", "--image", str(image),
                 "--label-map", str(label_map), "--min-score", "0"]) == 0
    assert capsys.readouterr().out == over_rest.replace(f"wrote {tmp_path / 'boxes.png'}\n", "")
    assert main(["predict", "--server", served["rest"], "--name", "nothing", "--image", str(image)]) == 2
    assert "HTTP 404: Servable not found" in capsys.readouterr().err


def grpc_version_loop(address: str, image: bytes, stop, results: list) -> None:
    """Predicts until `stop` is set, recording each answer's version or its error."""
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "shapes"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
        while not stop.is_set() and len(results) < 5000:
            try:
                results.append(stub.Predict(request, timeout=60).model_spec.version.value)
            except grpc.RpcError as error:
                results.append(error)


def test_a_named_model_is_the_only_one_served(served, tmp_path):
    import shutil

    base = tmp_path / "models"
    for name in ("shapes", "other"):
        shutil.copytree(served["root"] / "models" / "shapes" / "1", base / name / "1")
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
    shutil.copytree(served["root"] / "models" / "shapes" / "1", base / "shapes" / "1")
    server = Server(ServeSettings(str(base), rest_port=0, grpc_port=0, poll_seconds=0.2))
    server.start()
    try:
        stop, results = threading.Event(), []
        clients = [threading.Thread(target=grpc_version_loop,
                                    args=(f"127.0.0.1:{server.grpc_port}", JPEG, stop, results))
                   for _ in range(2)]
        for client in clients:
            client.start()
        time.sleep(1.0)
        export(str(served["run"]), str(base / "shapes"))  # version 2 appears while requests flow
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and 2 not in results[-5:]:
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        for client in clients:
            client.join(timeout=60)
    finally:
        server.stop()
    failures = [result for result in results if isinstance(result, grpc.RpcError)]
    assert not failures, failures[:3]
    assert results[0] == 1 and results[-1] == 2
    switch = results.index(2)
    assert all(version == 2 for version in results[switch + 2:]), "once switched, requests stay on the new version"


@pytest.mark.slow
def test_a_bounded_load_run_has_no_errors(served):
    import concurrent.futures
    import time

    body = json.dumps({"instances": [b64(JPEG)]}).encode()

    def one(_):
        started = time.perf_counter()
        status, _ = rest(served, "/v1/models/shapes:predict", body)
        return status, time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(2000)))
    assert [status for status, _ in results if status != 200] == []
    latencies = np.array([seconds for _, seconds in results]) * 1000
    print(f"2000 requests at concurrency 8: p50 {np.percentile(latencies, 50):.1f} ms, "
          f"p99 {np.percentile(latencies, 99):.1f} ms")


def test_server_side_batching_joins_concurrent_requests_with_the_same_answers(served, tmp_path):
    import concurrent.futures

    batched = Server(ServeSettings(str(served["root"] / "models"), rest_port=0, grpc_port=0,
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


def test_the_serve_command_starts_on_loopback_and_stops_on_sigterm(served, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    rest_port, grpc_port = free_ports(2)
    models = str(served["root"] / "models")
    process = subprocess.Popen([sys.executable, "-m", "boxflow", "serve", "--model-base", models, "--name", "shapes",
                                "--rest-port", str(rest_port), "--grpc-port", str(grpc_port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/shapes", timeout=5) as answer:
                    assert json.load(answer)["model_version_status"][0]["state"] == "AVAILABLE"
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("boxflow serve did not answer within 120 s")
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    finally:
        process.kill()
    assert process.returncode == 0, output[-2000:]
    assert f"REST http://127.0.0.1:{rest_port}, gRPC 127.0.0.1:{grpc_port}" in output and "stopped" in output
    assert os.path.exists(served["root"] / "models" / "models.config")
