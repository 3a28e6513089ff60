"""Xero, through its Accounting API 2.0 (https://developer.xero.com/documentation/api/accounting/overview).

OAuth 2 (authorisation code with PKCE) on login.xero.com / identity.xero.com; after consent, the
organisation ('tenant') comes from GET https://api.xero.com/connections and every API call names it
in the `xero-tenant-id` header (https://developer.xero.com/documentation/guides/oauth2/auth-flow).
Access tokens last 30 minutes; refresh tokens are single use and rotate
(https://developer.xero.com/documentation/guides/oauth2/token-types): the new one is stored at once.

How Xero's data maps to Raccord's lists (a French organisation):
- Plan comptable: Accounts other than Type BANK; Code is the PCG number (606100), AccountID the id.
  Status ACTIVE is active; ARCHIVED (and DELETED) become inactive. An account whose ReportingCode is
  LIA.CUR.TAX.REV is flagged as a reverse-charge VAT account.
- Moyens de paiement: Accounts of Type BANK (bank accounts and cards).
- Fournisseurs / Clients: Contacts with IsSupplier / IsCustomer. Xero sets those flags only once a
  contact has a bill or an invoice, so a contact with neither is offered in both lists. TaxNumber
  is the VAT number, CompanyNumber the SIREN. Archived contacts are read with includeArchived=true,
  so that they become inactive here instead of vanishing.
- Taux de TVA: TaxRates; TaxType (e.g. TAX001 or a French code) is the id, EffectiveRate the rate.
- Catégories analytiques: each Option of each TrackingCategory, named 'Catégorie : Option'.
Incremental reads send If-Modified-Since (UTC) on Accounts and Contacts; TaxRates and
TrackingCategories are small and always read whole.

Publishing: PUT /Invoices (ACCPAY for purchases, ACCREC for sales) with the Idempotency-Key header
(≤ 128 characters, https://developer.xero.com/documentation/guides/idempotent-requests/idempotency),
one line with the account code, the tax type and the tracking option; then the PDF with
PUT /Invoices/{InvoiceID}/Attachments/{FileName} (raw bytes; the same name replaces).
Invoices are created as AUTHORISED when the coding is complete, as Xero's users expect of a
published bill; the payment itself is recorded by the bank feed, not here.

Errors: 401 with "TokenExpired" → refresh once; 403 "AuthenticationUnsuccessful" (the organisation
was disconnected) → Expirée; 400 ValidationException → the first ValidationErrors message, kept in
Xero's words beside the French one; 429 → wait Retry-After (X-Rate-Limit-Problem says which limit:
60 per minute, 5 000 per day per organisation, https://developer.xero.com/documentation/guides/oauth2/limits).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from webapp.connectors.base import (
    AccessTokenRejected,
    Attachment,
    Company,
    ConnectorError,
    IntegrationExpired,
    NormalisedItem,
    ProviderError,
    ProviderValidationError,
    TokenSet,
    with_renewal,
)
from webapp.connectors.http import ProviderHttp, RetryPolicy, _json_or_none, _snippet
from webapp.connectors.oauth import OAuthClient, OAuthConnector
from webapp.models.integration import ListKind

SCOPES = (
    "offline_access accounting.settings accounting.contacts accounting.transactions accounting.attachments"
)
REVERSE_CHARGE_REPORTING_CODE = "LIA.CUR.TAX.REV"
GENERIC = _l("Le logiciel comptable")


def xero_error(response: requests.Response) -> ConnectorError | None:
    """Xero's error bodies as typed errors, whatever their shape (None: let the generic handling
    decide, for 401, 429 and 5xx)."""
    body = _json_or_none(response)
    status = response.status_code
    if status == 403:
        detail = str(body.get("Detail") or "") if isinstance(body, dict) else ""
        if "AuthenticationUnsuccessful" in detail or not detail:
            return IntegrationExpired(detail=_snippet(response))
        return ProviderError(
            _("Xero a refusé l'accès (erreur 403) : %(reason)s", reason=detail[:200]),
            detail=_snippet(response),
        )
    if status == 400 and isinstance(body, dict) and body.get("Type") == "ValidationException":
        messages = [
            str(error["Message"])
            for element in _as_list(body.get("Elements"))
            if isinstance(element, dict)
            for error in _as_list(element.get("ValidationErrors"))
            if isinstance(error, dict) and isinstance(error.get("Message"), str) and error["Message"]
        ]
        if not messages and isinstance(body.get("Message"), str) and body["Message"]:
            messages = [body["Message"]]
        message = messages[0][:500] if messages else _("données invalides")
        return ProviderValidationError(
            _field_of(message),
            _("Xero a refusé la demande : %(reason)s", reason=message),
            detail=_snippet(response),
        )
    if status in (400, 409, 413, 415, 422):
        message = body.get("Message") if isinstance(body, dict) else None
        return ProviderValidationError(
            "",
            _("Xero a refusé la demande : %(reason)s", reason=message[:500])
            if isinstance(message, str) and message
            else _("Xero a refusé la demande (erreur %(status)d).", status=status),
            detail=_snippet(response),
        )
    return None


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _field_of(message: str) -> str:
    lowered = message.lower()
    for needle, field in (
        ("account code", "account_id"),
        ("taxtype", "tax_rate_id"),
        ("contact", "contact_id"),
    ):
        if needle in lowered:
            return field
    return ""


def parse_msdate(value: Any) -> datetime | None:
    """Xero's '/Date(1573755038314+0000)/' as an aware datetime; None when it is not one."""
    found = _MS_DATE.fullmatch(value) if isinstance(value, str) else None
    if not found:
        return None
    try:
        return datetime.fromtimestamp(int(found.group(1)) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


_GUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_MS_DATE = re.compile(r"/Date\((-?[0-9]{1,15})([+-][0-9]{4})?\)/")
#: Xero's largest page of Contacts (https://developer.xero.com/documentation/api/accounting/contacts:
#: 100 by default, up to 1000 with pageSize).
MAX_PAGE_SIZE = 1000
#: Beyond this many pages of one list, the answers are not those of a real organisation.
MAX_PAGES = 10_000


class UnexpectedAnswer(ValueError):
    """An answer of Xero that does not have the shape Xero documents (turned into a ProviderError)."""


def _unexpected(what: str, problem: str) -> ProviderError:
    return ProviderError(
        _(
            "Xero a renvoyé une réponse inattendue (%(what)s). Réessayez plus tard ; si cela se reproduit, "
            "contactez le support de Raccord.",
            what=what,
        ),
        detail=problem[:500],
    )


def _objects(body: Any, key: str) -> list[dict]:
    """`body[key]`: a list of objects, as every list of Xero comes."""
    if not isinstance(body, dict):
        raise UnexpectedAnswer(f"the answer is a {type(body).__name__}, not an object")
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(each, dict) for each in value):
        raise UnexpectedAnswer(f"{key} is not a list of objects")
    return value


