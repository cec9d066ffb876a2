"""The bot's Prometheus metrics, through prometheus_client: one CollectorRegistry per Metrics (per engine).

Nothing here is global, so tests never see each other's numbers. Gauges that mirror the database are filled at
scrape time by async collectors (`render` runs them, then prometheus_client writes the text format).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from bot.core.models import JobState

log = logging.getLogger(__name__)

# The `_created` series would double every counter; the README documents none.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
DEFAULT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Collector = Callable[[], Awaitable[None]]

DELIVERY_OUTCOMES = ("attachment", "link", "dm", "undeliverable", "existing")
SPEND_MODES = ("real", "dry_run")
WEBHOOK_OUTCOMES = ("ok", "duplicate", "bad_secret", "unknown_task", "bad_json", "too_large")


class Metrics:
    """The bot's metrics in their own registry. Label values are free strings; the help texts list the convention."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._collectors: list[Collector] = []
        reg = self.registry
        self.jobs = Gauge("hailuo_jobs", "Jobs in the database by state.", ["state"], registry=reg)
        self.runware_requests = Counter(
            "hailuo_runware_requests",
            "Runware API requests by task type and outcome (ok, rejected, unavailable, timeout).",
            ["task_type", "outcome"],
            registry=reg,
        )
        self.runware_latency = Histogram(
            "hailuo_runware_request_duration_seconds",
            "Runware API request latency in seconds, by task type.",
            ["task_type"],
            buckets=DEFAULT_BUCKETS,
            registry=reg,
        )
        self.webhooks = Counter(
            "hailuo_webhooks",
            "Webhook calls by outcome: ok, duplicate (accepted) or why refused (bad_secret, unknown_task, "
            "bad_json, too_large).",
            ["outcome"],
            registry=reg,
        )
        self.deliveries = Counter(
            "hailuo_deliveries",
            "Clips delivered by outcome: attachment, link, dm, undeliverable, or existing (found already posted "
            "after a restart, so not posted twice); `generate` counts file.",
            ["outcome"],
            registry=reg,
        )
        self.spend_micros = Counter(
            "hailuo_spend_micros",
            "Settled spend in micro-dollars (1 USD = 1000000), real or dry_run.",
            ["mode"],
            registry=reg,
        )
        for outcome in WEBHOOK_OUTCOMES:  # present at zero before the first one
            self.webhooks.labels(outcome=outcome)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome=outcome)
        for mode in SPEND_MODES:
            self.spend_micros.labels(mode=mode)

    def value(self, sample: str, **labels: str) -> float:
        """One sample's value as a scrape would show it (0 when it has not appeared yet)."""
        found = self.registry.get_sample_value(sample, labels)
        return 0.0 if found is None else found

    def add_collector(self, collector: Collector) -> None:
        """Run `collector` (an async callable that sets gauges) before every render."""
        self._collectors.append(collector)

    def watch_jobs(self, count_by_state: Callable[[], Awaitable[Mapping[str, int]]]) -> None:
        """Refresh `hailuo_jobs` from the store at each scrape; states with no jobs read 0."""

        async def collect() -> None:
            counts = await count_by_state()
            for state in JobState:
                self.jobs.labels(state=state.value).set(counts.get(state.value, 0))

        self.add_collector(collect)

    async def render(self) -> str:
        """Run the collectors, then the text exposition format; a failed collector is logged, not fatal."""
        for collector in self._collectors:
            try:
                await collector()
            except Exception:
                log.exception("metrics collector %r failed; its gauges keep their last values", collector)
        return generate_latest(self.registry).decode()
