"""Operators' figures, exposed for Prometheus at /metrics (staff, or the scraper's METRICS_TOKEN).

The calls to the accounting software, the budget waits, the refreshes and the webhooks happen in
every web process and every RQ worker, on any machine. So the counts are kept in Redis, where they
add up whoever made them, and read at each scrape by one collector (prometheus-client's own
multiprocess mode only sums the processes of one machine). Recording never breaks the work it
counts: a Redis that does not answer loses the figure, not the call.

Record with `inc(name, **labels)` and `observe(name, seconds, **labels)`; the names are declared in
COUNTERS and HISTOGRAMS with their help text and labels.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

log = logging.getLogger(__name__)

PREFIX = "raccord:metrics:"

#: name → (help, labels)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "raccord_vendor_calls": ("Calls to an accounting software's API, by outcome.", ("vendor", "outcome")),
    "raccord_vendor_rate_limited": (
        "429 answers received from an accounting software, by the limit it named.",
        ("vendor", "limit"),
    ),
    "raccord_budget_waits": (
        "Calls that waited for a company's budget before going out, by the limit that made them wait.",
        ("vendor", "limit"),
    ),
    "raccord_budget_wait_seconds": ("Seconds spent waiting for a company's budget.", ("vendor",)),
    "raccord_budget_deferred": (
        "Work put off to the next day because the company's daily budget was spent.",
        ("vendor",),
    ),
    "raccord_webhook_deliveries": ("Webhook deliveries received, by outcome.", ("vendor", "outcome")),
}

#: name → (help, labels, bucket upper bounds in seconds)
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "raccord_list_refresh_seconds": (
        "Duration of a list's refresh, from the first call to the merge's end.",
        ("vendor", "list", "mode"),
        (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    ),
}


def _redis():
    from webapp.services.jobs import get_redis

    return get_redis()


def _field(names: tuple[str, ...], labels: dict[str, object]) -> str:
    return json.dumps([str(labels.get(name, "")) for name in names])


def inc(name: str, amount: float = 1, **labels: object) -> None:
    """Add `amount` to a counter (for every process sharing Redis)."""
    _help, names = COUNTERS[name]
    try:
        _redis().hincrbyfloat(PREFIX + name, _field(names, labels), amount)
    except Exception:  # figures are never worth a failed call
        log.debug("metric %s not recorded", name, exc_info=True)


def observe(name: str, value: float, **labels: object) -> None:
    """Count one observation of a histogram: its bucket, the sum and the count."""
    _help, names, buckets = HISTOGRAMS[name]
    field = _field(names, labels)
    bucket = next((_le(bound) for bound in buckets if value <= bound), "+Inf")
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.hincrbyfloat(f"{PREFIX}{name}:bucket:{bucket}", field, 1)
        pipe.hincrbyfloat(f"{PREFIX}{name}:sum", field, value)
        pipe.hincrbyfloat(f"{PREFIX}{name}:count", field, 1)
        pipe.execute()
    except Exception:
        log.debug("metric %s not recorded", name, exc_info=True)


def _le(bound: float) -> str:
    """A bucket's bound as Prometheus writes it: 2 is '2.0'."""
    return repr(float(bound))


def _read(key: str) -> dict[tuple[str, ...], float]:
    raw = _redis().hgetall(key)
    return {tuple(json.loads(k)): float(v) for k, v in raw.items()}


class RedisCollector:
    """What every process recorded, read at scrape time, plus the job queue's state."""

    def __init__(self, queue_names: list[str]):
        self.queue_names = queue_names

    def collect(self) -> Iterator:
        for name, (help_text, names) in COUNTERS.items():
            family = CounterMetricFamily(name, help_text, labels=list(names))
            for labels, value in sorted(_read(PREFIX + name).items()):
                family.add_metric(list(labels), value)
            yield family
        for name, (help_text, names, buckets) in HISTOGRAMS.items():
            family = HistogramMetricFamily(name, help_text, labels=list(names))
            per_bucket = {b: _read(f"{PREFIX}{name}:bucket:{b}") for b in [*map(_le, buckets), "+Inf"]}
            sums = _read(f"{PREFIX}{name}:sum")
            counts = _read(f"{PREFIX}{name}:count")
            for labels in sorted(counts):
                cumulative, rows = 0.0, []
                for bound in [*map(_le, buckets), "+Inf"]:
                    cumulative += per_bucket[bound].get(labels, 0.0)
                    rows.append((bound, cumulative))
                family.add_metric(list(labels), rows, sums.get(labels, 0.0))
            yield family
        yield self._jobs()

    def _jobs(self) -> GaugeMetricFamily:
        from rq import Queue
        from rq.registry import (
            DeferredJobRegistry,
            FailedJobRegistry,
            FinishedJobRegistry,
            ScheduledJobRegistry,
            StartedJobRegistry,
        )

        family = GaugeMetricFamily(
            "raccord_jobs", "Jobs in the queue's registries, by state.", labels=["queue", "state"]
        )
        connection = _redis()
        for queue_name in self.queue_names:
            queue = Queue(queue_name, connection=connection)
            family.add_metric([queue_name, "queued"], queue.count)
            for state, registry in (
                ("started", StartedJobRegistry),
                ("scheduled", ScheduledJobRegistry),
                ("deferred", DeferredJobRegistry),
                ("finished", FinishedJobRegistry),
                ("failed", FailedJobRegistry),
            ):
                family.add_metric([queue_name, state], registry(queue_name, connection=connection).count)
        return family


def exposition(queue_names: list[str]) -> bytes:
    """The text format Prometheus scrapes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(queue_names))  # type: ignore[arg-type]
    return generate_latest(registry)
