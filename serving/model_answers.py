"""Status and metadata answers in TF Serving's protos, shared by the REST and gRPC APIs."""

from __future__ import annotations

from google.protobuf import json_format

from serving.model_registry import LoadedVersion


def status_response(version: LoadedVersion):
    """`GetModelStatusResponse`: the served version, AVAILABLE."""
    from tensorflow_serving.apis import get_model_status_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    status = response.model_version_status.add(version=version.version,
                                               state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    status.status.error_code = 0  # OK
    return response


def model_spec(version: LoadedVersion, signature_name: str = ""):
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=version.name, signature_name=signature_name)
    spec.version.value = version.version
    return spec


def metadata_response(version: LoadedVersion):
    """`GetModelMetadataResponse` with the `signature_def` metadata (a packed SignatureDefMap)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=model_spec(version))
    response.metadata["signature_def"].Pack(version.signature_defs)
    return response


def to_json(message) -> dict:
    """A proto as TF Serving's REST API renders it (field names as in the .proto, enums by name)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def metadata_json(version: LoadedVersion) -> dict:
    # REST unpacks the Any that gRPC sends packed.
    return {"model_spec": to_json(model_spec(version)),
            "metadata": {"signature_def": to_json(version.signature_defs)}}
