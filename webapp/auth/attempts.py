"""Limits on password guesses, counted before the password is checked.

Each attempt takes a place in every limit that applies *before* the password is checked, in one
atomic step of the store (Redis's INCR): guesses sent all at once are counted all at once, where a
check-then-count let fifty of them through. An attempt that turns out right gives its places back,
so a cabinet behind one address logging in at nine is never counted as guessing.

The limits (README, 'Sécurité'): per account and address, per address, and more slowly per account
from anywhere; a browser where the account has logged in before is exempt from the last one
(auth/devices.py), so guesses from elsewhere never lock the user out. Changing one's password is
limited the same way per account. With Redis down, the counting goes on in this process's memory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from flask import current_app
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from webapp.extensions import limiter

log = logging.getLogger(__name__)


class Kind:
    ACCOUNT_AND_ADDRESS = "account-address"
    ADDRESS = "address"
    ACCOUNT = "account"  # from anywhere: the one a known browser is exempt from
    PASSWORD_CHANGE = "password-change"  # noqa: S105 - a limit's name, not a password
    RESET_ACCOUNT_AND_ADDRESS = "reset-account-address"  # « Mot de passe oublié ? », as logins are
    RESET_ADDRESS = "reset-address"


@dataclass
class Reservation:
    """The places an attempt took; `refused` names the limit that was full, if one was."""

    taken: list[tuple[RateLimitItem, tuple[str, ...]]] = field(default_factory=list)
    refused: str | None = None

    def give_back(self) -> None:
        for item, identifiers in self.taken:
            _call(lambda strategy, item=item, ids=identifiers: strategy.hit(item, *ids, cost=-1))
        self.taken = []


def _fallback() -> FixedWindowRateLimiter:
    strategy = current_app.extensions.get("raccord.login_fallback")
    if strategy is None:
        strategy = current_app.extensions["raccord.login_fallback"] = FixedWindowRateLimiter(MemoryStorage())
    return strategy


#: After the store failed, how long the counting stays in memory before the store is tried again
#: (each try against a store that is down waits for its connection timeout).
RETRY_STORE_AFTER = 30.0


def _call(operation):
    """On the app's store (Redis), or in memory while it cannot be reached."""
    extensions = current_app.extensions
    if time.monotonic() >= extensions.get("raccord.login_store_down_until", 0.0):
        try:
            return operation(limiter.limiter)
        except Exception:  # the store is unreachable: a login must not fail for that
            log.warning("Login limits: store unreachable, counting in memory for %ss", RETRY_STORE_AFTER)
            extensions["raccord.login_store_down_until"] = time.monotonic() + RETRY_STORE_AFTER
    return operation(_fallback())


def reserve(limits: list[tuple[str, str, tuple[str, ...]]]) -> Reservation:
    """Take a place in each (kind, limits as configured, identifiers); stop at the first that is full
    (that attempt then takes nothing)."""
    reservation = Reservation()
    for kind, configured, identifiers in limits:
        for item in parse_many(configured):
            ids = ("login", kind, *identifiers)
            if _call(lambda strategy, item=item, ids=ids: strategy.hit(item, *ids)):
                reservation.taken.append((item, ids))
                continue
            _call(lambda strategy, item=item, ids=ids: strategy.hit(item, *ids, cost=-1))
            reservation.give_back()
            reservation.refused = kind
            return reservation
    return reservation
