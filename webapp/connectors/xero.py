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
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

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


def xero_error(response: requests.Response) -> ConnectorError | None:
    """Xero's error bodies as typed errors (None: let the generic handling decide)."""
    body = _json_or_none(response)
    if response.status_code == 403:
        detail = str((body or {}).get("Detail") or "") if isinstance(body, dict) else ""
        if "AuthenticationUnsuccessful" in detail or not detail:
            return IntegrationExpired(detail=_snippet(response))
    if response.status_code == 400 and isinstance(body, dict) and body.get("Type") == "ValidationException":
        messages = [
            str(error.get("Message"))
            for element in body.get("Elements") or []
            for error in (element.get("ValidationErrors") or [])
            if error.get("Message")
        ] or [str(body.get("Message") or "données invalides")]
        return ProviderValidationError(
            _field_of(messages[0]),
            "Xero a refusé la demande : " + messages[0],
            detail=_snippet(response),
        )
    return None


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


def parse_msdate(value: str | None) -> datetime | None:
    """Xero's '/Date(1573755038314+0000)/' as an aware datetime."""
    if not value or not value.startswith("/Date("):
        return None
    millis = value[6:].split(")")[0].split("+")[0].split("-")[0]
    return datetime.fromtimestamp(int(millis) / 1000, UTC)


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
        page_size: int = 100,
    ):
        self.api_url = api_url.rstrip("/")
        self.connections_url = connections_url
        self.page_size = min(max(page_size, 1), 1000)
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
                "Xero n'a pas dit quelles organisations viennent d'être autorisées. "
                "Recommencez la connexion.",
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
                "Xero a renvoyé une liste d'organisations illisible.", detail=repr(connections)[:300]
            )
        found = [
            Company(
                id=str(c["tenantId"]),
                name=str(c.get("tenantName") or "Organisation Xero"),
                extra={"connection_id": c.get("id")},
            )
            for c in connections
            if isinstance(c, dict)
            and c.get("tenantType") == "ORGANISATION"
            and c.get("tenantId")
            and c.get("authEventId") == event  # whatever the filter did
        ]
        if not found:
            raise ProviderError(
                "Aucune organisation Xero n'a été autorisée : recommencez en en choisissant une."
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

        return with_renewal(tokens, call)

    def iter_pages(
        self, tokens: TokenSet, kind: ListKind, *, since: datetime | None = None
    ) -> Iterator[list[NormalisedItem]]:
        try:
            if kind in (ListKind.ACCOUNTS, ListKind.PAYMENT_METHODS):
                body = self._call(tokens, "GET", "/Accounts", since=since)
                bank = kind is ListKind.PAYMENT_METHODS
                yield [self._account(raw) for raw in body["Accounts"] if (raw.get("Type") == "BANK") == bank]
            elif kind in (ListKind.SUPPLIERS, ListKind.CUSTOMERS):
                yield from self._contacts(tokens, kind, since)
            elif kind is ListKind.TAX_RATES:
                body = self._call(tokens, "GET", "/TaxRates")
                yield [self._tax_rate(raw) for raw in body["TaxRates"]]
            elif kind is ListKind.TRACKING_CATEGORIES:
                body = self._call(tokens, "GET", "/TrackingCategories", params={"includeArchived": "true"})
                yield [
                    self._tracking_option(category, option)
                    for category in body["TrackingCategories"]
                    for option in category.get("Options") or []
                ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("Xero a renvoyé une liste illisible.", detail=repr(exc)) from None

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
            contacts = body["Contacts"]
            yield [self._contact(raw) for raw in contacts if self._in_list(raw, kind)]
            pagination = body.get("pagination") or {}
            last = pagination.get("pageCount")
            if not contacts or (last is not None and page >= int(last)) or len(contacts) < self.page_size:
                return
            page += 1

    @staticmethod
    def _in_list(raw: dict, kind: ListKind) -> bool:
        supplier, customer = bool(raw.get("IsSupplier")), bool(raw.get("IsCustomer"))
        if not supplier and not customer:
            return True
        return supplier if kind is ListKind.SUPPLIERS else customer

    @staticmethod
    def _account(raw: dict) -> NormalisedItem:
        return NormalisedItem(
            external_id=str(raw["AccountID"]),
            name=str(raw["Name"]),
            code=raw.get("Code"),
            active=raw.get("Status", "ACTIVE") == "ACTIVE",
            extras={
                "type": str(raw.get("Type") or "").lower(),
                "reverse_charge": raw.get("ReportingCode") == REVERSE_CHARGE_REPORTING_CODE,
            },
        )

    @staticmethod
    def _contact(raw: dict) -> NormalisedItem:
        return NormalisedItem(
            external_id=str(raw["ContactID"]),
            name=str(raw["Name"]),
            code=raw.get("ContactNumber"),
            vat_number=raw.get("TaxNumber") or None,
            siren=(raw.get("CompanyNumber") or None),
            active=raw.get("ContactStatus", "ACTIVE") == "ACTIVE",
            extras={k: raw[k] for k in ("EmailAddress",) if raw.get(k)},
        )

    @staticmethod
    def _tax_rate(raw: dict) -> NormalisedItem:
        rate = raw.get("EffectiveRate", raw.get("DisplayTaxRate"))
        return NormalisedItem(
            external_id=str(raw["TaxType"]),
            name=str(raw["Name"]),
            code=str(raw["TaxType"]),
            rate=format(float(rate), "g") if rate is not None else None,
            active=raw.get("Status", "ACTIVE") == "ACTIVE",
        )

    @staticmethod
    def _tracking_option(category: dict, option: dict) -> NormalisedItem:
        return NormalisedItem(
            external_id=str(option["TrackingOptionID"]),
            name=f"{category['Name']} : {option['Name']}",
            code=None,
            active=option.get("Status", "ACTIVE") == "ACTIVE"
            and category.get("Status", "ACTIVE") == "ACTIVE",
            extras={"category": category["Name"], "option": option["Name"]},
        )

    # --- parties ---
    def find_parties(self, tokens: TokenSet, kind: ListKind, *, term: str) -> list[NormalisedItem]:
        found: list[NormalisedItem] = []
        searches = [{"searchTerm": term}]
        if term.isalnum() and any(c.isdigit() for c in term):  # a VAT number or a SIREN
            searches += [{"where": f'TaxNumber=="{term}"'}, {"where": f'CompanyNumber=="{term}"'}]
        for params in searches:
            body = self._call(tokens, "GET", "/Contacts", params={**params, "includeArchived": "true"})
            found += [self._contact(raw) for raw in body.get("Contacts") or []]
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
        return self._contact(body["Contacts"][0])

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
        invoice_id = str(answer["Invoices"][0]["InvoiceID"])
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
