"""Running a signature of a loaded version on numpy inputs, with optional server-side batching.

`Predictor.predict` is blocking and thread-safe; the REST handlers call it from an executor
(never on the event loop) and the gRPC servicer from its worker threads. With batching,
concurrent requests for the same version, signature and per-example shape are joined along
the batch axis (up to `max_batch_size` examples, waiting at most `batch_timeout` seconds
for more) and run as one call, then split back per request.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import queue
import re
import threading
import time
from typing import Mapping, Optional

import numpy as np
import tensorflow as tf

from contracts.errors import BoxflowError
from serving.model_registry import LoadedVersion
from serving.errors import BadRequest
from serving.request_limits import RequestLimits

# A batch waits at most this long (seconds) for more requests: longer only adds latency.
MAX_BATCH_TIMEOUT = 1.0


@dataclasses.dataclass(frozen=True)
class BatchingSettings:
    max_batch_size: int = 32
    batch_timeout: float = 0.002  # seconds

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise BoxflowError(f"--max-batch-size must be at least 1, got {self.max_batch_size}")
        if not 0 <= self.batch_timeout <= MAX_BATCH_TIMEOUT:
            raise BoxflowError(f"--batch-timeout-ms must be between 0 and {MAX_BATCH_TIMEOUT * 1000:g}, got "
                               f"{self.batch_timeout * 1000:g}")


def input_dtypes(version: LoadedVersion, signature_name: str) -> dict[str, np.dtype]:
    """The signature's inputs by name, as numpy dtypes (tf.string → object)."""
    specs = version.signature(signature_name).structured_input_signature[1]
    return {name: (np.dtype(object) if spec.dtype == tf.string else np.dtype(spec.dtype.as_numpy_dtype))
            for name, spec in specs.items()}


def output_shapes(version: LoadedVersion, signature_name: str) -> dict[str, tuple[list, int]]:
    """The signature's outputs by name: `(static shape, None where unknown; bytes per value)`. An
    encoded output (tf.string, a semantic model's PNG masks) reads as an image of the largest input's
    height and width at 2 bytes per pixel: its PNG holds about one byte per pixel at worst, and REST
    answers it in base64."""
    specs = version.signature(signature_name).structured_outputs
    return {name: (spec.shape.as_list() + [None, None], 2) if spec.dtype == tf.string
            else (spec.shape.as_list(), spec.dtype.size) for name, spec in specs.items()}


def run_signature(version: LoadedVersion, signature_name: str, inputs: Mapping[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """One call of the signature; bad inputs (wrong names, shapes, undecodable images) → BadRequest."""
    function = version.signature(signature_name)
    specs = function.structured_input_signature[1]
    if set(inputs) != set(specs):
        raise BadRequest(f"inputs {sorted(inputs)} do not match the signature's {sorted(specs)}")
    tensors = {}
    for name, spec in specs.items():
        value = inputs[name]
        if not spec.shape.is_compatible_with(value.shape):
            raise BadRequest(f"input '{name}' has shape {list(value.shape)}, the signature takes "
                             f"{spec.shape.as_list()} (None: any size)")
        tensors[name] = tf.convert_to_tensor(value, dtype=spec.dtype)
    try:
        outputs = function(**tensors)
    except tf.errors.InvalidArgumentError as error:
        raise BadRequest(f"the model could not use the input: {_op_error_reason(error.message)}") from None
    return {name: value.numpy() for name, value in outputs.items()}


def _op_error_reason(message: str) -> str:
    """The reason line of a TensorFlow op error (e.g. 'Unknown image file format…'), without the
    'Graph execution error' preamble, node names and stack frames around it."""
    text = re.sub(r"\{\{[^}]*\}\}", "", message)
    lines = [line.strip() for line in text.splitlines()]
    reasons = [line for line in lines if line and not line.startswith(
        ("Graph execution error", "Detected at node", "File ", "[[")) and not line.endswith(":")]
    reason = reasons[-1] if reasons else lines[0]
    return re.sub(r"\s*(\[\[.*|\[Op:.*)$", "", reason).strip()


class Predictor:
    """Runs requests on a loaded version, one by one or joined in batches, after checking that
    each stays within the `limits` of work one request may cause."""

    def __init__(self, batching: Optional[BatchingSettings] = None, limits: RequestLimits = RequestLimits()):
        self.batching, self.limits = batching, limits
        self._queue: "queue.Queue[_Pending]" = queue.Queue()
        self._stopped = threading.Event()
        self._thread = None
        # Counted by the batching thread only: how many model calls served how many requests.
        self.batches_run = 0
        self.requests_batched = 0
        if batching:
            self._thread = threading.Thread(target=self._batch_loop, name="batcher", daemon=True)
            self._thread.start()

    def predict(self, version: LoadedVersion, signature_name: str, inputs: Mapping[str, np.ndarray]
                ) -> dict[str, np.ndarray]:
        self.limits.check(inputs, output_shapes(version, signature_name))
        if not self.batching:
            return run_signature(version, signature_name, inputs)
        pending = _Pending(version, signature_name, dict(inputs))
        if pending.rows > self.batching.max_batch_size:
            # Refused, not split, as TF Serving's batcher does without enable_large_batch_splitting.
            raise BadRequest(f"Task size {pending.rows} is larger than maximum input batch size "
                             f"{self.batching.max_batch_size} (boxflow serve --max-batch-size)")
        self._queue.put(pending)
        return pending.future.result()

    def close(self) -> None:
        self._stopped.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _batch_loop(self) -> None:
        waiting: list[_Pending] = []
        while not self._stopped.is_set():
            if not waiting:
                try:
                    waiting.append(self._queue.get(timeout=0.1))
                except queue.Empty:
                    continue
            first = waiting.pop(0)
            group, rows = [first], first.rows
            deadline = time.monotonic() + self.batching.batch_timeout
            while rows < self.batching.max_batch_size:
                try:
                    candidate = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
                if candidate.key == first.key and rows + candidate.rows <= self.batching.max_batch_size:
                    group.append(candidate)
                    rows += candidate.rows
                else:
                    waiting.append(candidate)
            self.batches_run += 1
            self.requests_batched += len(group)
            self._run_group(group)

    @staticmethod
    def _run_group(group: list["_Pending"]) -> None:
        first = group[0]
        try:
            joined = {name: np.concatenate([pending.inputs[name] for pending in group]) for name in first.inputs}
            outputs = run_signature(first.version, first.signature_name, joined)
        except Exception as error:  # each request gets the failure; a bad one fails its group alone below
            if len(group) > 1 and isinstance(error, BadRequest):
                for pending in group:  # find which request was bad: run them one by one
                    Predictor._run_group([pending])
                return
            for pending in group:
                pending.future.set_exception(error)
            return
        start = 0
        for pending in group:
            pending.future.set_result({name: value[start:start + pending.rows] for name, value in outputs.items()})
            start += pending.rows


class _Pending:
    def __init__(self, version: LoadedVersion, signature_name: str, inputs: dict[str, np.ndarray]):
        self.version, self.signature_name, self.inputs = version, signature_name, inputs
        self.rows = len(next(iter(inputs.values())))
        # Requests join only when the same call could take them all.
        self.key = (id(version), signature_name,
                    tuple((name, value.dtype.str, value.shape[1:]) for name, value in sorted(inputs.items())))
        self.future: concurrent.futures.Future = concurrent.futures.Future()
