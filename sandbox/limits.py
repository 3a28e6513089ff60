"""The vendors' rate limits, enforced by the sandbox's dialects and answered in each vendor's words.

Off unless switched on: by the host's setting SANDBOX_VENDOR_LIMITS (the vendors' own figures, for a
bench), or by the controls' API (POST /controls/api/limits, any figures and window lengths, for
tests). What each vendor documents, and what the dialect does past it:

- Xero, per organisation (the `xero-tenant-id`): 60 calls in any rolling minute, 5 in progress at
  once, 5 000 in a rolling day; 10 000 a minute for the whole app, all organisations together. A
  call past one of them is answered 429 with `Retry-After` (seconds) and `X-Rate-Limit-Problem:
  minute|day|concurrent|appminute`; every answer carries `X-DayLimit-Remaining`,
  `X-MinLimit-Remaining` and `X-AppMinLimit-Remaining`
  (https://developer.xero.com/documentation/guides/oauth2/limits).
- QuickBooks Online, per realm: 500 requests a minute, 10 at once; past them a 429 whose body is
  the Fault `ThrottleExceeded`, code 003001, and no Retry-After
  (https://developer.intuit.com/app/developer/qbo/docs/learn/rest-api-features#limits-and-throttles).
- Pennylane, per access token: 25 requests every 5 seconds; past them a 429 in plain text, "Rate
  limit exceeded. Please retry in X seconds.", with `retry-after`, `ratelimit-limit`,
  `ratelimit-remaining` and `ratelimit-reset` (a Unix time), the `ratelimit-*` ones on every answer
  (https://pennylane.readme.io/docs/rate-limiting-1).
- Sage Business Cloud Accounting publishes no figures; third parties report 100 a minute and 2 500
  a day per business. Past them a 429 with Retry-After and Sage's error array.

Only the Accounting APIs are limited (each dialect's `api` blueprint), after the bearer is known;
the OAuth pages and Xero's /connections are not (the vendors limit those apart).

The counts live in Redis (the host's REDIS_URL; an in-process stand-in without one), under
`sandbox:limits:`, so that every process serving the sandbox sees the same: each window is the log
of the calls it accepted (a sorted set of their times, trimmed to the window's length); the calls in
progress are a sorted set of leases that end on their own if a process dies with a call open. One
Lua script per call checks and counts every limit at once. Refused calls are not counted in the
windows.

For tests and benches, per vendor and company: calls accepted, 429s sent (by limit), the most calls
in progress at once, and the most calls seen in any window of each limit (the count when each call
was accepted; a window's maximum is reached at one of its calls), read with GET
/controls/api/limits and cleared with POST /controls/api/limits/reset. With `observe_only` the
dialects count and refuse nothing, so a bench can see how close a caller comes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from sandbox.csrf import sandbox_csrf

log = logging.getLogger(__name__)

PREFIX = "sandbox:limits:"
#: How long a call counts as in progress if its process never says it ended (it died).
LEASE_MS = 120_000
#: How long the counts for tests stay after the last call.
STATS_TTL = 7 * 86400
MAX_WINDOW_SECONDS = 7 * 86400
MAX_CALLS = 10_000_000
MAX_SERVICE_MS = 30_000


@dataclass(frozen=True)
class Limit:
    name: str  # as the controls name it
    problem: str  # as the vendor names it (Xero's X-Rate-Limit-Problem)
    scope: str  # "company", "token" (the access token) or "app" (every company together)


#: Each vendor's limits; `concurrent` is the calls in progress at once, the others sliding windows.
LIMITS: dict[str, tuple[Limit, ...]] = {
    "xero": (
        Limit("concurrent", "concurrent", "company"),
        Limit("per_minute", "minute", "company"),
        Limit("per_day", "day", "company"),
        Limit("app_per_minute", "appminute", "app"),
    ),
    "quickbooks": (Limit("concurrent", "concurrent", "company"), Limit("per_minute", "minute", "company")),
    "pennylane": (Limit("per_5_seconds", "window", "token"),),
    "sage": (Limit("per_minute", "minute", "company"), Limit("per_day", "day", "company")),
}

#: The vendors' figures: calls in progress, or {"calls", "seconds"} of a window.
DEFAULTS: dict[str, dict[str, Any]] = {
    "xero": {
        "concurrent": 5,
        "per_minute": {"calls": 60, "seconds": 60},
        "per_day": {"calls": 5000, "seconds": 86400},
        "app_per_minute": {"calls": 10000, "seconds": 60},
    },
    "quickbooks": {"concurrent": 10, "per_minute": {"calls": 500, "seconds": 60}},
    "pennylane": {"per_5_seconds": {"calls": 25, "seconds": 5}},
    "sage": {"per_minute": {"calls": 100, "seconds": 60}, "per_day": {"calls": 2500, "seconds": 86400}},
}


class LimitsError(ValueError):
    """Bad figures given to the controls; the message says what, in French."""


# --- the configuration ------------------------------------------------------------------------


def _calls(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise LimitsError(f"{what} doit être un nombre entier.")
    if not 1 <= value <= MAX_CALLS or int(value) != value:
        raise LimitsError(f"{what} doit être un nombre entier entre 1 et {MAX_CALLS}.")
    return int(value)


def _limit_value(vendor: str, name: str, value: Any) -> Any:
    what = f"{vendor}.{name}"
    if value is None:  # that limit is not enforced
        return None
    if name == "concurrent":
        return _calls(value, what)
    default_seconds = DEFAULTS[vendor][name]["seconds"]
    if not isinstance(value, dict):
        return {"calls": _calls(value, what), "seconds": default_seconds}
    unknown = set(value) - {"calls", "seconds"}
    if unknown:
        raise LimitsError(f"{what} : seuls calls et seconds sont lus, pas {', '.join(sorted(unknown))}.")
    seconds = value.get("seconds", default_seconds)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != seconds:
        raise LimitsError(f"{what}.seconds doit être un nombre.")
    if not 0.01 <= seconds <= MAX_WINDOW_SECONDS:
        raise LimitsError(f"{what}.seconds doit être compris entre 0,01 et {MAX_WINDOW_SECONDS}.")
    return {"calls": _calls(value.get("calls"), f"{what}.calls"), "seconds": seconds}


def read_config(body: Any) -> dict[str, Any]:
    """The controls' body as a configuration: each vendor's figures are its defaults but for those
    given, e.g. {"on": true, "xero": {"per_minute": {"calls": 10, "seconds": 2}, "concurrent": 2}}."""
    if not isinstance(body, dict):
        raise LimitsError("Le corps doit être un objet JSON.")
    unknown = set(body) - {"on", "observe_only", "service_ms", *LIMITS}
    if unknown:
        raise LimitsError(f"Réglage inconnu : {', '.join(sorted(unknown))}.")
    on = body.get("on", True)
    observe_only = body.get("observe_only", False)
    if not isinstance(on, bool) or not isinstance(observe_only, bool):
        raise LimitsError("on et observe_only valent true ou false.")
    service_ms = body.get("service_ms", 0)
    if (
        isinstance(service_ms, bool)
        or not isinstance(service_ms, int)
        or not 0 <= service_ms <= MAX_SERVICE_MS
    ):
        raise LimitsError(f"service_ms doit être un nombre entier entre 0 et {MAX_SERVICE_MS}.")
    vendors = {vendor: dict(figures) for vendor, figures in DEFAULTS.items()}
    for vendor in LIMITS:
        given = body.get(vendor, {})
        if not isinstance(given, dict):
            raise LimitsError(f"{vendor} doit être un objet.")
        names = {limit.name for limit in LIMITS[vendor]}
        for name, value in given.items():
            if name not in names:
                raise LimitsError(
                    f"{vendor} n'a pas de limite {name} (seulement {', '.join(sorted(names))})."
                )
            vendors[vendor][name] = _limit_value(vendor, name, value)
    return {
        "on": on,
        "observe_only": observe_only,
        "service_ms": service_ms,
        "epoch": uuid.uuid4().hex[:12],  # fresh counts for fresh figures
        "vendors": vendors,
    }


#: With SANDBOX_VENDOR_LIMITS on and nothing set through the controls: the vendors' own figures.
VENDOR_FIGURES = {"on": True, "observe_only": False, "service_ms": 0, "epoch": "0", "vendors": DEFAULTS}
OFF = {"on": False, "observe_only": False, "service_ms": 0, "epoch": "0", "vendors": DEFAULTS}


def current_config() -> dict[str, Any]:
    from sandbox.faults import get_setting

    stored = get_setting("limits")
    if isinstance(stored, dict):
        return stored
    return VENDOR_FIGURES if current_app.config.get("SANDBOX_VENDOR_LIMITS") else OFF


def set_config(body: Any) -> dict[str, Any]:
    from sandbox.faults import set_setting

    config = read_config(body)
    set_setting("limits", config)
    return config


# --- counting, in Redis ---------------------------------------------------------------------------

# KEYS: stats hash, stats index, in-progress set ("" when no concurrency limit), then one per window.
# ARGV: member, lease ms, enforce (1/0), concurrency limit (-1: none), stats member, window count,
#       concurrency problem name, then per window: calls, length in ms, problem name.
# Returns: accepted (1/0), problem, retry after (s), in progress, now (ms), then per window its count
#          (this call included when accepted) and the time its oldest call leaves it (ms).
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, lease = ARGV[1], tonumber(ARGV[2])
local enforce, climit = ARGV[3] == '1', tonumber(ARGV[4])
local n = tonumber(ARGV[6])
local stats, index, ckey = KEYS[1], KEYS[2], KEYS[3]
local problem, retry = '', 0
local inflight = 0
if climit >= 0 then
  redis.call('ZREMRANGEBYSCORE', ckey, '-inf', now)
  inflight = redis.call('ZCARD', ckey)
  if enforce and inflight >= climit then problem = ARGV[7]; retry = 1 end
end
local counts, resets = {}, {}
for i = 1, n do
  local key = KEYS[3 + i]
  local calls, window = tonumber(ARGV[5 + 3 * i]), tonumber(ARGV[6 + 3 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local oldest = now
  if first[2] then oldest = tonumber(first[2]) end
  counts[i], resets[i] = count, oldest + window
  if enforce and count >= calls then
    local wait = math.max(1, math.ceil((oldest + window - now) / 1000))
    if problem == '' or (problem ~= ARGV[7] and wait > retry) then problem = ARGV[7 + 3 * i]; retry = wait end
  end
end
redis.call('SADD', index, ARGV[5])
redis.call('EXPIRE', index, STATS_TTL)
redis.call('EXPIRE', stats, STATS_TTL)
if problem ~= '' then
  redis.call('HINCRBY', stats, 'refused', 1)
  redis.call('HINCRBY', stats, 'refused:' .. problem, 1)
else
  redis.call('HINCRBY', stats, 'accepted', 1)
  for i = 1, n do
    local key, window = KEYS[3 + i], tonumber(ARGV[6 + 3 * i])
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window + 1000)
    counts[i] = counts[i] + 1
    if counts[i] == 1 then resets[i] = now + window end
    local field = 'max:' .. ARGV[7 + 3 * i]
    if counts[i] > tonumber(redis.call('HGET', stats, field) or '0') then
      redis.call('HSET', stats, field, counts[i])
    end
  end
  if climit >= 0 then
    redis.call('ZADD', ckey, now + lease, member)
    redis.call('PEXPIRE', ckey, lease + 1000)
    inflight = inflight + 1
    if inflight > tonumber(redis.call('HGET', stats, 'max_concurrent') or '0') then
      redis.call('HSET', stats, 'max_concurrent', inflight)
    end
  end
end
local answer = {problem == '' and 1 or 0, problem, retry, inflight, now}
for i = 1, n do
  answer[#answer + 1] = counts[i]
  answer[#answer + 1] = resets[i]
end
return answer
""".replace("STATS_TTL", str(STATS_TTL))


