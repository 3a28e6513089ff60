"""The sandbox software's own data: companies, their lists, OAuth clients, grants and tokens, invoices."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin
from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, validates

from sandbox.columns import UTCDateTime, utcnow
from sandbox.inputs import BadField
from webapp.extensions import db

# Scopes the vendors' dialects are asked for, granted like the sandbox's own.
DIALECT_SCOPES = {
    "full_access",
    "ledger_accounts:readonly",
    "suppliers:all",
    "customers:all",
    "categories:readonly",
    "bank_accounts:readonly",
    "supplier_invoices:all",
    "customer_invoices:all",
    "file_attachments:all",
    "com.intuit.quickbooks.accounting",
    "offline_access",
    "accounting.settings",
    "accounting.contacts",
    "accounting.transactions",
    "accounting.attachments",
}


class SandboxCompany(db.Model):
    __tablename__ = "sandbox_company"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    siren: Mapped[str | None] = mapped_column(String(9))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The organisation this company belongs to (the key the host gives): only its users are offered
    #: it on the consent page. None: nobody's yet.
    owner: Mapped[str | None] = mapped_column(String(64), index=True)


class SandboxItem(db.Model):
    __tablename__ = "sandbox_item"
    __table_args__ = (
        UniqueConstraint("company_id", "kind", "external_id", name="uq_sandbox_item_external"),
        Index("ix_sandbox_item_page", "company_id", "kind", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("sandbox_company.id"))
    kind: Mapped[str] = mapped_column(String(30))
    external_id: Mapped[str] = mapped_column(String(120))
    code: Mapped[str | None] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(300))
    vat_number: Mapped[str | None] = mapped_column(String(40))
    siren: Mapped[str | None] = mapped_column(String(9))
    rate: Mapped[str | None] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(default=True)
    extras: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The Idempotency-Key of the request that created the item through the API, if one did.
    creation_key: Mapped[str | None] = mapped_column(String(120))
    # The item's id where a vendor's dialect speaks in GUIDs (Xero's AccountID, ContactID…).
    guid: Mapped[str] = mapped_column(String(36), default=lambda: str(uuid.uuid4()), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @validates("external_id", "code", "name", "vat_number", "siren", "rate", "creation_key")
    def _text_that_fits(self, key: str, value: Any) -> Any:
        """Whatever route set it (the API, a dialect, the controls): text that fits its column, or the
        request is refused by name, rather than failing in the database."""
        if value is None:
            return None
        length = self.__table__.c[key].type.length
        if not isinstance(value, str) or (length is not None and len(value) > length):
            raise BadField(key, f"{key} must be text of at most {length} characters")
        return value


class SandboxClient(db.Model, ClientMixin):
    __tablename__ = "sandbox_client"

    client_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    client_secret: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(120))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"lists", "invoices"} | DIALECT_SCOPES
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        from urllib.parse import urlsplit

        if redirect_uri in self.redirect_uris:
            return True
        # The sandbox is a local software: any loopback port reaching Raccord's callback is accepted.
        # Nothing a browser reads otherwise than Python: a backslash ('http://evil\\@127.0.0.1/' goes
        # to evil for a browser, to 127.0.0.1 for urlsplit), user info, spaces or control characters.
        if (
            any(char in redirect_uri for char in "\\@")
            or not redirect_uri.isprintable()
            or not redirect_uri.isascii()
            or " " in redirect_uri
        ):
            return False
        parts = urlsplit(redirect_uri)
        try:
            port = parts.port  # ValueError for ':99999', ':-1', ':80:evil.com'
        except ValueError:
            return False
        return (
            parts.scheme == "http"
            and parts.hostname in ("127.0.0.1", "localhost")
            and parts.netloc == (f"{parts.hostname}:{port}" if port is not None else parts.hostname)
            and parts.path.endswith("/oauth/callback")
        )

    def check_client_secret(self, client_secret: str) -> bool:
        import hmac

        return hmac.compare_digest(self.client_secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


class CoversCompanies:
    """A consent's companies: `company_id`, or `company_ids` where one consent covers several."""

    if TYPE_CHECKING:  # the columns are each model's own
        company_id: str
        company_ids: list[str] | None

    @property
    def companies(self) -> list[str]:
        """Every company this consent gave access to, `company_id` first."""
        return list(self.company_ids or [self.company_id])


