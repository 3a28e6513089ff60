"""Each accounting company's call budget at its software, shared by every worker on every machine.

The vendors limit the calls of one application per company (organisation, realm…), whoever in
Raccord makes them: a refresh of the suppliers, a publication and a search at the same moment add
up. So the budget lives in Redis, and is taken and given back by Lua scripts, atomic whatever the
number of processes and machines. Times are Redis's own (TIME), so machines whose clocks drift
still agree.

The documented limits (kept under by VENDOR_LIMIT_MARGIN, 0.9 by default, for rates and daily
budgets; concurrency is kept exactly):

- Xero: 60 calls a minute, 5 at once and 5 000 a day per organisation (tenant), 10 000 a minute per
  app across tenants (https://developer.xero.com/documentation/guides/oauth2/limits). A 429 says
  Retry-After and X-Rate-Limit-Problem (minute, day, concurrent, appminute). Xero's day is a
  rolling 24 hours: a call frees its place 24 hours after it was made. The app-wide limit is not
  kept here: 10 000 a minute is out of reach unless over 150 organisations are busy at once.
- QuickBooks Online: 500 requests a minute per realm, 10 at once per realm and app, no daily limit
  (https://developer.intuit.com/app/developer/qbo/docs/learn/rest-api-features#limits-and-throttles).
  A 429 carries the fault ThrottleExceeded (003001) without Retry-After: 60 seconds are waited.
- Pennylane: 25 requests per 5 seconds per token, i.e. per company here
  (https://pennylane.readme.io/docs/rate-limiting). A 429 says retry-after. No documented
  concurrency limit: Raccord keeps to 10 at once of its own accord.
- Sage Business Cloud Accounting: not clearly published. Third parties report 100 a minute and
  2 500 a day per business; those are used (unconfirmed by Sage). 5 at once, Raccord's own choice.
- Compta Démo (the sandbox): generous, 600 a minute and 10 at once.

Daily budgets other than Xero's are counted per UTC day (reset at 00:00 UTC): the simplest honest
reading where the vendor says 'per day' without saying whose day.

A call takes a slot (`Budget.slot()`): it waits, sleeping until the next place frees, as long as
VENDOR_BUDGET_MAX_WAIT allows, then holds one of the concurrent places for the HTTP call. The place
is a lease (a sorted set of holders scored by the lease's end): a worker killed mid-call gives it
back when the lease ends. A 429 that comes all the same (another application using the company's
limit) pauses every call to that company until its Retry-After, and shrinks the rates for a while
(`penalise`).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from flask_babel import gettext as _

from webapp import metrics
from webapp.connectors.base import DailyBudgetSpent, RateLimited

log = logging.getLogger(__name__)

KEY_PREFIX = "raccord:budget"
DAY_MS = 86_400_000
#: A daily budget is taken up again a little after it resets, not at the very second.
RESUME_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class VendorLimits:
    """One vendor's limits per company: rate windows (seconds, calls), calls at once, calls a day."""

    rates: tuple[tuple[float, int], ...] = ()
    concurrency: int | None = None
    daily: int | None = None
    rolling_day: bool = False  # True: the day is the last 24 hours (Xero); False: the UTC day

    def with_margin(self, margin: float) -> VendorLimits:
        return replace(
            self,
            rates=tuple((window, max(1, math.floor(calls * margin))) for window, calls in self.rates),
            daily=max(1, math.floor(self.daily * margin)) if self.daily else None,
        )


DOCUMENTED: dict[str, VendorLimits] = {
    "xero": VendorLimits(rates=((60, 60),), concurrency=5, daily=5000, rolling_day=True),
    "quickbooks": VendorLimits(rates=((60, 500),), concurrency=10),
    "pennylane": VendorLimits(rates=((5, 25),), concurrency=10),
    "sage": VendorLimits(rates=((60, 100),), concurrency=5, daily=2500),  # reported, not published
    "sandbox": VendorLimits(rates=((60, 600),), concurrency=10),
}


