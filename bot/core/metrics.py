"""A tiny Prometheus registry (text exposition format 0.0.4) and the bot's own metrics. No dependencies.

The bot makes one `Metrics()` and hands it to the parts that count things; nothing here is global, so tests
never see each other's numbers. Gauges that mirror the database are filled at scrape time by collectors.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import ClassVar, TypeVar

from bot.core.models import JobState

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Collector = Callable[[], Awaitable[None]]
LabelKey = tuple[str, ...]


def format_value(value: float) -> str:
    """Integral values without a decimal point (exact for micro-dollars), the rest as Python writes them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels_text(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape_label(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


class _Metric:
    kind: ClassVar[str] = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames: tuple[str, ...] = tuple(labelnames)

    def _key(self, labels: Mapping[str, object]) -> LabelKey:
        if set(labels) != set(self.labelnames):
            want = ", ".join(self.labelnames) or "no labels"
            raise ValueError(f"{self.name} takes {want}; got {', '.join(sorted(labels)) or 'no labels'}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> list[str]:
        return self.header() + self.samples()


class _Valued(_Metric):
    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[LabelKey, float] = {}
        if not self.labelnames:
            self._values[()] = 0.0

    def value(self, **labels: object) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        return [
            f"{self.name}{_labels_text(zip(self.labelnames, key, strict=True))} {format_value(v)}"
            for key, v in sorted(self._values.items())
        ]


class Counter(_Valued):
    """A number that only goes up. `inc(0, ...)` makes a label set appear at zero."""

    kind = "counter"

    def inc(self, amount: float = 1, **labels: object) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot go down")
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Valued):
    """A number that is set, or goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: object) -> None:
        self._values[self._key(labels)] = float(value)

    def inc(self, amount: float = 1, **labels: object) -> None:
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1, **labels: object) -> None:
        self.inc(-amount, **labels)


class Histogram(_Metric):
    """Observations counted into cumulative `le` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = DEFAULT_BUCKETS
    ) -> None:
        if "le" in labelnames:
            raise ValueError("'le' is reserved for histogram buckets")
        super().__init__(name, help, labelnames)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        self.buckets: tuple[float, ...] = (*bounds, math.inf)
        self._counts: dict[LabelKey, list[int]] = {}
        self._sums: dict[LabelKey, float] = {}

    def observe(self, value: float, **labels: object) -> None:
        key = self._key(labels)
        counts = self._counts.setdefault(key, [0] * len(self.buckets))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
                break
        self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: object) -> int:
        return sum(self._counts.get(self._key(labels), ()))

    def sum(self, **labels: object) -> float:
        return self._sums.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        lines: list[str] = []
        for key, counts in sorted(self._counts.items()):
            pairs = list(zip(self.labelnames, key, strict=True))
            running = 0
            for bound, n in zip(self.buckets, counts, strict=True):
                running += n
                le = "+Inf" if math.isinf(bound) else repr(bound)
                lines.append(f"{self.name}_bucket{_labels_text([*pairs, ('le', le)])} {running}")
            lines.append(f"{self.name}_sum{_labels_text(pairs)} {format_value(self._sums[key])}")
            lines.append(f"{self.name}_count{_labels_text(pairs)} {running}")
        return lines


M = TypeVar("M", bound=_Metric)


class Registry:
    """Metrics in registration order, plus collectors that refresh gauges just before each scrape."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Collector] = []

    def register(self, metric: M) -> M:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric
        return metric

    def add_collector(self, collector: Collector) -> None:
        """Run `collector` (an async callable that sets gauges) before every render."""
        self._collectors.append(collector)

    async def render(self) -> str:
        """Run the collectors, then return every metric in the text format; a failed collector is logged."""
        for collector in self._collectors:
            try:
                await collector()
            except Exception:
                log.exception("metrics collector %r failed; its gauges keep their last values", collector)
        return self.render_now()

    def render_now(self) -> str:
        """The text format as the metrics stand, without running collectors."""
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


DELIVERY_OUTCOMES = ("attachment", "link", "dm", "undeliverable", "existing")
SPEND_MODES = ("real", "dry_run")
WEBHOOK_OUTCOMES = ("ok", "duplicate", "bad_secret", "unknown_task", "bad_json", "too_large")


class Metrics(Registry):
    """The bot's metrics. Label values are free strings; the ones listed in each help text are the convention."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = self.register(Gauge("hailuo_jobs", "Jobs in the database by state.", ["state"]))
        self.runware_requests = self.register(
            Counter(
                "hailuo_runware_requests_total",
                "Runware API requests by task type and outcome (ok, rejected, unavailable, timeout).",
                ["task_type", "outcome"],
            )
        )
        self.runware_latency = self.register(
            Histogram(
                "hailuo_runware_request_duration_seconds",
                "Runware API request latency in seconds, by task type.",
                ["task_type"],
            )
        )
        self.webhooks = self.register(
            Counter(
                "hailuo_webhooks_total",
                "Webhook calls by outcome: ok, duplicate (accepted) or why refused (bad_secret, unknown_task, "
                "bad_json, too_large).",
                ["outcome"],
            )
        )
        self.deliveries = self.register(
            Counter(
                "hailuo_deliveries_total",
                "Clips delivered by outcome: attachment, link, dm, undeliverable, or existing (found already posted "
                "after a restart, so not posted twice); `generate` counts file.",
                ["outcome"],
            )
        )
        self.spend_micros = self.register(
            Counter(
                "hailuo_spend_micros_total",
                "Settled spend in micro-dollars (1 USD = 1000000), real or dry_run.",
                ["mode"],
            )
        )
        for outcome in WEBHOOK_OUTCOMES:
            self.webhooks.inc(0, outcome=outcome)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.inc(0, outcome=outcome)
        for mode in SPEND_MODES:
            self.spend_micros.inc(0, mode=mode)

    def watch_jobs(self, count_by_state: Callable[[], Awaitable[Mapping[str, int]]]) -> None:
        """Refresh `hailuo_jobs` from the store at each scrape; states with no jobs read 0."""

        async def collect() -> None:
            counts = await count_by_state()
            for state in JobState:
                self.jobs.set(counts.get(state.value, 0), state=state.value)

        self.add_collector(collect)
