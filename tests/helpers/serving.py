"""What the serving tests share: REST calls as a plain client makes them, the bad requests every
server must refuse with TF Serving's answer, `boxflow serve` run in its own process so that its
memory can be read from outside, and an export's answers asked as `boxflow evaluate` asks."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Optional, Union

import tensorflow as tf
from PIL import Image

from tests.builders import free_ports, jpeg_bytes

JPEG = jpeg_bytes(100, 80, 5)
TINY_JPEG = jpeg_bytes(8, 8)


def rest(base_url: str, path: str, body: Union[bytes, dict, list, None] = None,
         method: Optional[str] = None) -> tuple[int, dict]:
    """`(status, JSON answer)` of one REST call; `body` is sent as is when bytes, else as JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data,
                                     method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def png_of_size(width: int, height: int) -> bytes:
    """A blank grayscale PNG: a few KB that decode to `width * height` pixels."""
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def example_holding(image: bytes) -> bytes:
    return tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))})).SerializeToString()


HUGE_PNG = png_of_size(6000, 5000)  # 29 KB, over the default 25,000,000-pixel limit

# (path, body, status, message) the served tiny model must answer for each bad request, with
# TF Serving's words where it has its own.
BAD_REQUESTS = [
    ("/v1/models/shapes:predict", b"{not json", 400, "not valid JSON"),
    ("/v1/models/shapes:predict", {"instances": [b64(JPEG)], "inputs": [b64(JPEG)]}, 400, "exactly one of"),
    ("/v1/models/shapes:predict", {"instances": [{"b64": "%%%not base64"}]}, 400, "invalid base64"),
    ("/v1/models/shapes:predict", {"instances": [b64(b"these bytes are no image")]}, 400, "image"),
    ("/v1/models/shapes:predict", {"instances": [b64(JPEG[: len(JPEG) // 2])]}, 400, "Invalid JPEG data"),
    ("/v1/models/shapes:predict", b"[" * 50_000 + b"]" * 50_000, 400, "request JSON is nested too deeply"),
    ("/v1/models/shapes:predict", {"instances": [b64(TINY_JPEG)] * 65}, 400,
     "the request has 65 instances; the limit is 64 per request (boxflow serve --max-instances)"),
    ("/v1/models/shapes:predict", {"instances": [b64(JPEG), b64(HUGE_PNG)]}, 400,
     "input 'images', instance 1: the image is 6000x5000 pixels; the limit is 25000000 pixels per image"),
    ("/v1/models/shapes:predict", {"signature_name": "serve_examples", "instances": [b64(example_holding(HUGE_PNG))]},
     400, "input 'examples', instance 0: the image is 6000x5000 pixels"),
    ("/v1/models/shapes:predict", b"", 400, "empty request body"),
    ("/v1/models/nothing:predict", {"instances": [b64(JPEG)]}, 404, "Servable not found"),
    ("/v1/models/shapes/versions/7:predict", {"instances": [b64(JPEG)]}, 404, "Servable not found"),
    ("/v1/models/shapes:predict", {"signature_name": "nope", "instances": [b64(JPEG)]}, 400, "nope"),
    # TF Serving's own refusals of a detection signature (one input, four outputs):
    ("/v1/models/shapes:classify", {"examples": [{}]}, 400, "Expected one or two output Tensors, found 4"),
    ("/v1/models/shapes:regress", {"examples": [{}]}, 400, "Expected one output Tensor."),
    ("/v1/models/shapes:classify", {"signature_name": "nope", "examples": [{}]}, 400,
     "No signature was found with the name: nope"),
    ("/v1/models/shapes:explain", {"instances": [b64(JPEG)]}, 404, "Malformed request"),
]


class ServeProcess:
    """`python -m boxflow serve --model-base BASE FLAGS…` on free loopback ports, from the first
    answered status request until SIGTERM. Use as a context manager."""

    def __init__(self, model_base: str, *flags: str, model: str = "shapes"):
        self.rest_port, self.grpc_port = free_ports(2)
        self.command = [sys.executable, "-m", "boxflow", "serve", "--model-base", model_base, "--host", "127.0.0.1",
                        "--rest-port", str(self.rest_port), "--grpc-port", str(self.grpc_port), *flags]
        self.model = model
        self.process: Optional[subprocess.Popen] = None
        self.output = ""

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def __enter__(self) -> "ServeProcess":
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                status, answer = rest(self.rest_url, f"/v1/models/{self.model}")
                if status == 200 and answer["model_version_status"][-1]["state"] == "AVAILABLE":
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"boxflow serve did not answer within 120 s: {self.output[-2000:]}")

    def __exit__(self, *exception) -> None:
        self.stop()

    def stop(self) -> int:
        """Sends SIGTERM, waits, and returns the exit code; the output is kept in `self.output`."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.output = self.process.communicate(timeout=60)[0]
            finally:
                self.process.kill()
        return self.process.returncode

    def resident_megabytes(self) -> tuple[float, float]:
        """`(now, peak)`: the server's resident memory and its high-water mark since it started, in MiB."""
        fields = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                fields[name] = value
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@contextlib.contextmanager
def serving_run(data, run, model_base, **settings):
    """`boxflow serve` in this process over `model_base`, the session's export of `run` (model
    `shapes`), with `ServeSettings` `settings` beyond the ports: yields `{"server", "model" (the
    in-process model), "data", "rest" URL, "grpc" address}`."""
    from keras_models.runs.run_directory import load_trained_model
    from serving.server import Server, ServeSettings

    server = Server(ServeSettings(str(model_base), rest_port=0, grpc_port=0, poll_seconds=0.2, **settings))
    server.start()
    try:
        yield {"server": server, "model": load_trained_model(str(run)).model, "data": data,
               "rest": f"http://127.0.0.1:{server.rest_port}", "grpc": f"127.0.0.1:{server.grpc_port}"}
    finally:
        server.stop()


def grpc_predict(address: str, model_name: str, images: list[bytes]):
    """The official client's `PredictResponse` for encoded `images` sent to `serving_default`."""
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
    with grpc.insecure_channel(address) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)


def held_out_images_and_answer(served: dict, count: int = 8) -> tuple[list[bytes], dict]:
    """The first `count` val images of a `serving_run` and the in-process model's outputs on them,
    among which there is at least one detection to compare."""
    from keras_models.inference.detection_functions import detect_encoded_images
    from tests.builders import read_records

    images = [record["encoded"] for record in read_records(served["data"], "val")[:count]]
    reference = detect_encoded_images(served["model"], tf.constant(images))
    assert int(tf.reduce_sum(reference["num_detections"])) > 0
    return images, reference


# The batch a reference asks the export in and passes to `boxflow evaluate --batch-size`: a batch of
# another size rounds the convolutions otherwise, enough to move a pixel at a tie between two classes.
EVALUATION_BATCH = 16


def answers_as_evaluate_batches(signature, encoded: list[bytes], outputs: tuple[str, ...]) -> list[dict]:
    """Per image, `{output: int array}` of `signature`'s answer, asked in evaluate's batches."""
    answers = []
    for start in range(0, len(encoded), EVALUATION_BATCH):
        answer = signature(images=tf.constant(encoded[start:start + EVALUATION_BATCH]))
        answers.extend({name: answer[name][index].numpy().astype(int) for name in outputs}
                       for index in range(answer[outputs[0]].shape[0]))
    return answers