def vendor_limits(vendor: str, config: dict[str, Any] | None = None) -> VendorLimits:
    """The limits kept for `vendor`: documented, overridden by VENDOR_LIMITS, under the margin.

    VENDOR_LIMITS = {"xero": {"rates": [[1, 5]], "concurrency": 2, "daily": 20, "rolling_day": false}}
    (any key left out keeps the documented value; null removes that limit)."""
    config = config if config is not None else current_app.config
    limits = DOCUMENTED.get(vendor, VendorLimits(rates=((60, 60),), concurrency=5))
    override = (config.get("VENDOR_LIMITS") or {}).get(vendor) or {}
    if "rates" in override:
        limits = replace(limits, rates=tuple((float(w), int(c)) for w, c in override["rates"] or ()))
    for name in ("concurrency", "daily"):
        if name in override:
            limits = replace(limits, **{name: int(override[name]) if override[name] else None})
    if "rolling_day" in override:
        limits = replace(limits, rolling_day=bool(override["rolling_day"]))
    return limits.with_margin(float(config.get("VENDOR_LIMIT_MARGIN", 0.9)))


def window_name(seconds: float) -> str:
    """How a rate window is named in the figures: 'minute', '5s'…"""
    return "minute" if seconds == 60 else f"{seconds:g}s"


# --- the scripts -----------------------------------------------------------------------------

# KEYS: calls (zset: call id → ms), holders (zset: holder → lease end ms), pause (hash), shrink
# (string: until ms), day (string: the UTC day's count), released (list: wakes a waiter)
# ARGV: holder, lease ms, number of rates, then (window ms, calls, name) per rate, concurrency
# (0: none), daily (0: none), rolling day (1/0), shrink factor, ms of calls to keep
# → {0, 0, ''} taken; {1, wait ms, limit} wait; {2, ms until the day's budget frees, 'day'}
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder, lease, nrates = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
local rates = {}
for r = 1, nrates do
  rates[r] = {tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2]}
  i = i + 3
end
local conc, daily, rolling = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2] == '1'
local factor, keep = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])

local paused = tonumber(redis.call('HGET', KEYS[3], 'until') or '0')
if paused > now then
  local limit = redis.call('HGET', KEYS[3], 'limit') or 'paused'
  if limit == 'day' then return {2, paused - now, 'day'} end
  return {1, paused - now, 'paused'}
end

if daily > 0 then
  if rolling then
    local from = '(' .. (now - 86400000)
    local used = redis.call('ZCOUNT', KEYS[1], from, '+inf')
    if used >= daily then
      local oldest = redis.call(
        'ZRANGEBYSCORE', KEYS[1], from, '+inf', 'WITHSCORES', 'LIMIT', used - daily, 1)
      return {2, tonumber(oldest[2]) + 86400000 - now, 'day'}
    end
  elseif tonumber(redis.call('GET', KEYS[5]) or '0') >= daily then
    return {2, (math.floor(now / 86400000) + 1) * 86400000 - now, 'day'}
  end
end

local f = 1
if tonumber(redis.call('GET', KEYS[4]) or '0') > now then f = factor end
local wait, why = 0, ''
for _, rate in ipairs(rates) do
  local window, name = rate[1], rate[3]
  local limit = math.max(1, math.floor(rate[2] * f))
  local from = '(' .. (now - window)
  local used = redis.call('ZCOUNT', KEYS[1], from, '+inf')
  if used >= limit then
    local entry = redis.call('ZRANGEBYSCORE', KEYS[1], from, '+inf', 'WITHSCORES', 'LIMIT', used - limit, 1)
    local w = tonumber(entry[2]) + window - now
    if w > wait then wait, why = w, name end
  end
