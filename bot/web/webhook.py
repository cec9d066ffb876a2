"""The webhook receiver (Runware → bot), plus /healthz and /metrics, on one aiohttp server."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import ValidationError

from bot.core.crashpoints import crash_point
from bot.core.metrics import CONTENT_TYPE, Metrics
from bot.core.tracker import JobTracker
from bot.runware.models import ResponseEnvelope
from bot.store.interface import Jobs

log = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/runware/"
#: `GET /runware/doctor-<hex>` answers probe_body(): how `doctor` sees that webhook.public_url reaches this server.
PROBE_PREFIX = "doctor-"

HealthCheck = Callable[[], Awaitable[dict[str, bool]]]


@dataclass
class WebhookDeps:
    jobs: Jobs
    tracker: JobTracker
    secret: str
    metrics: Metrics
    health: HealthCheck
    max_body_bytes: int


DEPS: web.AppKey[WebhookDeps] = web.AppKey("deps", WebhookDeps)


def webhook_url(public_url: str, secret: str) -> str:
    """The URL Runware is told to POST to: the public base, then a path holding the secret."""
    return f"{public_url.rstrip('/')}{WEBHOOK_PREFIX}{secret}"


def probe_body(probe: str) -> str:
    return f"hailuo-bot webhook listener: {probe}"


async def handle_probe(request: web.Request) -> web.Response:
    return web.Response(text=probe_body(PROBE_PREFIX + request.match_info["nonce"]))


def _reject(deps: WebhookDeps, status: int, reason: str) -> web.Response:
    deps.metrics.webhooks.labels(outcome=reason).inc()
    log.info("webhook rejected: %s (HTTP %d)", reason, status)
    return web.json_response({"error": reason}, status=status)


async def handle_webhook(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    given = request.match_info.get("secret", "")
    if not deps.secret or not hmac.compare_digest(given.encode(), deps.secret.encode()):
        return _reject(deps, 401, "bad_secret")
    if request.content_length is not None and request.content_length > deps.max_body_bytes:
        return _reject(deps, 413, "too_large")
    try:
        body = await request.content.read(deps.max_body_bytes + 1)
    except (OSError, ValueError):
        return _reject(deps, 400, "unreadable")
    if len(body) > deps.max_body_bytes:
        return _reject(deps, 413, "too_large")
    try:
        raw = json.loads(body)
        envelope = ResponseEnvelope.parse_any(raw)
    except (ValueError, ValidationError):
        return _reject(deps, 400, "bad_json")
    items = envelope.items
    errors = envelope.errors
    uuids = {i.task_uuid for i in items if i.task_uuid} | {e.task_uuid for e in errors if e.task_uuid}
    if not uuids:
        return _reject(deps, 400, "no_task")
    jobs = {}
    for uuid in uuids:
        job = await deps.jobs.by_task_uuid(uuid)
        if job is None:
            return _reject(deps, 404, "unknown_task")
        jobs[uuid] = job
    fresh = False
    touched: set[int] = set()
    for item in items:
        if item.task_uuid not in jobs:
            continue  # a stray entry without a taskUUID: the known ones still count
        job = jobs[item.task_uuid]
        stored = await deps.tracker.record_webhook_success(job, item)  # durable first, idempotent
        key = f"{item.task_uuid}:{item.video_uuid or item.status or 'item'}"
        if await deps.jobs.record_receipt(key, item.task_uuid) or stored:
            fresh = True
            touched.add(job.id)
    for err in errors:
        if err.task_uuid is None or err.task_uuid not in jobs:
            continue
        job = jobs[err.task_uuid]
        key = f"{err.task_uuid}:error:{err.code}:{(err.message or '')[:80]}"
        if not await deps.jobs.record_receipt(key, err.task_uuid):
            continue
        fresh = True
        await deps.tracker.record_webhook_failure(job, err)
    crash_point("after_webhook_receipt")
    deps.metrics.webhooks.labels(outcome="ok" if fresh else "duplicate").inc()
    for job_id in touched:
        deps.tracker.spawn_check(job_id)
    return web.json_response({"ok": True, "duplicate": not fresh})


async def handle_health(request: web.Request) -> web.Response:
    """200 when every part the bot needs is up (Discord, the database, the tracker), else 503 naming what is not."""
    deps = request.app[DEPS]
    try:
        checks = await deps.health()
    except Exception:
        log.exception("health check failed")
        checks = {"health_check": False}
    failing = sorted(name for name, up in checks.items() if not up)
    body = {"ok": not failing, "checks": checks, "failing": failing}
    return web.json_response(body, status=503 if failing else 200)


async def handle_metrics(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    text = await deps.metrics.render()
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def create_webhook_app(deps: WebhookDeps) -> web.Application:
    app = web.Application(client_max_size=deps.max_body_bytes)
    app[DEPS] = deps
    app.router.add_post(WEBHOOK_PREFIX + "{secret}", handle_webhook)
    app.router.add_get(WEBHOOK_PREFIX + PROBE_PREFIX + "{nonce:[0-9a-f]{1,64}}", handle_probe)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/metrics", handle_metrics)
    return app


class WebhookServer:
    """Owns the listening socket of the webhook app."""

    def __init__(self, deps: WebhookDeps, host: str, port: int) -> None:
        self._app = create_webhook_app(deps)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        # Shutdown waits at most 5 s for requests in flight (a webhook being stored), not aiohttp's 60 s.
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("webhook server listening on %s:%s", self._host, self.bound_port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
