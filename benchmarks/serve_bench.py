"""Serving speed, side by side in one run, on one exported tiny RetinaNet:

- p50 latency at batch 1: the loaded SavedModel called in-process, REST predict and gRPC
  predict against `boxflow serve` on loopback (interleaved rounds, sequential requests);
- throughput at concurrency 16 over REST, with server-side batching on and off.

The last line is the ratio REST p50 / in-process p50 (target <= 1.25).

    python benchmarks/serve_bench.py [--image-size 256] [--requests 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import shutil
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from beam_jobs.prepare_job import run as prepare  # noqa: E402
from beam_jobs.prepare_settings import PrepareSettings  # noqa: E402
from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset  # noqa: E402
from keras_models.training.train_job import run as train  # noqa: E402
from keras_models.training.train_settings import train_settings  # noqa: E402
from serving.export import export  # noqa: E402
from serving.predictor import BatchingSettings  # noqa: E402
from serving.server import Server, ServeSettings  # noqa: E402


def p50_ms(call, requests: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.percentile(times, 50) * 1000)


def throughput(call, requests: int, concurrency: int) -> float:
    call()
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: call(), range(requests)))
    return requests / (time.perf_counter() - started)


def rest_call(port: int, body: bytes):
    """A REST predict over a kept-alive connection per client thread, as an HTTP session does."""
    connections = threading.local()

    def call():
        if not hasattr(connections, "connection"):
            connections.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connections.connection.request("POST", "/v1/models/shapes:predict", body,
                                       {"Content-Type": "application/json"})
        response = connections.connection.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(answer)
    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="serve_bench_")
    servers = []
    try:
        write_synth_dataset(os.path.join(workdir, "synth"), 40, SynthConfig.for_image_size(args.image_size), seed=0)
        data = os.path.join(workdir, "data")
        prepare(PrepareSettings(source_format="coco", input_path=os.path.join(workdir, "synth", ANNOTATIONS_FILE),
                                out_dir=data, workers=1), progress=lambda _: None)
        run_dir = os.path.join(workdir, "run")
        train(train_settings(data, run_dir, image_size=args.image_size, epochs=1, batch_size=8, eval_every=0),
              progress=lambda _: None)
        result = export(run_dir, os.path.join(workdir, "models", "shapes"))
        image = tf.io.encode_jpeg(tf.cast(tf.random.uniform([args.image_size, args.image_size, 3], 0, 255,
                                                            seed=1), tf.uint8)).numpy()

        loaded = tf.saved_model.load(result.path)
        signature = loaded.signatures["serving_default"]
        in_process = lambda: signature(images=tf.constant([image]))["num_detections"].numpy()  # noqa: E731

        plain = Server(ServeSettings(os.path.join(workdir, "models"), rest_port=0, grpc_port=0))
        batched = Server(ServeSettings(os.path.join(workdir, "models"), rest_port=0, grpc_port=0,
                                       batching=BatchingSettings(max_batch_size=16, batch_timeout=0.005)))
        servers = [plain, batched]
        for server in servers:
            server.start()
        body = json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}]}).encode()
        channel = grpc.insecure_channel(f"127.0.0.1:{plain.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        grpc_request = predict_pb2.PredictRequest()
        grpc_request.model_spec.name = "shapes"
        grpc_request.inputs["images"].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))

        latencies = {"in-process": [], "REST": [], "gRPC": []}
        for round_index in range(args.rounds):
            latencies["in-process"].append(p50_ms(in_process, args.requests))
            latencies["REST"].append(p50_ms(rest_call(plain.rest_port, body), args.requests))
            latencies["gRPC"].append(p50_ms(lambda: stub.Predict(grpc_request, timeout=60), args.requests))
            print(f"round {round_index + 1}: p50 " + ", ".join(f"{name} {values[-1]:.2f} ms"
                                                              for name, values in latencies.items()), flush=True)
        best = {name: min(values) for name, values in latencies.items()}
        rates = {"batching off": throughput(rest_call(plain.rest_port, body), args.requests * 2, 16),
                 "batching on": throughput(rest_call(batched.rest_port, body), args.requests * 2, 16)}
        print("throughput at concurrency 16 over REST: " + ", ".join(f"{name} {rate:.1f} requests/s"
                                                                     for name, rate in rates.items()))
        print(f"batching on joined {batched.predictor.requests_batched} requests into "
              f"{batched.predictor.batches_run} model calls")
        print(f"gRPC p50 / in-process p50: {best['gRPC'] / best['in-process']:.2f}")
        print(f"REST p50 / in-process p50 (batch 1, {args.image_size}px tiny RetinaNet): "
              f"{best['REST'] / best['in-process']:.2f}")
        channel.close()
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
