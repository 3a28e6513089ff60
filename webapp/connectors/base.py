"""The connector interface every accounting software implements, its data shapes and its typed errors."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from webapp.models.integration import ListKind

T = TypeVar("T")


class ConnectorError(Exception):
    """Base of the errors a connector raises; `message` is French and safe to show."""

    message = _l("Le logiciel comptable a renvoyé une erreur.")

    def __init__(self, message: str | None = None, *, detail: str = ""):
        # Said in the language of the moment (French in the workers), and kept as text.
        self.message = str(message or self.message)
        super().__init__(self.message)
        self.detail = detail  # the software's own words, redacted, for the timeline


class IntegrationExpired(ConnectorError):
    message = _l("L'accès au logiciel comptable a expiré ou a été révoqué. Reconnectez l'intégration.")


class RateLimited(ConnectorError):
    message = _l("Le logiciel comptable limite le nombre de demandes. Réessayez dans quelques minutes.")

    def __init__(self, retry_after: float, message: str | None = None, *, detail: str = ""):
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class DailyBudgetSpent(ConnectorError):
    """The company's calls for the day at its software are spent (webapp.connectors.limits): the work
    waits for `resume_at` (an aware UTC datetime) instead of failing half-way."""

    message = _l("La limite quotidienne de demandes du logiciel comptable pour cette société est atteinte.")

    def __init__(self, resume_at: datetime, message: str | None = None, *, detail: str = ""):
        super().__init__(message, detail=detail)
        self.resume_at = resume_at


class ProviderError(ConnectorError):
    message = _l("Le logiciel comptable est indisponible pour le moment. Réessayez plus tard.")


class ProviderValidationError(ConnectorError):
    def __init__(self, field_name: str, message: str, *, detail: str = ""):
        super().__init__(message, detail=detail)
        self.field = field_name


class AccessTokenRejected(ConnectorError):
    """The API refused the access token (401): refresh once, then give up as expired."""


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: float  # epoch seconds
    scope: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_oauth(cls, token: dict[str, Any]) -> TokenSet:
        expires_in = float(token.get("expires_in") or 0)
        expires_at = token.get("expires_at") or (time.time() + (expires_in or 1800))
        extra: dict[str, Any] = {"lifetime": expires_in} if expires_in else {}
        # When the refresh token itself ends (Intuit: x_refresh_token_expires_in): past it, only a
        # new consent restores the access, so the dossier announces it beforehand.
        refresh_in = token.get("x_refresh_token_expires_in") or token.get("refresh_token_expires_in")
        try:
            if refresh_in is not None and float(refresh_in) > 0:
                extra["refresh_expires_at"] = time.time() + float(refresh_in)
        except (TypeError, ValueError):
            pass
        return cls(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            expires_at=float(expires_at),
            scope=token.get("scope") or "",
            # How long this software's access tokens live (5 minutes at Sage, a day at Pennylane):
            # the refresh margin is kept well inside it.
            extra=extra,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scope": self.scope,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenSet:
        return cls(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token"),
            expires_at=float(data["expires_at"]),
            scope=data.get("scope", ""),
            extra=data.get("extra") or {},
        )

    def __repr__(self) -> str:  # never the secrets
        return f"<TokenSet expires_at={self.expires_at}>"


@dataclass(frozen=True)
class Company:
    id: str
    name: str
    # What the connector needs to use this company with the same tokens (Xero's connection id).
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Company:
        return cls(id=str(data["id"]), name=str(data["name"]), extra=dict(data.get("extra") or {}))


@dataclass
class NormalisedItem:
    external_id: str
    name: str
    code: str | None = None
    vat_number: str | None = None
    siren: str | None = None
    rate: str | None = None
    active: bool = True
    extras: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "name": self.name,
            "code": self.code,
            "vat_number": self.vat_number,
            "siren": self.siren,
            "rate": self.rate,
            "active": self.active,
            "extras": self.extras,
        }


#: What Raccord's lists hold of each field (webapp/models/lists.py): a longer value from a software
#: would fail in the database, after the connector, as an error no user can read.
ITEM_LENGTHS = {"external_id": 120, "code": 60, "name": 300, "vat_number": 40, "siren": 9, "rate": 12}


def checked_item(item: NormalisedItem, software: str) -> NormalisedItem:
    """`item` if Raccord's lists can hold it: text fields of text, within their columns (a name too
    long is cut, it only labels the item), a JSON object of extras; else ProviderError naming the
    software and the field."""
    for name, length in ITEM_LENGTHS.items():
        value = getattr(item, name)
        if value is None and name not in ("external_id", "name"):
            continue
        if not isinstance(value, str) or (name in ("external_id", "name") and not value.strip()):
            raise ProviderError(
                _(
                    "%(software)s a renvoyé un élément de liste illisible (champ %(field)s).",
                    software=software,
                    field=name,
                )
            )
        if len(value) > length:
            if name != "name":
                raise ProviderError(
                    _(
                        "%(software)s a renvoyé un élément de liste illisible (champ %(field)s trop long).",
                        software=software,
                        field=name,
                    )
                )
            item.name = value[:length]
    if not isinstance(item.active, bool) or not isinstance(item.extras, dict):
        raise ProviderError(_("%(software)s a renvoyé un élément de liste illisible.", software=software))
    return item


@dataclass(frozen=True)
class Attachment:
    """A file sent with an invoice: its PDF."""

    filename: str
    content: bytes
    content_type: str = "application/pdf"

    def __repr__(self) -> str:
        return f"<Attachment {self.filename} {len(self.content)} bytes>"


def with_renewal(tokens: Any, call: Callable[[], T]) -> T:
    """Run `call`; if the software refuses the access token and the tokens can renew, renew and retry once."""
    try:
        return call()
    except AccessTokenRejected:
        renew = getattr(tokens, "renew", None)
        if renew is None:
            raise
        renew()
        return call()


class Connector(abc.ABC):
    """One accounting software. Instances are cheap: one per use, configured from the app."""

    key: str
    name: str

    @abc.abstractmethod
    def authorization_url(self, *, redirect_uri: str, state: str, code_verifier: str) -> str: ...

    @abc.abstractmethod
    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, callback: Mapping[str, str] | None = None
    ) -> TokenSet:
        """Trade the code for tokens; `callback` has the callback's other parameters (QuickBooks' realmId)."""

    @abc.abstractmethod
    def refresh(self, tokens: TokenSet) -> TokenSet: ...

    @abc.abstractmethod
    def company(self, tokens: TokenSet) -> Company: ...

    def companies(self, tokens: TokenSet) -> list[Company]:
        """Every company the consent just given covers (Xero and Sage: possibly several; the others
        ask for one on their consent page). The user chooses, and `use_company` records the choice."""
        return [self.company(tokens)]

    def use_company(self, tokens: TokenSet, company: Company) -> None:
        """Make the tokens act on `company` (one of `companies`): where the software needs it said.
        The others name the company in the tokens already (QuickBooks' realmId) or have one only."""
        return None

    @abc.abstractmethod
    def iter_pages(
        self, tokens: TokenSet, kind: ListKind, *, since: datetime | None = None
    ) -> Iterator[list[NormalisedItem]]:
        """Yield the list page by page, so memory does not grow with its size."""

    @abc.abstractmethod
    def find_parties(self, tokens: TokenSet, kind: ListKind, *, term: str) -> list[NormalisedItem]:
        """Suppliers (or customers) whose name, VAT number or SIREN contains `term`, archived ones too."""

    @abc.abstractmethod
    def create_party(
        self,
        tokens: TokenSet,
        kind: ListKind,
        *,
        name: str,
        vat_number: str | None,
        siren: str | None,
        idempotency_key: str,
    ) -> NormalisedItem:
        """Create a supplier (or customer); sent twice with the same key, it exists once."""

    @abc.abstractmethod
    def publish_invoice(
        self,
        tokens: TokenSet,
        invoice: dict[str, Any],
        *,
        idempotency_key: str,
        attachment: Attachment | None = None,
    ) -> str:
        """Create the invoice (once, whatever the retries) with its PDF attached; return its id upstream."""

    @abc.abstractmethod
    def revoke(self, tokens: TokenSet) -> None: ...