class Counter:
    """The sandbox's connection to the counts, and the script that keeps them."""

    def __init__(self, url: str | None):
        if url:
            import redis

            self.redis = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        else:  # no Redis: one process, counted in it
            import fakeredis

            self.redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        self.script = self.redis.register_script(SCRIPT)


def _counter() -> Counter:
    return current_app.extensions["sandbox.limits"]


@dataclass
class Outcome:
    vendor: str
    figures: dict[str, Any]
    accepted: bool
    problem: str
    retry_after: int
    now_ms: int
    windows: dict[str, tuple[int, int]]  # name → (calls in it, when its oldest call leaves, ms)


def _scope_value(limit: Limit, company_id: str) -> str:
    if limit.scope == "app":
        return "app"
    if limit.scope == "token":
        bearer = request.headers.get("Authorization", "")[7:]
        return "t" + hashlib.sha256(bearer.encode()).hexdigest()[:20]
    return company_id


def check(vendor: str, company_id: str, config: dict[str, Any]) -> Outcome:
    """Count this call against the vendor's limits; whether it passes, and where each window stands."""
    epoch = config.get("epoch", "0")
    base = f"{PREFIX}{epoch}:"
    figures = config["vendors"][vendor]
    concurrency = next((lim for lim in LIMITS[vendor] if lim.name == "concurrent"), None)
    windows = [lim for lim in LIMITS[vendor] if lim.name != "concurrent" and figures.get(lim.name)]
    climit = figures.get("concurrent") if concurrency is not None else None
    member = uuid.uuid4().hex
    ckey = f"{base}c:{vendor}:{company_id}" if climit is not None else ""
    keys = [f"{base}stats:{vendor}:{company_id}", f"{base}stats", ckey]
    args: list[Any] = [
        member,
        LEASE_MS,
        "0" if config.get("observe_only") else "1",
        climit if climit is not None else -1,
        f"{vendor}:{company_id}",
        len(windows),
        concurrency.problem if concurrency else "",
    ]
    for limit in windows:
        keys.append(f"{base}w:{vendor}:{limit.name}:{_scope_value(limit, company_id)}")
        figure = figures[limit.name]
        args += [figure["calls"], max(1, round(figure["seconds"] * 1000)), limit.problem]
    answer = _counter().script(keys=keys, args=args)
    accepted, problem, retry, _inflight, now = answer[:5]
    problem = problem.decode() if isinstance(problem, bytes) else str(problem)
    if accepted and ckey:
        g.limits_slot = (ckey, member)
    return Outcome(
        vendor=vendor,
        figures=figures,
        accepted=bool(accepted),
        problem=problem,
        retry_after=int(retry),
        now_ms=int(now),
        windows={
            limit.name: (int(answer[5 + 2 * i]), int(answer[6 + 2 * i])) for i, limit in enumerate(windows)
        },
    )


