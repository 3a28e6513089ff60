"""Each company's call budget at its software, kept in Redis and shared by every worker: the limits
hold across threads and processes, a dead holder's place comes back, a 429 pauses everyone, a spent
day is waited out. Small limits (a few calls a second) keep the tests quick; no fixed sleeps."""

from __future__ import annotations

import json
import multiprocessing
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from tests.conftest import make_app, plain_spaces
from webapp import metrics
from webapp.connectors.base import DailyBudgetSpent, RateLimited
from webapp.connectors.http import ProviderHttp, RetryPolicy
from webapp.connectors.limits import Budget, VendorLimits, budget_for, vendor_limits


@pytest.fixture
def budget_app(sqlite_file, redis_url):
    app = make_app(
        sqlite_file,
        REDIS_URL=redis_url,
        VENDOR_LIMIT_MARGIN=1.0,
        VENDOR_BUDGET_MAX_WAIT=10.0,
        VENDOR_LIMITS={"sandbox": {"rates": [[1, 5]], "concurrency": 3, "daily": None}},
    )
    with app.app_context():
        yield app
        connection = redis.Redis.from_url(redis_url)
        for key in connection.scan_iter("raccord:budget:*"):
            connection.delete(key)
        for key in connection.scan_iter("raccord:metrics:*"):
            connection.delete(key)


def fresh(budget: Budget) -> Budget:
    budget.forget()
    return budget


def test_limits_come_from_the_documentation_under_the_margin_and_are_overridden_per_vendor():
    config = {"VENDOR_LIMIT_MARGIN": 0.9, "VENDOR_LIMITS": {"pennylane": {"rates": [[1, 3]], "daily": 10}}}
    xero = vendor_limits("xero", config)
    assert xero.rates == ((60, 54),) and xero.concurrency == 5 and xero.daily == 4500 and xero.rolling_day
    assert vendor_limits("quickbooks", config).rates == ((60, 450),)
    assert vendor_limits("quickbooks", config).concurrency == 10  # kept exactly
    pennylane = vendor_limits("pennylane", config)
    assert pennylane.rates == ((1, 2),) and pennylane.daily == 9
    assert vendor_limits("sage", config).daily == 2250


def test_threads_never_exceed_the_concurrency_limit(budget_app):
    budget = fresh(budget_for("sandbox", "conc-threads"))
    budget.limits = VendorLimits(rates=((1, 1000),), concurrency=3)
    inside, most, guard = [0], [0], threading.Lock()

    def worker() -> None:
        mine = budget_for("sandbox", "conc-threads", app=budget_app)
        mine.limits = budget.limits
        for _ in range(5):
            with mine.slot():
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.02)  # the HTTP call being made
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most[0] == 3  # reached, never passed
    assert budget.usage()["concurrent"] == 0  # every place given back


def _process_calls(redis_url: str, company: str, calls: int) -> None:
    """One 'worker' on its own: its own Redis connection, no app; starts when the test says go."""
    connection = redis.Redis.from_url(redis_url)
    budget = Budget(
        redis=connection,
        vendor="sandbox",
        company_id=company,
        limits=VendorLimits(rates=((1, 1000),), concurrency=2),
    )
    connection.rpush("raccord:budget-test:ready", "1")
    connection.blpop(["raccord:budget-test:go"], timeout=20)
    for _ in range(calls):
        with budget.slot():
            start = time.time()
            time.sleep(0.03)
            connection.rpush("raccord:budget-test:spans", json.dumps([start, time.time()]))


