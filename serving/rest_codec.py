"""TF Serving's REST predict bodies ↔ numpy inputs and outputs (pure; no I/O, no model).

Request: `{"signature_name": …, "instances": [...]}` (row format: one entry per example,
a value for a one-input signature or an object of named inputs) or `{"inputs": …}`
(columnar: a value, or an object of named inputs, each batched). Binary values are
`{"b64": "…"}`. Response: `{"predictions": [{output: value}, …]}` for rows, `{"outputs":
{output: value}}` for columns, as TF Serving answers.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable, Mapping

import numpy as np

from serving.errors import BadRequest


def _unwrap_binary(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            if not isinstance(value["b64"], str):
                raise BadRequest("'b64' must hold a base64 string")
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest("invalid base64 in a {\"b64\": …} value") from None
        raise BadRequest(f"unexpected object {sorted(value)} where a value was expected")
    if isinstance(value, list):
        return [_unwrap_binary(item) for item in value]
    return value


def _array(value: Any, dtype: np.dtype, input_name: str) -> np.ndarray:
    value = _unwrap_binary(value)
    try:
        if dtype == np.object_:
            array = np.array(value, dtype=object)
            if not all(isinstance(item, (bytes, str)) for item in array.reshape(-1)):
                raise ValueError("expected strings or {\"b64\": …} values")
            return np.vectorize(lambda item: item.encode() if isinstance(item, str) else item, otypes=[object])(array)
        array = np.array(value)
        if array.dtype == np.object_:
            raise ValueError("rows of different lengths")
        wanted = np.dtype(dtype).name
        if array.size and array.dtype.kind in "SU":
            raise ValueError(f"expected {wanted} numbers, got strings or {{\"b64\": …}} values")
        if np.issubdtype(dtype, np.integer) and array.size:
            if not np.issubdtype(array.dtype, np.integer):
                raise ValueError(f"expected {wanted} integers, got {array.dtype.name} values")
            limits = np.iinfo(dtype)
            if array.min() < limits.min or array.max() > limits.max:
                raise ValueError(f"values outside {wanted} ({limits.min}..{limits.max})")
        return array.astype(dtype)
    except (TypeError, ValueError) as error:
        raise BadRequest(f"input '{input_name}': {error}") from None


def parse_predict_request(body: bytes, input_dtypes_for: Callable[[str], Mapping[str, np.dtype]]
                          ) -> tuple[str, dict[str, np.ndarray], bool]:
    """`(signature_name, inputs by name, row_format)`; `input_dtypes_for(signature_name)` gives
    that signature's inputs (and raises for an unknown one)."""
    try:
        return _parse_predict_request(body, input_dtypes_for)
    except RecursionError:  # from json.loads or the unwrapping of deeply nested lists
        raise BadRequest("request JSON is nested too deeply") from None


def _parse_predict_request(body: bytes, input_dtypes_for: Callable[[str], Mapping[str, np.dtype]]
                           ) -> tuple[str, dict[str, np.ndarray], bool]:
    if not body:
        raise BadRequest("empty request body; expected JSON with 'instances' or 'inputs'")
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from None
    if not isinstance(request, dict):
        raise BadRequest("request body must be a JSON object with 'instances' or 'inputs'")
    if ("instances" in request) == ("inputs" in request):
        raise BadRequest("request must have exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    signature_name = request.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise BadRequest("'signature_name' must be a string")
    input_dtypes = input_dtypes_for(signature_name)
    names = list(input_dtypes)
    if "instances" in request:
        instances = request["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadRequest("'instances' must be a non-empty list")
        columns: dict[str, list] = {name: [] for name in names}
        for instance in instances:
            named = isinstance(instance, dict) and set(instance) != {"b64"}
            if named and set(instance) != set(names):
                raise BadRequest(f"each instance must name the inputs {names}, got {sorted(instance)}")
            if not named and len(names) != 1:
                raise BadRequest(f"the signature has inputs {names}: each instance must be an object naming them")
            for name in names:
                columns[name].append(instance[name] if named else instance)
        return signature_name, {name: _array(columns[name], input_dtypes[name], name) for name in names}, True
    inputs = request["inputs"]
    named = isinstance(inputs, dict) and set(inputs) != {"b64"}
    if named and set(inputs) != set(names):
        raise BadRequest(f"'inputs' must name the inputs {names}, got {sorted(inputs)}")
    if not named and len(names) != 1:
        raise BadRequest(f"the signature has inputs {names}: 'inputs' must be an object naming them")
    values = inputs if named else {names[0]: inputs}
    return signature_name, {name: _array(values[name], input_dtypes[name], name) for name in names}, False


def _json_value(array: np.ndarray) -> Any:
    if array.dtype == np.object_:
        return np.vectorize(lambda item: {"b64": base64.b64encode(item).decode()}, otypes=[object])(array).tolist()
    return array.tolist()


def predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    """The response body for `outputs` (each batched along axis 0). A single output is answered
    without its name, in both forms, as TF Serving does."""
    if len(outputs) == 1:
        (value,) = outputs.values()
        return {"predictions": _json_value(value)} if row_format else {"outputs": _json_value(value)}
    if not row_format:
        return {"outputs": {name: _json_value(value) for name, value in outputs.items()}}
    rows = len(next(iter(outputs.values())))
    # Each row as an array of its own (0-d for a scalar output: a string's becomes {"b64": …}).
    return {"predictions": [{name: _json_value(np.asarray(value[row], value.dtype)) for name, value in outputs.items()}
                            for row in range(rows)]}
