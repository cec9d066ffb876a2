"""A loopback Runware simulator that speaks the API as strictly as Runware does (RUNWARE.md §11).

Used by dry-run mode and by every test. It validates tasks with the client's own wire models, acknowledges async
tasks, answers getResponse (cumulative, batched), sends webhooks with retries, PUTs to uploadEndpoint, serves real
MP4 bytes until the ttl runs out, and injects faults through `faults`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from bot.simulator.faults import (
    Faults,
    RecordedRequest,
    SimTask,
    UploadAttempt,
    WebhookAttempt,
    api_error,
    take_fault,
)
from bot.simulator.files import FileRoutes
from bot.simulator.tasks import TaskHandlers, _failed, _Outcome

__all__ = ["Faults", "RecordedRequest", "RunwareSimulator", "SimTask", "WebhookAttempt", "sample_clip"]

log = logging.getLogger(__name__)

DEFAULT_COSTS: dict[tuple[int, int, int], float] = {(1920, 1080, 6): 0.49, (1366, 768, 6): 0.28, (1366, 768, 10): 0.56}


def sample_clip() -> bytes:
    """The bundled 1 s, 64x36 H.264 MP4 served at every videoURL."""
    return resources.files("bot.simulator").joinpath("assets/sample.mp4").read_bytes()


class RunwareSimulator(TaskHandlers, FileRoutes):
    """aiohttp server on loopback; `start()` returns the API base URL to give the client."""

    def __init__(
        self,
        *,
        api_key: str | None = "sim-key",
        host: str = "127.0.0.1",
        port: int = 0,
        processing_seconds: float = 0.0,
        auto_complete: bool = True,
        accept_last_frame: bool = True,
        max_results: int = 20,
        costs: Mapping[tuple[int, int, int], float] | None = None,
        clip_bytes: bytes | None = None,
        webhook_retry_delays: Sequence[float] = (0.05, 0.2, 0.5),
        balance: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.processing_seconds = processing_seconds
        self.auto_complete = auto_complete
        self.max_results = max_results
        self.costs = dict(DEFAULT_COSTS if costs is None else costs)
        self.clip_bytes = clip_bytes if clip_bytes is not None else sample_clip()
        self.varied_clips = False  # True: each videoURL serves its own clip whose colour changes (clips.py)
        self.webhook_retry_delays = tuple(webhook_retry_delays)
        self.balance = balance  # None: unlimited; else spent per accepted task, insufficientCredits (402) when short
        self.faults = Faults(accept_last_frame=accept_last_frame)
        self.requests: list[RecordedRequest] = []
        self.tasks: dict[str, SimTask] = {}
        self.images: dict[str, tuple[bytes, str]] = {}  # imageUUID -> (bytes, mime)
        self.webhook_attempts: list[WebhookAttempt] = []
        self.uploads: list[UploadAttempt] = []
        self.base_url = ""
        self.origin = ""
        self._used_uuids: set[str] = set()
        self._videos: dict[str, SimTask] = {}
        self._clock_offset = 0.0
        self._rng = random.Random()
        self._background: set[asyncio.Task[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1", self._api)
        app.router.add_get("/video/{name}", self._video_file)
        app.router.add_get("/image/{name}", self._image_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.origin = f"http://{self.host}:{port}"
        self.base_url = f"{self.origin}/v1"
        self._http = aiohttp.ClientSession()
        return self.base_url

    async def close(self) -> None:
        self._closing.set()  # wakes stalled handlers and webhook retries
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> RunwareSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --------------------------------------------------------------------------------------------- test helpers

    def now(self) -> float:
        return asyncio.get_running_loop().time() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock (processing time, ttl expiry) forward without sleeping."""
        self._clock_offset += seconds
        for sim in list(self.tasks.values()):
            self._maybe_complete(sim)

    def finish(self, task_uuid: str) -> None:
        """Complete a task now (with its failure, if one was injected) and fire its webhooks."""
        sim = self.tasks[task_uuid]
        if sim.finished:
            return
        timer = self._timers.pop(task_uuid, None)
        if timer is not None:
            timer.cancel()
        sim.finished_at = self.now()
        fail = sim.fail
        failing = 0 if fail is None else len(sim.generations) if fail.generations is None else fail.generations
        for gen in sim.generations:
            if fail is not None and gen.index < failing:
                gen.status, gen.error_code, gen.error_message = "error", fail.code, fail.message
            else:
                gen.status = "success"
                self._videos[gen.video_uuid] = sim
        self._after_finish(sim)

    async def wait_webhooks_idle(self) -> None:
        """Wait until every pending webhook send and upload (including retries) has ended."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def submit_count(self, task_uuid: str | None = None) -> int:
        """How many videoInference tasks the client sent (every POST, even refused or faulted ones)."""
        return sum(
            1
            for req in self.requests
            for task in req.tasks
            if task.get("taskType") == "videoInference" and (task_uuid is None or task.get("taskUUID") == task_uuid)
        )

    def count(self, task_type: str) -> int:
        """How many POSTs carried at least one task of this taskType."""
        return sum(1 for req in self.requests if any(task.get("taskType") == task_type for task in req.tasks))

    # ---------------------------------------------------------------------------------------------- API: POST

    async def _api(self, request: web.Request) -> web.StreamResponse:
        record = RecordedRequest(request.path, request.method, [], at=self.now())
        self.requests.append(record)
        faults = self.faults
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._reply(record, 400, _failed(api_error("invalidJSON", "The request body is not valid JSON.")))
        if not isinstance(body, list) or not body or not all(isinstance(task, dict) for task in body):
            error = api_error("invalidRequestBody", "The request body must be a non-empty JSON array of task objects.")
            return self._reply(record, 400, _failed(error))
        record.tasks = body
        types = {str(task.get("taskType")) for task in body}
        if faults.latency:
            await self._stall(faults.latency)
        if fault := take_fault(faults.http_errors, types):
            record.status = int(fault.value)
            return web.Response(status=record.status, text="upstream trouble (simulated)")
        if fault := take_fault(faults.drops, types):
            if fault.value:
                self._handle(body, request.headers.get("Authorization", ""))
            return await self._drop(request, record)
        if fault := take_fault(faults.hangs, types):
            await self._stall(float(fault.value))
            if self._closing.is_set():
                record.status = 503
                return web.Response(status=503, text="shutting down")
        status, payload = self._handle(body, request.headers.get("Authorization", ""))
        if fault := take_fault(faults.accept_then_hangs, types):
            await self._stall(float(fault.value))
        record.status = status
        return web.json_response(payload, status=status)

    def _reply(self, record: RecordedRequest, status: int, outcome: _Outcome) -> web.Response:
        record.status = status
        return web.json_response({"errors": outcome.errors}, status=status)

    async def _drop(self, request: web.Request, record: RecordedRequest) -> web.StreamResponse:
        record.status = -1
        if request.transport is not None:
            request.transport.abort()
        response = web.StreamResponse()
        with contextlib.suppress(ConnectionResetError):
            await response.prepare(request)
        return response

    async def _stall(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _handle(self, body: list[dict[str, Any]], authorization: str) -> tuple[int, dict[str, Any]]:
        tasks = body
        key: str | None = None
        if tasks[0].get("taskType") == "authentication":
            key = tasks[0].get("apiKey") if isinstance(tasks[0].get("apiKey"), str) else None
            tasks = tasks[1:]
        elif authorization.startswith("Bearer "):
            key = authorization.removeprefix("Bearer ").strip()
        if self.api_key is not None and (key is None or not hmac.compare_digest(key, self.api_key)):
            error = api_error(
                "invalidApiKey", "Invalid API key.", parameter="apiKey", task_type="authentication", task_uuid=None
            )
            return 401, {"errors": [error]}
        if not tasks:  # authentication alone
            return 200, {"data": [{"taskType": "authentication", "connectionSessionUUID": str(uuid.uuid4())}]}
        handlers: dict[str, Callable[[dict[str, Any]], _Outcome]] = {
            "videoInference": self._video_inference,
            "getResponse": self._get_response,
            "imageUpload": self._image_upload,
            "accountManagement": self._account,
        }
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        any_ok, status = False, 0
        for raw in tasks:
            handler = handlers.get(str(raw.get("taskType")))
            if handler is None:
                message = f"Unsupported taskType {raw.get('taskType')!r}."
                error = api_error(
                    "unsupportedTaskType",
                    message,
                    parameter="taskType",
                    task_uuid=raw.get("taskUUID"),
                    allowedValues=sorted(handlers),
                )
                outcome = _failed(error)
            else:
                outcome = handler(raw)
            data += outcome.data
            errors += outcome.errors
            any_ok = any_ok or outcome.ok
            if not outcome.ok and not status:
                status = outcome.http_status
        payload: dict[str, Any] = {}
        if data or any_ok:
            payload["data"] = data
        if errors:
            payload["errors"] = errors
        return (200 if any_ok else status or 400), payload

    def _after_finish(self, sim: SimTask) -> None:
        if sim.task.webhook_url and not self.faults.drop_webhooks:
            data, errors = self._items(sim, webhook=True)
            bodies: list[dict[str, Any]] = [{"data": [item]} for item in data] + [{"errors": [e]} for e in errors]
            if self.faults.reverse_webhooks:
                bodies.reverse()
            for body in bodies:
                for _ in range(max(1, self.faults.duplicate_webhooks)):
                    self._spawn(self._send_webhook(sim.task.webhook_url, body))
        if sim.task.upload_endpoint:
            for gen in sim.generations:
                if gen.status == "success":
                    self._spawn(self._upload(sim.task.upload_endpoint))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_webhook(self, url: str, body: dict[str, Any]) -> None:
        if self.faults.webhook_delay:
            await self._stall(self.faults.webhook_delay)
        delays = self.webhook_retry_delays
        for attempt in range(len(delays) + 1):
            if self._closing.is_set() or self._http is None:
                return
            status: int | None = None
            try:
                async with self._http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                status = None
            self.webhook_attempts.append(WebhookAttempt(url, body, status, self.now()))
            if status is not None and 200 <= status < 300:
                return
            if attempt < len(delays):
                await self._stall(delays[attempt])

    async def _upload(self, url: str) -> None:
        if self._http is None:
            return
        status: int | None = None
        try:
            async with self._http.put(
                url,
                data=self.clip_bytes,
                headers={"Content-Type": "video/mp4"},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError):
            status = None
        self.uploads.append(UploadAttempt(url, len(self.clip_bytes), status))


async def _serve(args: argparse.Namespace) -> None:
    sim = RunwareSimulator(
        api_key=args.api_key, host=args.host, port=args.port, processing_seconds=args.processing_seconds
    )
    async with sim:
        log.info(
            "Runware simulator listening at %s (api key: %s)", sim.base_url, "any" if args.api_key is None else "set"
        )
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m bot.simulator.server --port 8765`: run the simulator standalone until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Loopback Runware API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=None, help="key to require (default: accept any)")
    parser.add_argument("--processing-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