def release() -> None:
    slot = g.pop("limits_slot", None)
    if slot is None:
        return
    try:
        _counter().redis.zrem(*slot)
    except Exception:  # the lease ends on its own
        log.warning("sandbox limits: could not release a call in progress", exc_info=True)


def counts() -> dict[str, Any]:
    """Per vendor and company: accepted, refused (and by limit), max_concurrent, in_progress,
    max_in_window (per limit): what tests assert."""
    config = current_config()
    base = f"{PREFIX}{config.get('epoch', '0')}:"
    connection = _counter().redis
    answer: dict[str, dict[str, Any]] = {}
    now_ms = time.time() * 1000
    for raw in sorted(connection.smembers(f"{base}stats")):
        entry = raw.decode()
        vendor, company_id = entry.split(":", 1)
        fields = {k.decode(): int(v) for k, v in connection.hgetall(f"{base}stats:{entry}").items()}
        in_progress = connection.zcount(f"{base}c:{vendor}:{company_id}", now_ms, "+inf")
        answer.setdefault(vendor, {})[company_id] = {
            "accepted": fields.get("accepted", 0),
            "refused": fields.get("refused", 0),
            "refused_by": {k[8:]: v for k, v in fields.items() if k.startswith("refused:")},
            "max_concurrent": fields.get("max_concurrent", 0),
            "in_progress": in_progress,
            "max_in_window": {
                limit.name: fields.get(f"max:{limit.problem}", 0)
                for limit in LIMITS[vendor]
                if limit.name != "concurrent"
            },
        }
    return answer


