"""TF Serving's REST API on aiohttp.

GET  /v1/models/NAME[/versions/V | /labels/L]                    status of every version
GET  /v1/models/NAME[/versions/V | /labels/L]/metadata           signature defs
POST /v1/models/NAME[/versions/V | /labels/L]:predict            row ("instances") or columnar ("inputs")
POST /v1/models/NAME[/versions/V | /labels/L]:classify|regress   TF Serving's refusal of other signatures

Labels come from `version_labels` in MODEL_BASE/models.config, as TF Serving reads them.

Errors answer `{"error": "…"}` with TF Serving's status codes: 400 for bad input or an
unknown signature, 404 for an unknown model, version or path, 413 for an oversized body.
Parsing, the model and encoding run in a thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from typing import Optional

from aiohttp import web

LOG = logging.getLogger(__name__)

from serving import model_answers, rest_codec
from serving.errors import BadRequest, NotFound
from serving.model_registry import ModelRegistry
from serving.predictor import Predictor, input_dtypes

_MODEL = r"/v1/models/{name:[^/:]+}"
_VERSION = r"/versions/{version:[^/:]+}"
_LABEL = r"/labels/{label:[^/:]+}"
_OTHER_METHOD = r":{method:classify|regress}"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _errors_as_json(max_request_bytes: int):
    @web.middleware
    async def middleware(request: web.Request, handler):
        return await _answer_errors(request, handler, max_request_bytes)

    return middleware


async def _answer_errors(request: web.Request, handler, max_request_bytes: int):
    try:
        return await handler(request)
    except BadRequest as error:
        return _error(400, str(error))
    except NotFound as error:
        return _error(404, str(error).strip("'\""))
    except web.HTTPRequestEntityTooLarge as error:
        return _error(413, f"request body too large: the limit is {max_request_bytes} bytes")
    except web.HTTPNotFound:
        return _error(404, f"Malformed request: {request.method} {request.path}")
    except web.HTTPMethodNotAllowed:
        return _error(405, f"Malformed request: {request.method} {request.path}")
    except web.HTTPException:
        raise
    except Exception as error:  # a model or server failure: still TF Serving's JSON, never aiohttp's text page
        LOG.exception("request %s %s failed", request.method, request.path)
        return _error(500, f"{type(error).__name__}: {error}")


def _named(request: web.Request) -> tuple[str, Optional[int], Optional[str]]:
    """`(name, version, label)` from `/v1/models/NAME[/versions/V | /labels/LABEL]`."""
    text = request.match_info.get("version")
    if text is not None and not text.isdigit():
        raise BadRequest(f"version must be a positive integer, got {text!r}")
    return request.match_info["name"], None if text is None else int(text), request.match_info.get("label")


def make_app(registry: ModelRegistry, predictor: Predictor, executor: concurrent.futures.Executor,
             max_request_bytes: int) -> web.Application:
    async def status(request: web.Request) -> web.Response:
        states = registry.states(*_named(request))
        return web.json_response(model_answers.to_json(model_answers.status_response(states)))

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response(model_answers.metadata_json(registry.get(*_named(request))))

    async def predict(request: web.Request) -> web.Response:
        # The version is fixed when the request arrives: a hot swap meanwhile does not affect it.
        loaded = registry.get(*_named(request))
        body = await request.read()

        def work() -> str:
            signature_name, inputs, row_format = rest_codec.parse_predict_request(
                body, lambda name: input_dtypes(loaded, name))
            outputs = predictor.predict(loaded, signature_name, inputs)
            return json.dumps(rest_codec.predict_response(outputs, row_format))

        text = await asyncio.get_running_loop().run_in_executor(executor, work)
        return web.Response(text=text, content_type="application/json")

    async def classify_or_regress(request: web.Request) -> web.Response:
        loaded = registry.get(*_named(request))
        try:
            signature_name = json.loads(await request.read() or b"{}").get("signature_name", "")
        except (ValueError, AttributeError, RecursionError):
            raise BadRequest("request body is not a JSON object") from None
        raise BadRequest(model_answers.classify_or_regress_refusal(loaded, str(signature_name),
                                                                   request.match_info["method"]))

    app = web.Application(middlewares=[_errors_as_json(max_request_bytes)], client_max_size=max_request_bytes)
    for prefix in (_MODEL, _MODEL + _VERSION, _MODEL + _LABEL):
        app.add_routes([web.get(prefix, status), web.get(prefix + "/metadata", metadata),
                        web.post(prefix + ":predict", predict), web.post(prefix + _OTHER_METHOD, classify_or_regress)])
    return app
