"""The bot's metrics: the names and types the README documents, read back by prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from bot.core.metrics import Metrics
from tests.helpers import metric_value, parse_metrics

DOCUMENTED = {
    "hailuo_jobs": "gauge",
    "hailuo_runware_requests_total": "counter",
    "hailuo_runware_request_duration_seconds": "histogram",
    "hailuo_webhooks_total": "counter",
    "hailuo_deliveries_total": "counter",
    "hailuo_spend_micros_total": "counter",
}


async def test_bot_metrics_render_and_parse() -> None:
    m = Metrics()
    states = {"submitted": 3, "succeeded": 10}

    async def count_by_state() -> Mapping[str, int]:
        return states

    m.watch_jobs(count_by_state)
    m.runware_requests.labels(task_type="videoInference", outcome="ok").inc()
    m.runware_latency.labels(task_type="getResponse").observe(0.12)
    m.webhooks.labels(outcome="ok").inc()
    m.webhooks.labels(outcome="bad_secret").inc()
    m.deliveries.labels(outcome="attachment").inc()
    m.spend_micros.labels(mode="real").inc(490_000)

    got, types = parse_metrics(await m.render())
    assert types == DOCUMENTED
    assert metric_value(got, "hailuo_jobs", state="submitted") == 3
    assert metric_value(got, "hailuo_jobs", state="reserved") == 0  # every state is present
    assert metric_value(got, "hailuo_runware_requests_total", outcome="ok", task_type="videoInference") == 1
    assert metric_value(got, "hailuo_runware_request_duration_seconds_count", task_type="getResponse") == 1
    bucket = "hailuo_runware_request_duration_seconds_bucket"
    assert metric_value(got, bucket, le="0.25", task_type="getResponse") == 1
    assert metric_value(got, bucket, le="0.1", task_type="getResponse") == 0
    assert metric_value(got, "hailuo_webhooks_total", outcome="bad_secret") == 1
    assert metric_value(got, "hailuo_deliveries_total", outcome="attachment") == 1
    assert metric_value(got, "hailuo_deliveries_total", outcome="existing") == 0  # present before any
    assert metric_value(got, "hailuo_spend_micros_total", mode="real") == 490_000
    assert metric_value(got, "hailuo_spend_micros_total", mode="dry_run") == 0
    assert not [name for name, _ in got if name.endswith("_created")]  # no series the README does not name

    states["submitted"] = 0  # the collector runs again at the next scrape
    assert metric_value(await m.render(), "hailuo_jobs", state="submitted") == 0


async def test_failed_collector_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics()

    async def broken() -> None:
        raise RuntimeError("store closed")

    m.add_collector(broken)
    text = await m.render()
    assert "hailuo_deliveries_total" in text
    assert "collector" in caplog.text and "store closed" in caplog.text


def test_instances_do_not_share_state() -> None:
    a, b = Metrics(), Metrics()
    a.webhooks.labels(outcome="ok").inc()
    assert a.value("hailuo_webhooks_total", outcome="ok") == 1
    assert b.value("hailuo_webhooks_total", outcome="ok") == 0


def test_spend_in_micro_dollars_stays_exact() -> None:
    m = Metrics()
    m.spend_micros.labels(mode="real").inc(123_456_789)
    assert m.value("hailuo_spend_micros_total", mode="real") == 123_456_789