def reset() -> None:
    connection = _counter().redis
    keys = list(connection.scan_iter(f"{PREFIX}*", count=1000))
    for start in range(0, len(keys), 500):
        connection.delete(*keys[start : start + 500])


# --- the answers, in each vendor's words ------------------------------------------------------------


def _refusal(outcome: Outcome) -> Response:
    wait = str(outcome.retry_after)
    if outcome.vendor == "xero":
        response = Response(status=429)
        response.headers["Retry-After"] = wait
        response.headers["X-Rate-Limit-Problem"] = outcome.problem
        return response
    if outcome.vendor == "quickbooks":
        moment = datetime.fromtimestamp(outcome.now_ms / 1000, UTC).isoformat(timespec="milliseconds")
        error = {
            "Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "Detail": "The request limit was reached.",
            "code": "003001",
        }
        response = jsonify({"Fault": {"Error": [error], "type": "SERVICE"}, "time": moment})
        response.status_code = 429
        return response
    if outcome.vendor == "pennylane":
        return Response(
            f"Rate limit exceeded. Please retry in {wait} seconds.",
            status=429,
            mimetype="text/plain",
            headers={"retry-after": wait},
        )
    error = {
        "$severity": "error",
        "$dataCode": "TooManyRequests",
        "$message": "Too many requests, please retry later",
    }
    response = jsonify([{**error, "$source": ""}])
    response.status_code = 429
    response.headers["Retry-After"] = wait
    return response


