"""Status and metadata answers in TF Serving's protos, shared by the REST and gRPC APIs."""

from __future__ import annotations

from google.protobuf import json_format

from contracts.export_schema import DEFAULT_SIGNATURE

from serving.model_registry import LoadedVersion, VersionState


def status_response(states: list[VersionState]):
    """`GetModelStatusResponse` listing `states`; a version that failed to load carries its error."""
    from tensorflow_serving.apis import get_model_status_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    for state in states:
        status = response.model_version_status.add(
            version=state.version, state=get_model_status_pb2.ModelVersionStatus.State.Value(state.state))
        status.status.error_code = 2 if state.error else 0  # UNKNOWN, OK
        status.status.error_message = state.error
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


def classify_or_regress_refusal(version: LoadedVersion, signature_name: str, method: str) -> str:
    """TF Serving's answer to `:classify` or `:regress` on a signature that is not one (its checks
    in order, without the method-name check it leaves off by default). boxflow's detection
    signatures take images and give four outputs, so TF Serving refuses them; `boxflow serve`
    answers `:predict` only, so a signature that would pass is refused too, saying so."""
    name = signature_name or DEFAULT_SIGNATURE
    if name not in version.signature_defs.signature_def:
        return f"No signature was found with the name: {name}"
    signature = version.signature_defs.signature_def[name]
    if len(signature.inputs) != 1:
        return "Expected one input Tensor."
    if method == "classify" and len(signature.outputs) not in (1, 2):
        return f"Expected one or two output Tensors, found {len(signature.outputs)}"
    if method == "regress" and len(signature.outputs) != 1:
        return "Expected one output Tensor."
    if "inputs" not in signature.inputs:
        kind = "classification" if method == "classify" else "regression"
        return f"No {kind} inputs found in SignatureDef: {signature}"
    return f"boxflow serve answers :predict only; use TensorFlow Serving for :{method}"