def test_processes_never_exceed_the_concurrency_limit(budget_app, redis_url):
    connection = redis.Redis.from_url(redis_url)
    connection.delete("raccord:budget-test:spans", "raccord:budget-test:ready", "raccord:budget-test:go")
    fresh(budget_for("sandbox", "conc-processes"))
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_process_calls, args=(redis_url, "conc-processes", 4)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 20
    while connection.llen("raccord:budget-test:ready") < 4:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    connection.rpush("raccord:budget-test:go", *["1"] * 4)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    spans = [json.loads(s) for s in connection.lrange("raccord:budget-test:spans", 0, -1)]
    connection.delete("raccord:budget-test:spans", "raccord:budget-test:ready", "raccord:budget-test:go")
    assert len(spans) == 16
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    at_once, most = 0, 0
    for _moment, change in events:
        at_once += change
        most = max(most, at_once)
    assert most == 2  # reached, never passed


def test_calls_in_any_window_never_exceed_the_rate(budget_app):
    fresh(budget_for("sandbox", "rate"))  # 5 a second (the app's VENDOR_LIMITS)
    stamps: list[float] = []
    guard = threading.Lock()

    def worker() -> None:
        with budget_app.app_context():  # as the refresh's reading thread runs: figures recorded
            mine = budget_for("sandbox", "rate")
            for _ in range(4):
                with mine.slot(), guard:
                    stamps.append(time.time())

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started
    stamps.sort()
    assert len(stamps) == 16
    # Any 6 calls span at least a second (a few ms allowed for the answer to reach the caller).
    assert min(stamps[i + 5] - stamps[i] for i in range(len(stamps) - 5)) >= 0.97
    # ...and the waits are not longer than needed: 16 calls at 5 a second take 3 seconds, not more.
    assert 2.9 <= elapsed < 4.5
    waits = metrics._read(metrics.PREFIX + "raccord_budget_waits")
    assert (
        waits[("sandbox", "1s")] >= 3
    )  # one count per call that waited (a call may find a place just freed)
    assert metrics._read(metrics.PREFIX + "raccord_budget_wait_seconds")[("sandbox",)] > 1


def test_the_place_of_a_holder_that_died_comes_back_when_its_lease_ends(budget_app):
    budget = fresh(budget_for("sandbox", "lease"))
    budget.limits = VendorLimits(rates=((1, 100),), concurrency=1)
    budget.lease = 0.5
    status, _wait, _limit = budget.try_acquire("killed-worker")  # taken, never given back
    assert status == 0
    assert budget.try_acquire("another")[2] == "concurrent"
    started = time.monotonic()
    with budget.slot():
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2.0


def test_a_429_pauses_every_worker_then_the_rate_comes_back(budget_app):
    budget = fresh(budget_for("sandbox", "penalty"))
    budget.shrink_seconds = 1.5
    other = budget_for("sandbox", "penalty")  # another worker, same company
    other.shrink_seconds = 1.5
    budget.penalise(0.6, "minute")
    usage = other.usage()
    assert usage["paused_until"] is not None and usage["paused_for"] == "minute"
    assert usage["shrunk_until"] is not None
    started = time.monotonic()
    with other.slot():
        assert time.monotonic() - started >= 0.5
    # Shrunk: 2 a second instead of 5 (the first call above was one of them).
    with other.slot():
        pass
    started = time.monotonic()
    with other.slot():
        assert time.monotonic() - started >= 0.5
    # Restored once the shrink is over.
    deadline = time.monotonic() + 5
    while other.usage()["shrunk_until"] is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    budget.redis.delete(budget._keys()[0])  # the calls made so far forgotten, the shrink's end kept
    started = time.monotonic()
    for _ in range(5):
        with other.slot():
            pass
    assert time.monotonic() - started < 0.5


def test_a_wait_longer_than_the_bound_is_refused_in_french(budget_app):
    budget = fresh(budget_for("sandbox", "bound"))
    budget.max_wait = 0.5
    budget.penalise(30, "minute")
    started = time.monotonic()
    with pytest.raises(RateLimited) as refused, budget.slot():
        pass
    assert time.monotonic() - started < 0.5  # refused at once: no use waiting for nothing
    assert "Compta Démo limite le nombre de demandes pour cette société" in refused.value.message


