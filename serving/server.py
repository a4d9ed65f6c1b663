"""`boxflow serve`: one process answering TF Serving's REST and gRPC APIs for a model base.

Wiring only: the registry (loaded versions), a watcher thread that loads new versions,
the predictor (optionally batching), the gRPC server, and the aiohttp app on an event
loop of its own thread. Ports given as 0 are chosen by the system (`rest_port` and
`grpc_port` tell which).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import threading
from typing import Callable, Optional

from aiohttp import web

from contracts.errors import BoxflowError
from serving import grpc_api, rest_api
from serving.model_registry import ModelRegistry
from serving.request_limits import RequestLimits
from serving.predictor import BatchingSettings, Predictor

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    model_base: str
    model_name: Optional[str] = None  # serve only MODEL_BASE/NAME; None serves every model
    host: str = "127.0.0.1"
    rest_port: int = 8501
    grpc_port: int = 8500
    poll_seconds: float = 2.0
    batching: Optional[BatchingSettings] = None
    max_request_bytes: int = 32 * 1024 * 1024
    limits: RequestLimits = RequestLimits()
    threads: int = 16

    def __post_init__(self) -> None:
        if self.model_name is not None and (self.model_name in ("", ".", "..") or "/" in self.model_name):
            raise BoxflowError(f"--name must be the name of a folder under --model-base, got {self.model_name!r}")
        if self.poll_seconds <= 0:
            raise BoxflowError(f"--poll-seconds must be positive, got {self.poll_seconds}")
        if self.max_request_bytes < 1024:
            raise BoxflowError(f"--max-request-bytes must be at least 1024, got {self.max_request_bytes}")
        if self.threads < 1:
            raise ValueError(f"ServeSettings.threads must be at least 1, got {self.threads}")


class Server:
    def __init__(self, settings: ServeSettings, on_load: Callable[[str], None] = LOG.info):
        self.settings, self.on_load = settings, on_load
        self.registry = ModelRegistry(settings.model_base, settings.model_name)
        self.predictor = Predictor(settings.batching, settings.limits)
        self.executor = concurrent.futures.ThreadPoolExecutor(settings.threads, thread_name_prefix="rest")
        self.rest_port = self.grpc_port = 0
        self._stopped = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None  # made once there is something to serve
        self._runner: Optional[web.AppRunner] = None
        self._threads: list[threading.Thread] = []
        self._grpc = None

    def start(self) -> None:
        self._report(self.registry.refresh())
        if not self.registry.names():
            base, name = self.settings.model_base, self.settings.model_name
            if name:
                raise BoxflowError(f"--model-base {base} --name {name}: no {base}/{name}/VERSION SavedModel to serve "
                                   f"(run boxflow export --out {base}/{name})")
            raise BoxflowError(f"--model-base {base}: no MODEL_BASE/NAME/VERSION SavedModel to serve "
                               "(run boxflow export)")
        self._grpc, self.grpc_port = grpc_api.make_server(self.registry, self.predictor,
                                                          f"{self.settings.host}:{self.settings.grpc_port}",
                                                          self.settings.max_request_bytes, self.settings.threads)
        self._grpc.start()
        self._loop = asyncio.new_event_loop()
        app = rest_api.make_app(self.registry, self.predictor, self.executor, self.settings.max_request_bytes)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.settings.host, self.settings.rest_port)
        try:
            self._loop.run_until_complete(site.start())
        except OSError as error:
            self._grpc.stop(grace=None)
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()
            address = f"{self.settings.host}:{self.settings.rest_port}"
            raise BoxflowError(f"--rest-port: cannot listen for REST on {address}: {error.strerror}") from None
        self.rest_port = self._runner.addresses[0][1]
        self._threads = [threading.Thread(target=self._loop.run_forever, name="rest-loop", daemon=True),
                         threading.Thread(target=self._watch, name="model-watcher", daemon=True)]
        for thread in self._threads:
            thread.start()

    def _watch(self) -> None:
        while not self._stopped.wait(self.settings.poll_seconds):
            try:
                self._report(self.registry.refresh())
            except Exception:  # the watcher must outlive any one bad poll, and say what went wrong
                LOG.exception("looking for new versions under %s failed; trying again", self.settings.model_base)

    def _report(self, loaded) -> None:
        for version in loaded:
            self.on_load(f"[serve] loaded {version.name} version {version.version} from {version.path}")

    def stop(self) -> None:
        self._stopped.set()
        if self._grpc:
            self._grpc.stop(grace=2).wait()
        if self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(timeout=10)
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        self.predictor.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
