"""Thin Runware REST client: one aiohttp session, a timeout on every call, and a submit that never doubles a task.

Every call is `POST {base_url}` with a JSON array of tasks (RUNWARE.md §1). Bodies are read whatever the status;
per-task errors are classified by code first, the HTTP status only as a fallback (§1.2, §7).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from bot.runware.answers import MAX_RETRY_AFTER, Answer, answer_error, envelope, retry_after_seconds, transient_status
from bot.runware.errors import TRANSIENT_KINDS, ErrorKind, RunwareError, RunwareUnavailable, classify
from bot.runware.models import (
    AccountDetails,
    AccountManagementTask,
    GetResponseTask,
    ImageUploadResult,
    ImageUploadTask,
    TaskAck,
    TaskStatus,
    VideoInferenceTask,
    get_response_wire,
    new_task_uuid,
)
from bot.runware.results import parse_result_item

if TYPE_CHECKING:
    from bot.core.metrics import Metrics

__all__ = ["RunwareClient", "RunwareStats", "TaskStatus"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Tasks = list[dict[str, Any]]


@dataclass(slots=True)
class RunwareStats:
    """Counters for metrics: POSTs by taskType, raised errors by kind, total seconds spent in requests."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    request_seconds: float = 0.0


def data_uri(data: bytes, mime: str) -> str:
    """The image as a `data:` URI, which Runware accepts wherever it takes an image."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class RunwareClient:
    """Runware over REST. Owns the one `aiohttp.ClientSession` unless one is injected; `http` lends it out."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 30.0,
        batch_size: int = 50,
        concurrency: int = 4,
        max_attempts: int = 3,
        backoff: float = 1.0,
        session: aiohttp.ClientSession | None = None,
        metrics: Metrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if batch_size < 1 or concurrency < 1 or max_attempts < 1:
            raise ValueError("batch_size, concurrency and max_attempts must be at least 1")
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session = session
        self._owns_session = False
        self.stats = RunwareStats()
        self._metrics = metrics

    def __repr__(self) -> str:  # never show the key
        return f"RunwareClient(base_url={self._base_url!r})"

    async def start(self) -> None:
        """Open the session (unless one was injected)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True

    async def close(self) -> None:
        """Close the session if this client opened it; an injected one belongs to its owner."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
            self._owns_session = False

    async def __aenter__(self) -> RunwareClient:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        """The shared session, lent to clip downloads. Borrowers never close it."""
        if self._session is None or self._session.closed:
            raise RuntimeError("RunwareClient is not started")
        return self._session

    # ------------------------------------------------------------------------------------------------ public API

    async def upload_image(self, data: bytes, mime: str) -> str:
        """Upload an image as a data URI and return its imageUUID, usable as a frame image."""
        uri = data_uri(data, mime)

        def build() -> Tasks:
            return [ImageUploadTask(task_uuid=new_task_uuid(), image=uri).to_wire()]

        def read(tasks: Tasks, answer: Answer) -> str:
            item = self._single_item(tasks, answer)
            return ImageUploadResult.model_validate(item).image_uuid

        return await self._counted(self._call(build, read))

    async def account_details(self) -> AccountDetails:
        """Balance and organisation details (`accountManagement getDetails`), for `doctor`."""

        def build() -> Tasks:
            return [AccountManagementTask(task_uuid=new_task_uuid()).to_wire()]

        def read(tasks: Tasks, answer: Answer) -> AccountDetails:
            return AccountDetails.model_validate(self._single_item(tasks, answer))

        return await self._counted(self._call(build, read))

    async def submit(self, task: VideoInferenceTask) -> None:
        """Submit with async delivery. Returns once Runware holds the task; raises RunwareError when refused.

        After an ambiguous outcome the task is looked up with getResponse before any retry, and a retry reuses the
        same taskUUID, so Runware never runs it twice (RUNWARE.md §3.5).
        """
        await self._counted(self._submit(task))

    async def get_responses(self, task_uuids: Sequence[str]) -> dict[str, TaskStatus]:
        """The state of each task (each asked once), `batch_size` tasks per POST, up to `concurrency` POSTs at once.
        After a batch fails (its retries spent) no batch starts, those under way end, and the first failure is raised.
        """
        wires = [get_response_wire(uuid) for uuid in dict.fromkeys(task_uuids)]  # checked before anything is sent
        batches = iter(range(0, len(wires), self._batch_size))
        out: dict[str, TaskStatus] = {}
        failures: list[BaseException] = []

        async def worker() -> None:
            for start in batches:  # one shared iterator: every batch is taken by exactly one worker
                if failures:
                    return
                batch = wires[start : start + self._batch_size]
                try:
                    out.update(await self._counted(self._call(partial(list, batch), self._read_statuses)))
                except Exception as exc:
                    failures.append(exc)
                    return

        await asyncio.gather(*(worker() for _ in range(min(self._concurrency, -(-len(wires) // self._batch_size)))))
        if failures:
            raise failures[0]
        return out

    # ------------------------------------------------------------------------------------------------- submit

    async def _submit(self, task: VideoInferenceTask) -> None:
        uuid = task.task_uuid
        wire = task.to_wire()
        last: RunwareUnavailable | None = None
        for attempt in range(self._max_attempts):
            if attempt:
                await self._sleep(self._delay(attempt, last))
            try:
                await self._submit_once(uuid, wire)
                log.debug("task=%s accepted by Runware", uuid)
                return
            except RunwareUnavailable as exc:
                last = exc
                log.warning("task=%s submit had no clear answer (%s); looking it up before any retry", uuid, exc)
            except RunwareError as exc:
                if exc.kind is ErrorKind.CONFLICT:
                    log.info("task=%s: Runware already holds this taskUUID (conflictTaskUUID); accepted", uuid)
                    return
                raise
            try:
                exists = await self._task_exists(uuid)
            except RunwareUnavailable as exc:
                raise RunwareUnavailable(
                    f"the submit's outcome is unknown: getResponse failed too ({exc})",
                    kind=exc.kind,
                    code=exc.code,
                    http_status=exc.http_status,
                    task_uuid=uuid,
                ) from None
            if exists:
                log.info("task=%s: getResponse knows the task; the earlier submit arrived", uuid)
                return
            if last is not None and last.retry_after is not None and last.retry_after > MAX_RETRY_AFTER:
                break  # Runware asked for a long pause: fail now (nothing is held, so nothing is billed)
            log.info("task=%s: getResponse does not know the task; submitting again with the same taskUUID", uuid)
        raise RunwareUnavailable(
            f"Runware did not accept the task after {self._max_attempts} attempts ({last})",
            kind=last.kind if last else ErrorKind.SERVER_ERROR,
            code=last.code if last else "unavailable",
            http_status=last.http_status if last else None,
            task_uuid=uuid,
            maybe_accepted=False,
        )

    async def _submit_once(self, uuid: str, wire: dict[str, Any]) -> None:
        answer = await self._post([wire])
        errors = answer.env.errors_for(uuid)
        if errors:
            raise answer_error(answer.status, errors[0], retry_after=answer.retry_after)
        for item in answer.env.items_for(uuid):
            TaskAck.model_validate(item)
            return
        raise RunwareUnavailable("the answer held no acknowledgement for the task", http_status=answer.status)

    async def _task_exists(self, uuid: str) -> bool:
        def build() -> Tasks:
            return [GetResponseTask(task_uuid=uuid).to_wire()]

        statuses = await self._call(build, self._read_statuses)
        return not statuses[uuid].not_found

    # ------------------------------------------------------------------------------------------------ reading

    def _read_statuses(self, tasks: Tasks, answer: Answer) -> dict[str, TaskStatus]:
        env = answer.env
        out = {uuid: TaskStatus(task_uuid=uuid) for uuid in (str(task["taskUUID"]) for task in tasks)}
        for raw in env.data:  # one pass, in the answer's order; items for tasks not asked about are ignored
            key = raw.get("taskUUID")
            status = out.get(key) if type(key) is str else None
            if status is None or status.take_plain(raw):  # most items: a task still processing, only counted
                continue
            item = parse_result_item(raw)  # a bad item (a negative or infinite cost ...) is logged and skipped
            if item is not None:
                status.add(item)
        unknown: list[TaskStatus] = []
        for error in env.errors:
            status = out.get(error.task_uuid or "")
            if status is None:
                continue
            kind = classify(error.code, None)
            if error.status != "error" and kind in TRANSIENT_KINDS:
                raise answer_error(None, error, retry_after=answer.retry_after)
            if error.status != "error" and kind is ErrorKind.NOT_FOUND:
                unknown.append(status)
                continue
            status.errors.append(error)
        for status in unknown:
            status.not_found = not (status.successes or status.processing_count or status.errors)
        return out

    def _single_item(self, tasks: Tasks, answer: Answer) -> dict[str, Any]:
        uuid = str(tasks[0]["taskUUID"])
        env = answer.env
        errors = env.errors_for(uuid)
        if errors:
            raise answer_error(answer.status, errors[0], retry_after=answer.retry_after)
        items = env.items_for(uuid) or [item for item in env.data if "taskUUID" not in item]
        if not items:
            raise RunwareUnavailable("the answer held no result for the task", http_status=answer.status)
        return items[0]

    # ---------------------------------------------------------------------------------------------- transport

    def _delay(self, attempt: int, last: RunwareUnavailable | None = None) -> float:
        """Exponential backoff with jitter (half fixed, half random), or Retry-After plus a little jitter."""
        base = float(self._backoff * 2 ** (attempt - 1))
        if last is not None and last.retry_after is not None:
            return last.retry_after + self._rng.uniform(0, min(base, 1.0))
        return base / 2 + self._rng.uniform(0, base / 2)

    async def _counted(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except RunwareError as exc:
            self.stats.errors[str(exc.kind)] += 1
            raise

    async def _call(self, build: Callable[[], Tasks], read: Callable[[Tasks, Answer], T]) -> T:
        """POST, read, and retry transient failures with backoff. Only for calls that are safe to repeat."""
        last: RunwareUnavailable | None = None
        for attempt in range(self._max_attempts):
            if attempt:
                await self._sleep(self._delay(attempt, last))
            tasks = build()
            try:
                return read(tasks, await self._post(tasks))
            except RunwareUnavailable as exc:
                last = exc
                kind = tasks[0]["taskType"]
                log.warning("Runware %s failed (%s); attempt %d of %d", kind, exc, attempt + 1, self._max_attempts)
                if exc.retry_after is not None and exc.retry_after > MAX_RETRY_AFTER:
                    break  # Runware asked for a long pause: fail now, the caller tries again later
        assert last is not None
        raise last

    async def _post(self, tasks: Tasks) -> Answer:
        """One POST. Raises for request-level failures; per-task errors are left in the envelope."""
        task_type = str(tasks[0].get("taskType", "?"))
        self.stats.requests[task_type] += 1
        started = time.monotonic()
        outcome = "ok"
        try:
            answer = await self._post_once(tasks)
            if answer.env.errors:
                outcome = "rejected"
            return answer
        except RunwareUnavailable as exc:
            outcome = "timeout" if exc.code == "clientTimeout" else "unavailable"
            raise
        except RunwareError:
            outcome = "rejected"
            raise
        finally:
            elapsed = time.monotonic() - started
            self.stats.request_seconds += elapsed
            if self._metrics is not None:
                self._metrics.runware_requests.labels(task_type=task_type, outcome=outcome).inc()
                self._metrics.runware_latency.labels(task_type=task_type).observe(elapsed)

    async def _post_once(self, tasks: Tasks) -> Answer:
        try:
            async with self.http.post(self._base_url, json=tasks, headers=self._headers, timeout=self._timeout) as r:
                status = r.status
                retry_after = retry_after_seconds(r.headers.get("Retry-After"))
                raw = await r.read()
        except TimeoutError:
            raise RunwareUnavailable(f"no answer within {self._timeout.total:g} s", code="clientTimeout") from None
        except aiohttp.ClientError as exc:
            raise RunwareUnavailable(f"connection failed ({type(exc).__name__})", code="connectionError") from None
        env = envelope(raw)
        if env is None:
            if status == 401:
                raise answer_error(status, code="invalidApiKey", message="API key refused", parameter="apiKey")
            ok = 200 <= status < 300  # a 2xx without a readable body: no clear answer
            message = "no readable JSON in the answer" if ok or transient_status(status) else "no readable JSON"
            code = "noBody" if ok or transient_status(status) else ""
            raise answer_error(status, code=code, message=message, retry_after=retry_after, transient=ok or None)
        ours = {task.get("taskUUID") for task in tasks}
        general = [e for e in env.errors if e.task_uuid not in ours]
        answered = any(item.get("taskUUID") in ours for item in env.data) or len(general) < len(env.errors)
        if general and not answered:
            raise answer_error(status, general[0], retry_after=retry_after)
        if not env.errors and not 200 <= status < 300:
            raise answer_error(status, message=f"HTTP {status}", retry_after=retry_after)
        return Answer(status, env, retry_after)