class SandboxAuthCode(db.Model, AuthorizationCodeMixin, CoversCompanies):
    __tablename__ = "sandbox_auth_code"

    code: Mapped[str] = mapped_column(String(120), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80))
    company_id: Mapped[str] = mapped_column(ForeignKey("sandbox_company.id"))
    redirect_uri: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[str] = mapped_column(Text, default="")
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[float] = mapped_column(default=time.time)
    # Every company this consent authorised (Xero and Sage let one consent cover several), the
    # first being `company_id`; and the consent's identifier, Xero's authentication_event_id.
    company_ids: Mapped[list[str] | None] = mapped_column(JSON)
    auth_event_id: Mapped[str | None] = mapped_column(String(36))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() - self.created_at > 300


class SandboxGrant(db.Model, CoversCompanies):
    """One consent: a client's access to one company (or to several, where the vendor allows it: then
    `company_ids`). Expiring or revoking it ends every token under it."""

    __tablename__ = "sandbox_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80))
    company_id: Mapped[str] = mapped_column(ForeignKey("sandbox_company.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refresh_expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The day the consent ends whatever the use (QuickBooks' five-year maximum): tokens say so.
    consent_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    company_ids: Mapped[list[str] | None] = mapped_column(JSON)
    auth_event_id: Mapped[str | None] = mapped_column(String(36))


class SandboxConnection(db.Model):
    """Xero's connection: one per app and organisation (tenant). A new consent that includes the
    organisation updates it (new authEventId, updatedDateUtc) instead of adding another; DELETE
    /connections/{id} removes it (https://developer.xero.com/documentation/guides/oauth2/tenants)."""

    __tablename__ = "sandbox_connection"
    __table_args__ = (UniqueConstraint("client_id", "company_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    client_id: Mapped[str] = mapped_column(String(80))
    company_id: Mapped[str] = mapped_column(ForeignKey("sandbox_company.id"), index=True)
    auth_event_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def token_hash(value: str) -> str:
    """What the sandbox keeps of a token it issued: tokens are long random strings, so a plain SHA-256
    is enough (no salt or slow hash needed, unlike passwords)."""
    return hashlib.sha256(value.encode()).hexdigest()


class SandboxToken(db.Model, TokenMixin):
    __tablename__ = "sandbox_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("sandbox_grant.id"))
    client_id: Mapped[str] = mapped_column(String(80))
    company_id: Mapped[str] = mapped_column(ForeignKey("sandbox_company.id"))
    # Only a hash of each token is kept (token_hash): a copy of the table gives no access.
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[float] = mapped_column(default=time.time)
    expires_in: Mapped[int] = mapped_column(default=1800)
    refresh_expires_at: Mapped[float | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(default=False)
    # When a refresh replaced this token's refresh token (Xero still accepts it for 30 minutes).
    rotated_at: Mapped[float | None] = mapped_column()

    @classmethod
    def by_access_token(cls, value: str) -> SandboxToken | None:
        return db.session.scalar(select(cls).where(cls.access_token_hash == token_hash(value)))

    @classmethod
    def by_refresh_token(cls, value: str) -> SandboxToken | None:
        return db.session.scalar(select(cls).where(cls.refresh_token_hash == token_hash(value)))

    def check_client(self, client: ClientMixin) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked


class SandboxInvoice(db.Model):
    __tablename__ = "sandbox_invoice"
    __table_args__ = (UniqueConstraint("company_id", "idempotency_key", name="uq_sandbox_invoice_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("sandbox_company.id"))
    idempotency_key: Mapped[str] = mapped_column(String(120))
    guid: Mapped[str] = mapped_column(String(36), default=lambda: str(uuid.uuid4()), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxAttachment(db.Model):
    """A file attached to an invoice (its PDF), one per file name: sending it again replaces it."""

    __tablename__ = "sandbox_attachment"
    __table_args__ = (UniqueConstraint("invoice_id", "filename", name="uq_sandbox_attachment_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("sandbox_invoice.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxSetting(db.Model):
    """Knobs for tests and support: token lifetimes, latency, faults for the next calls."""

    __tablename__ = "sandbox_setting"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
