"""HTTP to the accounting software: bounded retries with jittered backoff, Retry-After, typed errors."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from webapp import metrics
from webapp.connectors.base import AccessTokenRejected, ProviderError, ProviderValidationError, RateLimited

if TYPE_CHECKING:
    from webapp.connectors.limits import Budget

log = logging.getLogger(__name__)


@dataclass
class RetryPolicy:
    timeout: float = 30.0
    max_retries: int = 4
    backoff: float = 1.0  # seconds, doubled each attempt, with full jitter
    max_retry_after: float = 120.0  # longer waits are left to the job queue

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RetryPolicy:
        return cls(
            timeout=config["PROVIDER_TIMEOUT"],
            max_retries=config["PROVIDER_MAX_RETRIES"],
            backoff=config["PROVIDER_BACKOFF_SECONDS"],
            max_retry_after=config["PROVIDER_MAX_RETRY_AFTER"],
        )


def parse_retry_after(value: str | None, default: float = 5.0) -> float:
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


#: A call that got no whole answer: no connection, no answer in time, or an answer cut short.
TRANSIENT_FAILURES = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class ProviderHttp:
    def __init__(
        self,
        policy: RetryPolicy,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        describe: Callable[[requests.Response], Exception | None] | None = None,
        default_retry_after: float = 5.0,
        software: str = _l("Le logiciel comptable"),
    ):
        self.policy = policy
        self.session = session or requests.Session()
        self.sleep = sleep
        # A vendor's reading of its own error bodies, tried before the generic one.
        self.describe = describe
        # The wait after a 429 that names none (QuickBooks documents 60 seconds).
        self.default_retry_after = default_retry_after
        # Who answered, in the messages about answers that could not be read.
        self.software = software
        # The company's call budget (webapp.connectors.limits), when the connector acts for one.
        self.budget: Budget | None = None
        # Which software, in the operators' figures; and how many calls went out (each attempt).
        self.vendor = ""
        self.calls = 0

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One attempt, within the company's budget, counted in the operators' figures."""
        vendor = self.budget.vendor if self.budget is not None else self.vendor
        outcome = ""  # none: the budget refused, nothing went out
        try:
            if self.budget is None:
                outcome = "unreachable"
                self.calls += 1
                response = self.session.request(method, url, timeout=self.policy.timeout, **kwargs)
            else:
                with self.budget.slot():
                    outcome = "unreachable"
                    self.calls += 1
                    response = self.session.request(method, url, timeout=self.policy.timeout, **kwargs)
            status = response.status_code
            if status == 429:
                outcome = "rate_limited"
            elif status >= 500:
                outcome = "server_error"
            elif status >= 400:
                outcome = "client_error"
            else:
                outcome = "ok"
            return response
        finally:
            if outcome:
                metrics.inc("raccord_vendor_calls", vendor=vendor or "unknown", outcome=outcome)

    def _rate_limited(self, response: requests.Response) -> tuple[float, str]:
        """How long the software asks to wait, and which of its limits was reached, from its answer:
        Retry-After (Xero, Pennylane; QuickBooks sends none: its 60 seconds), and Xero's
        X-Rate-Limit-Problem (minute, day, concurrent, appminute). Told to the company's budget."""
        wait = parse_retry_after(response.headers.get("Retry-After"), self.default_retry_after)
        limit = (response.headers.get("X-Rate-Limit-Problem") or "").strip().lower() or "rate"
        vendor = self.budget.vendor if self.budget is not None else self.vendor
        metrics.inc("raccord_vendor_rate_limited", vendor=vendor or "unknown", limit=limit)
        if self.budget is not None:
            if limit == "day":
                self.budget.penalise(wait, limit)
                raise self.budget.daily_spent(datetime.now(UTC) + timedelta(seconds=wait))
            try:
                self.budget.penalise(wait, limit)
            except Exception:  # the pause not recorded: this call waits by itself
                log.warning("The %s budget was not told of a 429", vendor, exc_info=True)
                self.sleep(wait)
        return wait, limit

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The response of a successful call (2xx), or a typed error after bounded retries."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, url, **kwargs)
            except TRANSIENT_FAILURES as exc:
                if attempt > self.policy.max_retries:
                    raise ProviderError(
                        _("Le logiciel comptable ne répond pas. Réessayez dans quelques minutes."),
                        detail=type(exc).__name__,
                    ) from None
                self._backoff(attempt)
                continue

            status = response.status_code
            if status == 429:
                wait, limit = self._rate_limited(response)
                if attempt > self.policy.max_retries or wait > self.policy.max_retry_after:
                    raise RateLimited(wait, detail=_snippet(response))
                log.info("Rate limited (%s) by %s, waiting %.1fs", limit, url.split("?")[0], wait)
                if self.budget is None:
                    self.sleep(wait)
                # else: the budget's pause holds this call, and every other to the company, until then
                continue
            if status >= 500:
                if attempt > self.policy.max_retries:
                    raise ProviderError(
                        _(
                            "Le logiciel comptable est indisponible (erreur %(status)d). "
                            "Réessayez plus tard.",
                            status=status,
                        ),
                        detail=_snippet(response),
                    )
                self._backoff(attempt)
                continue
            if status >= 400 and self.describe is not None:
                described = self.describe(response)
                if described is not None:
                    raise described
            if status == 401:
                raise AccessTokenRejected(detail=_snippet(response))
            if status in (400, 409, 413, 415, 422):
                body = _json_or_none(response)
                body = body if isinstance(body, dict) else {}  # a list, a number: no field to name
                raise ProviderValidationError(
                    str(body.get("field") or ""),
                    _(
                        "Le logiciel comptable a refusé la demande : %(reason)s",
                        reason=str(body.get("message") or _("données invalides")),
                    ),
                    detail=_snippet(response),
                )
            if status >= 400:
                raise ProviderError(
                    _("Le logiciel comptable a refusé la demande (erreur %(status)d).", status=status),
                    detail=_snippet(response),
                )
            return response

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """The JSON body of a successful call. A body cut short or garbled is a transient fault of the
        network or the software, like a 5xx: a read is tried again within the same bounds. A write is
        not (the software may have done it; its idempotency key makes the job's own retry safe)."""
        attempt = 0
        while True:
            attempt += 1
            response = self.request(method, url, **kwargs)
            body = _json_or_none(response)
            if body is not None:
                return body
            if method.upper() not in ("GET", "HEAD") or attempt > self.policy.max_retries:
                raise ProviderError(
                    _("%(software)s a renvoyé une réponse illisible.", software=self.software),
                    detail=_snippet(response),
                )
            log.info("Unreadable answer from %s, trying again", url.split("?")[0])
            self._backoff(attempt)

    def _backoff(self, attempt: int) -> None:
        self.sleep(random.uniform(0, self.policy.backoff * (2 ** (attempt - 1))))


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _snippet(response: requests.Response) -> str:
    """The software's answer as kept for the timeline and the document: cut, secrets masked."""
    from webapp.services.events import redact

    return redact(f"HTTP {response.status_code}: {response.text[:2000]}")
