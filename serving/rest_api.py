"""TF Serving's REST API on aiohttp.

GET  /v1/models/NAME[/versions/V]             model status
GET  /v1/models/NAME[/versions/V]/metadata    signature defs
POST /v1/models/NAME[/versions/V]:predict     row ("instances") or columnar ("inputs") bodies

Errors answer `{"error": "…"}` with TF Serving's status codes: 400 for bad input or an
unknown signature, 404 for an unknown model, version or path, 413 for an oversized body.
Parsing, the model and encoding run in a thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from typing import Optional

from aiohttp import web

from serving import model_answers, rest_codec
from serving.errors import BadRequest, NotFound
from serving.model_registry import ModelRegistry
from serving.predictor import Predictor, input_dtypes

_MODEL = r"/v1/models/{name:[^/:]+}"
_VERSION = r"/versions/{version:[^/:]+}"


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


def _version(request: web.Request) -> Optional[int]:
    text = request.match_info.get("version")
    if text is None:
        return None
    if not text.isdigit():
        raise BadRequest(f"version must be a positive integer, got {text!r}")
    return int(text)


def make_app(registry: ModelRegistry, predictor: Predictor, executor: concurrent.futures.Executor,
             max_request_bytes: int) -> web.Application:
    async def status(request: web.Request) -> web.Response:
        loaded = registry.get(request.match_info["name"], _version(request))
        return web.json_response(model_answers.to_json(model_answers.status_response(loaded)))

    async def metadata(request: web.Request) -> web.Response:
        loaded = registry.get(request.match_info["name"], _version(request))
        return web.json_response(model_answers.metadata_json(loaded))

    async def predict(request: web.Request) -> web.Response:
        # The version is fixed when the request arrives: a hot swap meanwhile does not affect it.
        loaded = registry.get(request.match_info["name"], _version(request))
        body = await request.read()

        def work() -> str:
            signature_name, inputs, row_format = rest_codec.parse_predict_request(
                body, lambda name: input_dtypes(loaded, name))
            outputs = predictor.predict(loaded, signature_name, inputs)
            return json.dumps(rest_codec.predict_response(outputs, row_format))

        text = await asyncio.get_running_loop().run_in_executor(executor, work)
        return web.Response(text=text, content_type="application/json")

    app = web.Application(middlewares=[_errors_as_json(max_request_bytes)], client_max_size=max_request_bytes)
    app.add_routes([
        web.get(_MODEL, status), web.get(_MODEL + _VERSION, status),
        web.get(_MODEL + "/metadata", metadata), web.get(_MODEL + _VERSION + "/metadata", metadata),
        web.post(_MODEL + ":predict", predict), web.post(_MODEL + _VERSION + ":predict", predict),
    ])
    return app
