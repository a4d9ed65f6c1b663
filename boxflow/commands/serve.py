"""`boxflow serve`: TF Serving's REST and gRPC APIs over a model base, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Sequence

from serving.request_limits import RequestLimits


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("serve", help="serve a model base over TF Serving's REST and gRPC APIs")
    parser.add_argument("--model-base", required=True, help="folder of MODEL_BASE/NAME/VERSION SavedModels")
    parser.add_argument("--name", help="serve only MODEL_BASE/NAME (default: every model under the base)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    parser.add_argument("--rest-port", type=int, default=8501)
    parser.add_argument("--grpc-port", type=int, default=8500)
    parser.add_argument("--batching", action="store_true", help="join concurrent requests into batches")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0)
    parser.add_argument("--max-request-bytes", type=int, default=32 * 1024 * 1024)
    parser.add_argument("--max-instances", type=int, default=RequestLimits.max_instances,
                        help=f"images per request, at most (default {RequestLimits.max_instances})")
    parser.add_argument("--max-image-pixels", type=int, default=RequestLimits.max_image_pixels,
                        help="width x height of one image, at most, read from its header before decoding "
                             f"(default {RequestLimits.max_image_pixels})")
    parser.add_argument("--max-answer-bytes", type=int, default=RequestLimits.max_answer_bytes,
                        help="bytes of one answer's tensors, at most, reckoned from the outputs' shapes and the "
                             f"images' sizes before the model runs (default {RequestLimits.max_answer_bytes})")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="how often new versions are looked for")


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    import signal
    import threading

    from serving.predictor import BatchingSettings
    from serving.server import Server, ServeSettings

    batching = BatchingSettings(args.max_batch_size, args.batch_timeout_ms / 1000)  # checked even when unused
    limits = RequestLimits(args.max_instances, args.max_image_pixels, args.max_answer_bytes)
    server = Server(ServeSettings(args.model_base, args.name, args.host, args.rest_port, args.grpc_port,
                                  args.poll_seconds, batching if args.batching else None, args.max_request_bytes,
                                  limits), on_load=print)
    server.start()
    print(f"serving {', '.join(server.registry.names())}: REST http://{args.host}:{server.rest_port}, "
          f"gRPC {args.host}:{server.grpc_port}; Ctrl-C stops", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    print("stopped")
    return 0