end
if wait > 0 then return {1, wait, why} end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if conc > 0 and redis.call('ZCARD', KEYS[2]) >= conc then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {1, math.max(1, tonumber(first[2]) - now), 'concurrent'}
end
redis.call('ZADD', KEYS[2], now + lease, holder)
redis.call('PEXPIRE', KEYS[2], lease * 2)
redis.call('ZADD', KEYS[1], now, holder)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep)
redis.call('PEXPIRE', KEYS[1], keep)
if daily > 0 and not rolling then
  redis.call('INCR', KEYS[5])
  redis.call('PEXPIRE', KEYS[5], 2 * 86400000)
end
return {0, 0, ''}
"""

# KEYS: holders, released; ARGV: holder, concurrency
_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, math.max(0, tonumber(ARGV[2]) - 1))
  redis.call('PEXPIRE', KEYS[2], 60000)
end
return 1
"""

# KEYS: pause, shrink; ARGV: pause ms, limit, shrink ms → the pause's end (ms)
_PENALISE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if ends > current then
  redis.call('HSET', KEYS[1], 'until', ends, 'limit', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + 1000)
end
local shrink = tonumber(ARGV[3])
if shrink > 0 then
  redis.call('SET', KEYS[2], now + shrink, 'PX', shrink)
end
return ends
"""


def _ms_to_datetime(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class Budget:
    """The calls Raccord may make to one company (`vendor`, `company_id`) at its software."""

    redis: Any
    vendor: str
    company_id: str
    limits: VendorLimits
    max_wait: float = 120.0
    lease: float = 70.0  # seconds a place is held at most: one HTTP call with its timeout
    shrink_seconds: float = 600.0
    shrink_factor: float = 0.5
    software: str = ""
    sleep: Any = field(default=time.sleep, repr=False)

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}:{self.vendor}:{self.company_id}"

    def _keys(self) -> list[str]:
        day = datetime.now(UTC).strftime("%Y%m%d")  # only for a UTC day; Redis's TIME decides the rest
        return [
            f"{self.key}:{name}" for name in ("calls", "holders", "pause", "shrink", f"day:{day}", "released")
        ]

    def _keep_ms(self) -> int:
        longest = max([60, *(w for w, _c in self.limits.rates)])  # at least the minute support sees
        return (
            int(max(longest * 1000, DAY_MS if (self.limits.daily and self.limits.rolling_day) else 0)) + 1000
        )

    # --- taking and giving back ---

    def try_acquire(self, holder: str) -> tuple[int, float, str]:
        """One attempt: (0, 0, '') taken; (1, seconds to wait, limit); (2, seconds until the day's
        budget frees, 'day')."""
        args: list[Any] = [holder, int(self.lease * 1000), len(self.limits.rates)]
        for window, calls in self.limits.rates:
            args += [int(window * 1000), calls, window_name(window)]
        args += [
            self.limits.concurrency or 0,
            self.limits.daily or 0,
            1 if self.limits.rolling_day else 0,
            self.shrink_factor,
            self._keep_ms(),
        ]
        status, wait_ms, limit = self.redis.eval(_ACQUIRE, 6, *self._keys(), *args)
        limit = limit.decode() if isinstance(limit, bytes) else str(limit)
        return int(status), int(wait_ms) / 1000, limit

    def release(self, holder: str) -> None:
        keys = self._keys()
        self.redis.eval(_RELEASE, 2, keys[1], keys[5], holder, self.limits.concurrency or 1)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait until a call to this company is allowed, then hold a place for its duration.

        Raises DailyBudgetSpent when the day's calls are spent, RateLimited when the wait would be
        longer than VENDOR_BUDGET_MAX_WAIT."""
        holder = uuid.uuid4().hex
        started = time.monotonic()
        deadline = started + self.max_wait
        waited_for = ""
        while True:
            status, wait, limit = self.try_acquire(holder)
            if status == 0:
                break
            if status == 2:
                self._count_wait(started, waited_for)
                raise self.daily_spent(datetime.now(UTC) + timedelta(seconds=wait))
            left = deadline - time.monotonic()
            if limit != "concurrent" and wait > left:
                self._count_wait(started, waited_for or limit)
                raise RateLimited(
                    wait,
                    _(
                        "%(software)s limite le nombre de demandes pour cette société : Raccord a attendu "
                        "autant qu'il le peut. Réessayez dans quelques minutes.",
                        software=self.software or self.vendor,
                    ),
                    detail=f"budget {self.vendor}: {limit} ({wait:.1f}s)",
                )
            if left <= 0:
                self._count_wait(started, waited_for or limit)
                raise RateLimited(
                    wait,
                    _(
                        "%(software)s est déjà très sollicité pour cette société. Réessayez dans quelques "
                        "minutes.",
                        software=self.software or self.vendor,
                    ),
                    detail=f"budget {self.vendor}: {limit}",
                )
            waited_for = waited_for or limit
            if limit == "concurrent":
                # Woken by the first place given back; at worst when the oldest lease ends. A bounded
                # block: the connection's socket timeout must not be reached.
                self.redis.blpop([self._keys()[5]], timeout=max(0.01, min(wait, left, 5.0)))
            else:
                self.sleep(wait)
        self._count_wait(started, waited_for)
        try:
            yield
        finally:
            try:
                self.release(holder)
            except Exception:  # the lease ends by itself
                log.warning("Budget place of %s not given back; its lease ends it", self.key)

    def _count_wait(self, started: float, limit: str) -> None:
        if not limit:
            return
        metrics.inc("raccord_budget_waits", vendor=self.vendor, limit=limit)
        metrics.inc("raccord_budget_wait_seconds", time.monotonic() - started, vendor=self.vendor)

    def penalise(self, retry_after: float, limit: str = "") -> datetime:
        """A 429 came all the same: nobody calls this company before `retry_after` seconds, and its
        rates are shrunk (VENDOR_BUDGET_SHRINK_FACTOR) for VENDOR_BUDGET_SHRINK_SECONDS. A 'day'
        limit makes the calls wait for the day to end (DailyBudgetSpent). Returns the pause's end."""
        keys = self._keys()
        ends = self.redis.eval(
            _PENALISE,
            2,
            keys[2],
            keys[3],
            int(max(0.0, retry_after) * 1000),
            limit or "rate",
            int(self.shrink_seconds * 1000),
        )
        return _ms_to_datetime(int(ends))

    # --- the day ---

    def _now_ms(self) -> int:
        seconds, micro = self.redis.time()
        return int(seconds) * 1000 + int(micro) // 1000

    def _used_today(self, now_ms: int) -> int:
        keys = self._keys()
        if self.limits.rolling_day:
            return int(self.redis.zcount(keys[0], f"({now_ms - DAY_MS}", "+inf"))
        return int(self.redis.get(keys[4]) or 0)

    def remaining_today(self) -> int | None:
        """Calls still allowed today (None: no daily limit)."""
        if not self.limits.daily:
            return None
        return max(0, self.limits.daily - self._used_today(self._now_ms()))

    def resets_at(self, calls: int = 1) -> datetime:
        """When `calls` more calls will fit in the day's budget (now if they fit already)."""
        now_ms = self._now_ms()
        if not self.limits.daily:
            return _ms_to_datetime(now_ms)
        calls = min(max(1, calls), self.limits.daily)
        used = self._used_today(now_ms)
        if used + calls <= self.limits.daily:
            return _ms_to_datetime(now_ms)
        if not self.limits.rolling_day:
            return _ms_to_datetime((now_ms // DAY_MS + 1) * DAY_MS)
        # The day is the last 24 hours: the budget frees as the oldest calls pass 24 hours old.
        entries = self.redis.zrangebyscore(
            self._keys()[0],
            f"({now_ms - DAY_MS}",
            "+inf",
            start=used + calls - self.limits.daily - 1,
            num=1,
            withscores=True,
        )
        if not entries:
            return _ms_to_datetime(now_ms)
        return _ms_to_datetime(int(entries[0][1]) + DAY_MS)

    def daily_spent(self, resets: datetime) -> DailyBudgetSpent:
        resume_at = resets + RESUME_MARGIN
        return DailyBudgetSpent(
            resume_at,
            _(
                "La limite quotidienne de demandes de %(software)s pour cette société est atteinte : "
                "Raccord reprendra %(when)s.",
                software=self.software or self.vendor,
                when=when_words(resume_at),
            ),
            detail=f"budget {self.vendor}: day",
        )

    # --- for support ---

    def usage(self) -> dict[str, Any]:
        """What support sees of the company's budget now."""
        now_ms = self._now_ms()
        keys = self._keys()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(keys[0], f"({now_ms - 60_000}", "+inf")
        pipe.zcount(keys[1], f"({now_ms}", "+inf")
        pipe.hget(keys[2], "until")
        pipe.hget(keys[2], "limit")
        pipe.get(keys[3])
        last_minute, concurrent, paused, paused_for, shrunk = pipe.execute()
        per_minute = [round(calls * 60 / window) for window, calls in self.limits.rates]
        paused_ms = int(float(paused or 0))
        shrunk_ms = int(float(shrunk or 0))
        return {
            "vendor": self.vendor,
            "company_id": self.company_id,
            "calls_last_minute": int(last_minute),
            "minute_limit": min(per_minute) if per_minute else None,
            "rates": [{"window": window_name(w), "calls": c} for w, c in self.limits.rates],
            "concurrent": int(concurrent),
            "concurrency_limit": self.limits.concurrency,
            "calls_today": self._used_today(now_ms),
            "daily_limit": self.limits.daily,
            "day": "rolling 24 h" if self.limits.rolling_day else "UTC",
            "paused_until": _ms_to_datetime(paused_ms) if paused_ms > now_ms else None,
            "paused_for": (paused_for.decode() if isinstance(paused_for, bytes) else paused_for)
            if paused_ms > now_ms
            else None,
            "shrunk_until": _ms_to_datetime(shrunk_ms) if shrunk_ms > now_ms else None,
        }

    def forget(self) -> None:
        """Clear this company's budget (tests, support)."""
        for key in self.redis.scan_iter(f"{self.key}:*"):
            self.redis.delete(key)


def when_words(moment: datetime) -> str:
    """'demain à 00:05', 'aujourd'hui à 14:30', 'le 06/12/2026 à 00:05': in the app's time zone."""
    from flask_babel import format_date, format_time, get_timezone

    try:
        zone = get_timezone()
        local = moment.astimezone(zone)
        today = datetime.now(zone).date()
        hour = format_time(moment, "HH:mm")
        if local.date() == today:
            return _("aujourd'hui à %(time)s", time=hour)
        if local.date() == today + timedelta(days=1):
            return _("demain à %(time)s", time=hour)
        return _("le %(date)s à %(time)s", date=format_date(moment, "dd/MM/yyyy"), time=hour)
    except Exception:  # outside an app: UTC, plainly
        return moment.strftime("%d/%m/%Y %H:%M UTC")


def budget_for(vendor: str, company_id: str, *, app=None) -> Budget | None:
    """The budget of one company at its software, from the app's settings (None outside an app)."""
    if app is None:
        if not has_app_context():
            return None
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    from webapp.connectors.catalogue import software_name
    from webapp.services.jobs import get_redis

    config = app.config
    return Budget(
        redis=get_redis(app),
        vendor=vendor,
        company_id=str(company_id),
        limits=vendor_limits(vendor, config),
        max_wait=float(config.get("VENDOR_BUDGET_MAX_WAIT", 120.0)),
        lease=float(config.get("PROVIDER_TIMEOUT", 30.0)) * 2 + 10,
        shrink_seconds=float(config.get("VENDOR_BUDGET_SHRINK_SECONDS", 600.0)),
        shrink_factor=float(config.get("VENDOR_BUDGET_SHRINK_FACTOR", 0.5)),
        software=software_name(vendor),
    )