def test_a_spent_utc_day_stops_the_calls_until_midnight(budget_app):
    budget = fresh(budget_for("sandbox", "day"))
    budget.limits = VendorLimits(rates=((1, 100),), concurrency=3, daily=3)
    for _ in range(3):
        with budget.slot():
            pass
    assert budget.remaining_today() == 0
    with pytest.raises(DailyBudgetSpent) as spent, budget.slot():
        pass
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs((spent.value.resume_at - midnight).total_seconds() - 300) < 5
    assert re.fullmatch(
        r"La limite quotidienne de demandes de Compta Démo pour cette société est atteinte : "
        r"Raccord reprendra (aujourd'hui|demain) à 0[01]:05\.",
        plain_spaces(spent.value.message),
    )
    usage = budget.usage()
    assert (usage["calls_today"], usage["daily_limit"]) == (3, 3)


def test_xeros_day_is_the_last_24_hours(budget_app):
    budget = fresh(budget_for("xero", "rolling"))
    budget.limits = VendorLimits(rates=((1, 100),), concurrency=5, daily=2, rolling_day=True)
    first = datetime.now(UTC)
    for _ in range(2):
        with budget.slot():
            pass
    with pytest.raises(DailyBudgetSpent) as spent, budget.slot():
        pass
    expected = first + timedelta(days=1, minutes=5)
    assert abs((spent.value.resume_at - expected).total_seconds()) < 5
    assert "Xero" in spent.value.message


# --- the HTTP layer ---------------------------------------------------------------------------


class Vendor(BaseHTTPRequestHandler):
    """A software that answers 429 to the calls the test asks, then 200."""

    answers: list[tuple[int, dict[str, str]]] = []
    seen: list[float] = []

    def do_GET(self) -> None:  # noqa: N802
        Vendor.seen.append(time.monotonic())
        status, headers = Vendor.answers.pop(0) if Vendor.answers else (200, {})
        body = b'{"ok": true}'
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def vendor_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Vendor)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    Vendor.answers, Vendor.seen = [], []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_429_penalises_the_company_and_the_call_is_tried_again_after_retry_after(budget_app, vendor_server):
    http = ProviderHttp(RetryPolicy(timeout=5, max_retries=3, backoff=0.01, max_retry_after=10))
    http.budget = fresh(budget_for("xero", "tenant-429"))
    Vendor.answers = [(429, {"Retry-After": "1", "X-Rate-Limit-Problem": "minute"})]
    assert http.json("GET", f"{vendor_server}/api") == {"ok": True}
    assert len(Vendor.seen) == 2 and Vendor.seen[1] - Vendor.seen[0] >= 0.9
    assert http.calls == 2
    assert http.budget.usage()["shrunk_until"] is not None
    calls = metrics._read(metrics.PREFIX + "raccord_vendor_calls")
    assert calls[("xero", "ok")] == 1 and calls[("xero", "rate_limited")] == 1
    assert metrics._read(metrics.PREFIX + "raccord_vendor_rate_limited")[("xero", "minute")] == 1


def test_xeros_day_limit_answer_waits_for_the_next_day(budget_app, vendor_server):
    http = ProviderHttp(RetryPolicy(timeout=5, max_retries=3, backoff=0.01, max_retry_after=10))
    http.budget = fresh(budget_for("xero", "tenant-day"))
    Vendor.answers = [(429, {"Retry-After": "7200", "X-Rate-Limit-Problem": "day"})]
    with pytest.raises(DailyBudgetSpent) as spent:
        http.json("GET", f"{vendor_server}/api")
    assert abs((spent.value.resume_at - datetime.now(UTC)).total_seconds() - 7500) < 10
    # Every worker now waits too, without calling.
    with pytest.raises(DailyBudgetSpent), budget_for("xero", "tenant-day").slot():
        pass
    assert len(Vendor.seen) == 1
