"""The Prometheus registry: exact text format, a line parser of the format, and the bot's own metrics."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pytest

from bot.core.metrics import Counter, Gauge, Histogram, Metrics, Registry, format_value

# One sample line of the 0.0.4 text format: name, optional {labels}, value (no timestamps from us).
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text: str) -> tuple[dict[str, str], dict[str, str], list[tuple[str, dict[str, str], float]]]:
    """A small, strict parser: HELP and TYPE per family, then samples whose labels unescape cleanly."""
    assert text.endswith("\n")
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    samples: list[tuple[str, dict[str, str], float]] = []
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            assert name not in helps
            helps[name] = doc.replace("\\n", "\n").replace("\\\\", "\\")
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped")
            assert name in helps and name not in types
            types[name] = kind
        else:
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, _, raw_labels, value = m.groups()
            labels: dict[str, str] = {}
            pos = 0
            while raw_labels and pos < len(raw_labels):
                lm = _LABEL.match(raw_labels, pos)
                assert lm, f"bad labels in {line!r}"
                labels[lm.group(1)] = re.sub(r"\\(.)", lambda c: "\n" if c.group(1) == "n" else c.group(1), lm.group(2))
                pos = lm.end()
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in types, f"sample {name} before its TYPE"
            samples.append((name, labels, float(value)))
    return helps, types, samples


def test_exact_text_format() -> None:
    reg = Registry()
    c = reg.register(Counter("demo_requests_total", "Requests.\nSecond line \\ with backslash.", ["path"]))
    g = reg.register(Gauge("demo_temperature", "Temperature."))
    h = reg.register(Histogram("demo_latency_seconds", "Latency.", ["op"], buckets=[0.1, 1]))
    c.inc(path='/a"b\\c\nd')
    c.inc(2.5, path="/")
    g.set(-3)
    h.observe(0.05, op="get")
    h.observe(0.5, op="get")
    h.observe(7, op="get")
    assert reg.render_now() == (
        "# HELP demo_requests_total Requests.\\nSecond line \\\\ with backslash.\n"
        "# TYPE demo_requests_total counter\n"
        'demo_requests_total{path="/"} 2.5\n'
        'demo_requests_total{path="/a\\"b\\\\c\\nd"} 1\n'
        "# HELP demo_temperature Temperature.\n"
        "# TYPE demo_temperature gauge\n"
        "demo_temperature -3\n"
        "# HELP demo_latency_seconds Latency.\n"
        "# TYPE demo_latency_seconds histogram\n"
        'demo_latency_seconds_bucket{op="get",le="0.1"} 1\n'
        'demo_latency_seconds_bucket{op="get",le="1.0"} 2\n'
        'demo_latency_seconds_bucket{op="get",le="+Inf"} 3\n'
        'demo_latency_seconds_sum{op="get"} 7.55\n'
        'demo_latency_seconds_count{op="get"} 3\n'
    )
    helps, types, samples = parse(reg.render_now())
    assert helps["demo_requests_total"] == "Requests.\nSecond line \\ with backslash."
    assert types == {"demo_requests_total": "counter", "demo_temperature": "gauge", "demo_latency_seconds": "histogram"}
    assert ("demo_requests_total", {"path": '/a"b\\c\nd'}, 1.0) in samples


def test_label_names_are_checked() -> None:
    c = Counter("x_total", "X.", ["a"])
    with pytest.raises(ValueError, match="x_total takes a; got b"):
        c.inc(b="1")
    with pytest.raises(ValueError, match="cannot go down"):
        c.inc(-1, a="1")
    with pytest.raises(ValueError, match="reserved"):
        Histogram("h", "H.", ["le"])
    reg = Registry()
    reg.register(Gauge("g", "G."))
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Gauge("g", "G."))


def test_gauge_and_counter_values() -> None:
    g = Gauge("g", "G.", ["k"])
    g.inc(k="a")
    g.inc(4, k="a")
    g.dec(2, k="a")
    assert g.value(k="a") == 3
    assert g.value(k="never") == 0
    h = Histogram("h", "H.")
    for v in (0.01, 0.2, 100):
        h.observe(v)
    assert (h.count(), h.sum()) == (3, pytest.approx(100.21))


def test_format_value() -> None:
    assert format_value(3.0) == "3"
    assert format_value(1_234_567) == "1234567"
    assert format_value(0.25) == "0.25"
    assert format_value(math.inf) == "+Inf" and format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"


async def test_bot_metrics_render_and_parse() -> None:
    m = Metrics()
    states = {"submitted": 3, "succeeded": 10}

    async def count_by_state() -> Mapping[str, int]:
        return states

    m.watch_jobs(count_by_state)
    m.runware_requests.inc(task_type="videoInference", outcome="ok")
    m.runware_latency.observe(0.12, task_type="getResponse")
    m.webhooks.inc(outcome="ok")
    m.webhooks.inc(outcome="bad_secret")
    m.deliveries.inc(outcome="attachment")
    m.spend_micros.inc(490_000, mode="real")

    _, types, samples = parse(await m.render())
    assert types == {
        "hailuo_jobs": "gauge",
        "hailuo_runware_requests_total": "counter",
        "hailuo_runware_request_duration_seconds": "histogram",
        "hailuo_webhooks_total": "counter",
        "hailuo_deliveries_total": "counter",
        "hailuo_spend_micros_total": "counter",
    }
    got = {(name, tuple(sorted(labels.items()))): value for name, labels, value in samples}
    assert got[("hailuo_jobs", (("state", "submitted"),))] == 3
    assert got[("hailuo_jobs", (("state", "reserved"),))] == 0  # every state is present
    assert got[("hailuo_runware_requests_total", (("outcome", "ok"), ("task_type", "videoInference")))] == 1
    assert got[("hailuo_runware_request_duration_seconds_count", (("task_type", "getResponse"),))] == 1
    assert got[("hailuo_runware_request_duration_seconds_bucket", (("le", "0.25"), ("task_type", "getResponse")))] == 1
    assert got[("hailuo_runware_request_duration_seconds_bucket", (("le", "0.1"), ("task_type", "getResponse")))] == 0
    assert got[("hailuo_webhooks_total", (("outcome", "bad_secret"),))] == 1
    assert got[("hailuo_deliveries_total", (("outcome", "attachment"),))] == 1
    assert got[("hailuo_deliveries_total", (("outcome", "existing"),))] == 0  # present before any
    assert got[("hailuo_spend_micros_total", (("mode", "real"),))] == 490_000
    assert got[("hailuo_spend_micros_total", (("mode", "dry_run"),))] == 0

    states["submitted"] = 0  # the collector runs again at the next scrape
    _, _, samples = parse(await m.render())
    assert ("hailuo_jobs", {"state": "submitted"}, 0.0) in samples


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
    a.webhooks.inc(outcome="ok")
    assert b.webhooks.value(outcome="ok") == 0