def _first(body: Any, key: str) -> dict:
    found = _objects(body, key)
    if not found:
        raise UnexpectedAnswer(f"{key} is empty")
    return found[0]


def _text(raw: dict, key: str, *, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise UnexpectedAnswer(f"{key} is missing")
        return None
    if not isinstance(value, str):
        raise UnexpectedAnswer(f"{key} is a {type(value).__name__}, not text")
    return value


def _status(raw: dict, key: str) -> bool:
    """Whether a Status / ContactStatus says ACTIVE (absent: active, as Xero omits it on some lists)."""
    value = raw.get(key, "ACTIVE")
    if not isinstance(value, str):
        raise UnexpectedAnswer(f"{key} is not text")
    return value == "ACTIVE"


def _rate(raw: dict) -> str | None:
    rate = raw.get("EffectiveRate", raw.get("DisplayTaxRate"))
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float | str):
        raise UnexpectedAnswer("EffectiveRate is not a number")
    try:
        number = Decimal(str(rate))
    except InvalidOperation:
        raise UnexpectedAnswer("EffectiveRate is not a number") from None
    if not number.is_finite() or not 0 <= number <= 100:
        raise UnexpectedAnswer("EffectiveRate is not a rate")
    return format(float(number), "g")


def auth_event_of(access_token: str) -> str | None:
    """The `authentication_event_id` claim of a Xero access token (a JWT), or None."""
    parts = (access_token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    event = payload.get("authentication_event_id") if isinstance(payload, dict) else None
    return event if isinstance(event, str) and event else None


class XeroConnector(OAuthConnector):
    key = "xero"
    name = "Xero"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authorize_url: str,
        token_url: str,
        revoke_url: str,
        connections_url: str,
        api_url: str,
        policy: RetryPolicy,
        page_size: int = MAX_PAGE_SIZE,
    ):
        self.api_url = api_url.rstrip("/")
        self.connections_url = connections_url
        # The largest page Xero gives, unless Raccord is configured for less (LIST_PAGE_SIZE).
        self.page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
        self.http = ProviderHttp(policy, describe=xero_error)
        self.oauth = OAuthClient(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=authorize_url,
            token_url=token_url,
            revoke_url=revoke_url,
            scope=SCOPES,
            policy=policy,
        )

    # --- OAuth (tokens and consent: OAuthConnector) ---

    def company(self, tokens: TokenSet) -> Company:
        """The organisation of a consent that covered exactly one."""
        found = self.companies(tokens)
        self.use_company(tokens, found[0])
        return found[0]

    def companies(self, tokens: TokenSet) -> list[Company]:
        """The organisations this consent authorised, never others the user connected before.

        Xero's guidance: the access token is a JWT whose `authentication_event_id` is the
        `authEventId` of the connections that consent made or updated; GET /connections filters on it
        (https://developer.xero.com/documentation/guides/oauth2/auth-flow). The token comes straight
        from Xero's token endpoint, so its claims are read without checking the signature."""
        event = auth_event_of(tokens.access_token)
        if not event:
            raise ProviderError(
                _(
                    "Xero n'a pas dit quelles organisations viennent d'être autorisées. "
                    "Recommencez la connexion."
                ),
                detail="access token without authentication_event_id",
            )
        connections = with_renewal(
            tokens,
            lambda: self.http.json(
                "GET",
                self.connections_url,
                params={"authEventId": event},
                headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"},
            ),
        )
        if not isinstance(connections, list):
            raise ProviderError(
                _("Xero a renvoyé une liste d'organisations illisible."), detail=repr(connections)[:300]
            )
        found = [
            Company(
                id=c["tenantId"],
                name=c["tenantName"]
                if isinstance(c.get("tenantName"), str) and c["tenantName"]
                else _("Organisation Xero"),
                extra={"connection_id": c["id"] if isinstance(c.get("id"), str) else None},
            )
            for c in connections
            if isinstance(c, dict)
            and c.get("tenantType") == "ORGANISATION"
            and isinstance(c.get("tenantId"), str)
            and c["tenantId"]
            and c.get("authEventId") == event  # whatever the filter did
        ]
        if not found:
            raise ProviderError(
                _("Aucune organisation Xero n'a été autorisée : recommencez en en choisissant une.")
            )
        return found

    def use_company(self, tokens: TokenSet, company: Company) -> None:
        tokens.extra["tenant_id"] = company.id
        tokens.extra["connection_id"] = company.extra.get("connection_id")

    # --- API ---
    def _call(
        self, tokens: TokenSet, method: str, path: str, *, since: datetime | None = None, **kwargs: Any
    ) -> Any:
        extra_headers = kwargs.pop("headers", {})

        def call() -> Any:
            headers = {
                "Authorization": f"Bearer {tokens.access_token}",
                "xero-tenant-id": str(tokens.extra.get("tenant_id") or ""),
                "Accept": "application/json",
                **extra_headers,
            }
            if since is not None:
                # An ISO 8601 date-time, as Xero's description types the header.
                headers["If-Modified-Since"] = since.astimezone(UTC).isoformat(timespec="seconds")
            return self.http.json(method, f"{self.api_url}{path}", headers=headers, **kwargs)

        try:
            return with_renewal(tokens, call)
        except ProviderError as error:
            generic = str(GENERIC)
            if type(error) is not ProviderError or not error.message.startswith(generic):
                raise
            # The generic words of the HTTP layer (unavailable, no answer, unreadable), naming Xero.
            raise ProviderError("Xero" + error.message[len(generic) :], detail=error.detail) from None

    def iter_pages(
        self, tokens: TokenSet, kind: ListKind, *, since: datetime | None = None
    ) -> Iterator[list[NormalisedItem]]:
        try:
            if kind in (ListKind.ACCOUNTS, ListKind.PAYMENT_METHODS):
                body = self._call(tokens, "GET", "/Accounts", since=since)
                bank = kind is ListKind.PAYMENT_METHODS
                yield [
                    self._account(raw)
                    for raw in _objects(body, "Accounts")
                    if (raw.get("Type") == "BANK") == bank
                ]
            elif kind in (ListKind.SUPPLIERS, ListKind.CUSTOMERS):
                yield from self._contacts(tokens, kind, since)
            elif kind is ListKind.TAX_RATES:
                body = self._call(tokens, "GET", "/TaxRates")
                yield [self._tax_rate(raw) for raw in _objects(body, "TaxRates")]
            elif kind is ListKind.TRACKING_CATEGORIES:
                body = self._call(tokens, "GET", "/TrackingCategories", params={"includeArchived": "true"})
                yield [
                    self._tracking_option(category, option)
                    for category in _objects(body, "TrackingCategories")
                    for option in (
                        _objects(category, "Options") if category.get("Options") is not None else []
                    )
                ]
        except UnexpectedAnswer as problem:
            raise _unexpected(_("liste"), str(problem)) from None

    def _contacts(
        self, tokens: TokenSet, kind: ListKind, since: datetime | None
    ) -> Iterator[list[NormalisedItem]]:
        page = 1
        while True:
            body = self._call(
                tokens,
                "GET",
                "/Contacts",
                since=since,
                params={"page": page, "pageSize": self.page_size, "includeArchived": "true"},
            )
            contacts = _objects(body, "Contacts")
            yield [self._contact(raw) for raw in contacts if self._in_list(raw, kind)]
            pagination = body.get("pagination")
            if pagination is not None and not isinstance(pagination, dict):
                raise UnexpectedAnswer("pagination is not an object")
            last = (pagination or {}).get("pageCount")
            if last is not None and (isinstance(last, bool) or not isinstance(last, int)):
                raise UnexpectedAnswer("pagination.pageCount is not a whole number")
            if not contacts or (last is not None and page >= last):
                return
            if last is None and len(contacts) < self.page_size:
                return
            if page >= MAX_PAGES:
                raise UnexpectedAnswer(f"more than {MAX_PAGES} pages of contacts")
            page += 1

    @staticmethod
    def _in_list(raw: dict, kind: ListKind) -> bool:
        supplier, customer = bool(raw.get("IsSupplier")), bool(raw.get("IsCustomer"))
        if not supplier and not customer:
            return True
        return supplier if kind is ListKind.SUPPLIERS else customer

    @staticmethod
    def _in_list(raw: dict, kind: ListKind) -> bool:
        supplier, customer = raw.get("IsSupplier"), raw.get("IsCustomer")
        if not isinstance(supplier, bool | None) or not isinstance(customer, bool | None):
            raise UnexpectedAnswer("IsSupplier or IsCustomer is not true or false")
        if not supplier and not customer:
            return True
        return bool(supplier if kind is ListKind.SUPPLIERS else customer)

    @staticmethod
    def _account(raw: dict) -> NormalisedItem:
        kind = _text(raw, "Type", required=False) or ""
        return NormalisedItem(
            external_id=_text(raw, "AccountID"),
            name=_text(raw, "Name"),
            code=_text(raw, "Code", required=False),
            active=_status(raw, "Status"),
            extras={
                "type": kind.lower(),
                "reverse_charge": raw.get("ReportingCode") == REVERSE_CHARGE_REPORTING_CODE,
            },
        )

    @staticmethod
    def _contact(raw: dict) -> NormalisedItem:
        email = _text(raw, "EmailAddress", required=False)
        return NormalisedItem(
            external_id=_text(raw, "ContactID"),
            name=_text(raw, "Name"),
            code=_text(raw, "ContactNumber", required=False),
            vat_number=_text(raw, "TaxNumber", required=False),
            siren=_text(raw, "CompanyNumber", required=False),
            active=_status(raw, "ContactStatus"),
            extras={"EmailAddress": email} if email else {},
        )

    @staticmethod
    def _tax_rate(raw: dict) -> NormalisedItem:
        tax_type = _text(raw, "TaxType")
        return NormalisedItem(
            external_id=tax_type,
            name=_text(raw, "Name"),
            code=tax_type,
            rate=_rate(raw),
            active=_status(raw, "Status"),
        )

    @staticmethod
    def _tracking_option(category: dict, option: dict) -> NormalisedItem:
        category_name, option_name = _text(category, "Name"), _text(option, "Name")
        return NormalisedItem(
            external_id=_text(option, "TrackingOptionID"),
            name=f"{category_name} : {option_name}",
            code=None,
            active=_status(option, "Status") and _status(category, "Status"),
            extras={"category": category_name, "option": option_name},
        )

    # --- parties ---
    def find_parties(self, tokens: TokenSet, kind: ListKind, *, term: str) -> list[NormalisedItem]:
        found: list[NormalisedItem] = []
        searches = [{"searchTerm": term}]
        if term.isalnum() and any(c.isdigit() for c in term):  # a VAT number or a SIREN
            searches += [{"where": f'TaxNumber=="{term}"'}, {"where": f'CompanyNumber=="{term}"'}]
        try:
            for params in searches:
                body = self._call(tokens, "GET", "/Contacts", params={**params, "includeArchived": "true"})
                found += [self._contact(raw) for raw in _objects(body, "Contacts")]
        except UnexpectedAnswer as problem:
            raise _unexpected(_("recherche de contacts"), str(problem)) from None
        return found

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
        contact: dict[str, Any] = {"Name": name}
        if vat_number:
            contact["TaxNumber"] = vat_number
        if siren:
            contact["CompanyNumber"] = siren
        body = self._call(
            tokens,
            "PUT",
            "/Contacts",
            json={"Contacts": [contact]},
            headers={"Idempotency-Key": idempotency_key[:128]},
        )
        try:
            return self._contact(_first(body, "Contacts"))
        except UnexpectedAnswer as problem:
            raise _unexpected(_("création du contact"), str(problem)) from None

    # --- publishing ---
    def publish_invoice(
        self,
        tokens: TokenSet,
        invoice: dict[str, Any],
        *,
        idempotency_key: str,
        attachment: Attachment | None = None,
    ) -> str:
        line: dict[str, Any] = {
            "Description": invoice.get("description") or f"Facture {invoice['number']}",
            "Quantity": 1,
            "UnitAmount": float(invoice["amount_net"]),
            "TaxAmount": float(invoice["amount_tax"]),
            "AccountCode": invoice.get("account_code"),
            "TaxType": invoice.get("tax_rate_id"),
        }
        tracking = invoice.get("tracking") or {}
        if tracking.get("category") and tracking.get("option"):
            line["Tracking"] = [{"Name": tracking["category"], "Option": tracking["option"]}]
        body = {
            "Type": "ACCPAY" if invoice["type"] == "purchase" else "ACCREC",
            "Contact": {"ContactID": invoice["contact_id"]},
            "Date": invoice["date"],
            "InvoiceNumber": invoice["number"],
            "Reference": invoice["number"],
            "CurrencyCode": invoice.get("currency") or "EUR",
            "LineAmountTypes": "Exclusive",
            "Status": "AUTHORISED",
            "LineItems": [line],
        }
        if invoice.get("due_date"):
            body["DueDate"] = invoice["due_date"]
        answer = self._call(
            tokens,
            "PUT",
            "/Invoices",
            json={"Invoices": [body]},
            headers={"Idempotency-Key": idempotency_key[:128]},
        )
        try:
            invoice_id = _text(_first(answer, "Invoices"), "InvoiceID")
        except UnexpectedAnswer as problem:
            raise _unexpected(_("création de la facture"), str(problem)) from None
        if not _GUID.fullmatch(invoice_id):
            raise _unexpected(_("création de la facture"), "InvoiceID is not a GUID")
        if attachment is not None:
            self._call(
                tokens,
                "PUT",
                f"/Invoices/{invoice_id}/Attachments/{quote(attachment.filename, safe='')}",
                data=attachment.content,
                # As Xero's description says: the raw bytes; the file name gives the type.
                headers={"Content-Type": "application/octet-stream"},
            )
        return invoice_id


__all__ = ["AccessTokenRejected", "XeroConnector"]
