"""TF Serving's gRPC API on grpcio: `PredictionService.Predict` / `GetModelMetadata` and
`ModelService.GetModelStatus`, with the tensorflow-serving-api protos and stubs."""

from __future__ import annotations

import concurrent.futures
import logging
import socket

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from contracts.errors import BoxflowError
from contracts.export_schema import DEFAULT_SIGNATURE
from serving import model_answers
from serving.errors import BadRequest, NotFound
from serving.model_registry import LoadedVersion, ModelRegistry
from serving.predictor import Predictor

LOG = logging.getLogger(__name__)


def _lookup(lookup, model_spec, context: grpc.ServicerContext):
    """`lookup(name, version, label)` for what `model_spec` names; its errors as TF Serving's codes."""
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = model_spec.version_label if model_spec.HasField("version_label") else None
    try:
        return lookup(model_spec.name, version, label)
    except NotFound as error:
        context.abort(grpc.StatusCode.NOT_FOUND, str(error).strip("'\""))
    except BadRequest as error:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))


def _loaded(registry: ModelRegistry, model_spec, context: grpc.ServicerContext) -> LoadedVersion:
    return _lookup(registry.get, model_spec, context)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry, predictor: Predictor):
        self.registry, self.predictor = registry, predictor

    def Predict(self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext):
        loaded = _loaded(self.registry, request.model_spec, context)
        failure = None
        try:
            inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            outputs = self.predictor.predict(loaded, request.model_spec.signature_name, inputs)
        except (BadRequest, TypeError, ValueError) as error:
            failure = grpc.StatusCode.INVALID_ARGUMENT, str(error)
        except Exception as error:  # a model or server failure, answered as TF Serving does
            LOG.exception("Predict failed")
            failure = grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}"
        if failure:
            context.abort(*failure)
        response = predict_pb2.PredictResponse(
            model_spec=model_answers.model_spec(loaded, request.model_spec.signature_name or DEFAULT_SIGNATURE))
        names = request.output_filter or list(outputs)
        for name in names:
            if name not in outputs:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"output_filter: no output named {name!r}")
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
        return response

    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,
                         context: grpc.ServicerContext):
        loaded = _loaded(self.registry, request.model_spec, context)
        if not request.metadata_field:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "GetModelMetadataRequest must specify at least one metadata_field")
        unsupported = [field for field in request.metadata_field if field != "signature_def"]
        if unsupported:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {unsupported[0]} is not supported")
        return model_answers.metadata_response(loaded)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def GetModelStatus(self, request, context: grpc.ServicerContext):
        return model_answers.status_response(_lookup(self.registry.states, request.model_spec, context))


def _check_free(address: str) -> None:
    """Refuses a busy port before gRPC tries it: gRPC core would log its own lines about the failed
    bind on stderr before boxflow's one. The probe sets SO_REUSEADDR as gRPC does, so a port left in
    TIME_WAIT by a server just stopped still counts as free."""
    host, _, port = address.rpartition(":")
    if port == "0":
        return
    try:
        family, kind, protocol, _, socket_address = socket.getaddrinfo(host.strip("[]"), int(port),
                                                                         type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(socket_address)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise BoxflowError(f"--grpc-port: cannot listen for gRPC on {address}: {reason}") from None


def make_server(registry: ModelRegistry, predictor: Predictor, address: str, max_request_bytes: int,
                threads: int = 16) -> tuple[grpc.Server, int]:
    """The (not yet started) server, and the port it bound (chosen by the system for port 0)."""
    # gRPC sets SO_REUSEPORT by default: a second server on a busy port, TF Serving's own 8500
    # say, then binds without an error (measured here) and the kernel shares the clients between the two.
    # An answer is bounded by --max-instances and the model's fixed output shapes, not by the
    # request's bytes: a Mask R-CNN's masks for 64 small JPEGs are 20 MB. It is sent whatever its size.
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=threads),
                         options=[("grpc.max_receive_message_length", max_request_bytes),
                                  ("grpc.max_send_message_length", -1),
                                  ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(registry, predictor), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(registry), server)
    _check_free(address)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        raise BoxflowError(f"--grpc-port: cannot listen for gRPC on {address}: the port is in use or the address "
                           "is not this machine's") from None
    return server, port
