"""Background work that is never lost silently: spawn() keeps a reference and logs failures; Loop runs rounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskGroup:
    """Owns one-off tasks: strong references, failures logged, drained or cancelled on shutdown."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: background task %s failed", self._name, task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float) -> bool:
        """Wait for running tasks up to `timeout` seconds; True if all finished."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def cancel_all(self) -> None:
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


class Loop:
    """Run `body` every `interval` seconds until stopped; a failed round is logged, never fatal."""

    def __init__(self, name: str, body: Callable[[], Awaitable[None]], interval: float) -> None:
        self.name = name
        self._body = body
        self.interval = interval
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self.failures = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Run the next round now instead of waiting out the interval."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._body()
            except Exception:  # CancelledError is not an Exception, so stop() still ends the loop
                self.failures += 1
                log.exception("%s: round failed; next try in %ss", self.name, self.interval)
            self.rounds += 1
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    waiter = asyncio.ensure_future(self._wake.wait())
                    stopper = asyncio.ensure_future(self._stopping.wait())
                    try:
                        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waiter.cancel()
                        stopper.cancel()

    async def stop(self, timeout: float = 10.0) -> None:
        """Let the current round finish (up to `timeout`), then end the loop."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class KeyedPool:
    """Runs `work(key)` on at most `workers` keys at once, apart from whoever submits them.

    A key submitted while it waits runs once; submitted while it runs, it runs once more afterwards (new work may
    have arrived meanwhile). Keys are job ids, so the queue is bounded by the jobs that have something to do.
    """

    def __init__(self, name: str, work: Callable[[int], Awaitable[None]], workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.name = name
        self._work = work
        self._workers = workers
        self._queue: deque[int] = deque()
        self._queued: set[int] = set()
        self._running: set[int] = set()
        self._again: set[int] = set()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._tasks = TaskGroup(name)

    def submit(self, key: int) -> None:
        if self._closed or key in self._queued:
            return
        if key in self._running:
            self._again.add(key)
            return
        self._queued.add(key)
        self._queue.append(key)
        self._idle.clear()
        while self._queue and self._active < self._workers:
            self._active += 1
            self._tasks.spawn(self._worker(), name=f"{self.name}-worker")

    @property
    def busy(self) -> int:
        """Keys running or waiting."""
        return len(self._running) + len(self._queue)

    async def _worker(self) -> None:
        try:
            while self._queue and not self._closed:
                key = self._queue.popleft()
                self._queued.discard(key)
                self._running.add(key)
                try:
                    await self._work(key)
                except Exception:
                    log.exception("%s: work on %s failed", self.name, key)
                finally:
                    self._running.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.submit(key)
        finally:
            self._active -= 1
            if not self._active:
                self._queue.clear()
                self._queued.clear()
                self._idle.set()

    async def idle(self) -> None:
        """Wait until nothing runs or waits."""
        await self._idle.wait()

    async def stop(self, timeout: float) -> None:
        """Take no more keys, let running work finish up to `timeout` seconds, then cancel it."""
        self._closed = True
        if not await self._tasks.drain(timeout):
            log.warning("%s: work still running after %.0fs; cancelling it", self.name, timeout)
        await self._tasks.cancel_all()
        self._idle.set()