XERO_HEADERS = {
    "per_day": "X-DayLimit-Remaining",
    "per_minute": "X-MinLimit-Remaining",
    "app_per_minute": "X-AppMinLimit-Remaining",
}


def _state_headers(outcome: Outcome, response: Response) -> None:
    """Where the windows stand, on every answer of the vendors that say it."""
    if outcome.vendor == "xero":
        for name, header in XERO_HEADERS.items():
            if name in outcome.windows:
                calls = outcome.figures[name]["calls"]
                response.headers[header] = str(max(0, calls - outcome.windows[name][0]))
    elif outcome.vendor == "pennylane" and "per_5_seconds" in outcome.windows:
        calls = outcome.figures["per_5_seconds"]["calls"]
        used, reset_ms = outcome.windows["per_5_seconds"]
        response.headers["ratelimit-limit"] = str(calls)
        response.headers["ratelimit-remaining"] = str(max(0, calls - used))
        response.headers["ratelimit-reset"] = str(math.ceil(reset_ms / 1000))


# --- the hooks on each dialect's API -----------------------------------------------------------------


def _hooks(vendor: str):
    def before():
        """After the dialect's own `authenticate` (registered before this): the company is known."""
        company = g.get("company")
        if company is None:
            return None
        config = current_config()
        if not config.get("on"):
            return None
        try:
            outcome = check(vendor, company.id, config)
        except Exception:  # counting must never take the sandbox down: the call passes uncounted
            log.warning("sandbox limits: could not count a %s call", vendor, exc_info=True)
            return None
        g.limits_outcome = outcome
        if not outcome.accepted:
            return _refusal(outcome)
        if config.get("service_ms"):
            time.sleep(config["service_ms"] / 1000)  # the vendor's own time, inside the slot
        return None

    def after(response: Response) -> Response:
        outcome = g.get("limits_outcome")
        if outcome is not None:
            _state_headers(outcome, response)
        # The call ends before its answer leaves: a caller that starts its next call on reading this
        # one's answer is never counted twice at once (the teardown only catches a view that raised).
        release()
        return response

    def teardown(_error: BaseException | None) -> None:
        release()

    return before, after, teardown


def _install() -> None:
    from sandbox.dialects import pennylane, quickbooks, sage, xero

    for vendor, module in (
        ("xero", xero),
        ("quickbooks", quickbooks),
        ("pennylane", pennylane),
        ("sage", sage),
    ):
        before, after, teardown = _hooks(vendor)
        module.api.before_request(before)
        module.api.after_request(after)
        module.api.teardown_request(teardown)


_install()  # once, when this module is first imported: before any app registers the blueprints


# --- the controls -----------------------------------------------------------------------------------

bp = Blueprint("sandbox_limits_api", __name__, url_prefix="/controls/api/limits")
sandbox_csrf.exempt(bp)


@bp.before_request
def controls_only():
    from sandbox.controls import json_only, staff_or_token_only

    return staff_or_token_only() or json_only()


@bp.errorhandler(LimitsError)
def _refused(error: LimitsError):
    return jsonify({"error": str(error)}), 400


def _public(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key != "epoch"}


@bp.get("")
def api_limits():
    return jsonify({"limits": _public(current_config()), "counts": counts()})


@bp.post("")
def api_set_limits():
    return jsonify({"limits": _public(set_config(request.get_json(silent=True)))})


@bp.post("/reset")
def api_reset():
    reset()
    return jsonify({"counts": counts()})


def init_app(app: Flask, redis_url: str | None) -> None:
    app.extensions["sandbox.limits"] = Counter(redis_url)
    app.register_blueprint(bp)
