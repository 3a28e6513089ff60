"""Pennylane, through its Company API v2 (https://pennylane.readme.io/reference/).

Pennylane is French: its accounts are those of the plan comptable général. OAuth 2 (authorisation
code) on app.pennylane.com/oauth; one company per token, read from GET /me. Access tokens last a day,
refresh tokens 90 days and rotate (the old one dies at once), so the new one is stored at once.

How Pennylane's data maps to Raccord's lists:
- Plan comptable: ledger_accounts (number, label); `enabled: false` is inactive. Pennylane may hold one
  account number several times, once per VAT rate: each is kept, named with its rate.
- Moyens de paiement: bank_accounts.
- Fournisseurs / Clients: suppliers / customers (vat_number, reg_no is the SIREN). Pennylane deletes
  rather than archives: a party gone from the list becomes inactive here at the next full read.
- Taux de TVA: Pennylane's fixed list of French codes (FR_200 = 20 %, FR_100, FR_85, FR_55, FR_21,
  exempt), sent as `vat_rate` on each invoice line; no call is made for it.
- Catégories analytiques: categories, named 'Groupe : Catégorie' from their category_groups.
Lists come in cursor pages ({items, has_more, next_cursor}, limit ≤ 100). Suppliers and customers
are read incrementally from /changelogs (insert and update events of at most four weeks), then
fetched by id with `filter=[{"field":"id","operator":"in","value":[…]}]`.

Publishing needs the PDF: POST /file_attachments (multipart `file`) then
POST /supplier_invoices/import (or /customer_invoices/import) with amounts as strings that add up,
one line with the ledger account and the VAT code, and `external_reference` holding the idempotency
key. Pennylane has no idempotency header and refuses a PDF it already holds, so an invoice of the
same number and external_reference is looked up first and taken as already published
(https://pennylane.readme.io/docs/supplier-invoicing).

Errors are {"error": …, "status": …}; a 422 keeps Pennylane's words; 429 comes as plain text with
retry-after (25 requests per 5 seconds per token, https://pennylane.readme.io/docs/rate-limiting-1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from flask_babel import gettext as _

from webapp.connectors.base import (
    Attachment,
    Company,
    ConnectorError,
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
    "ledger_accounts:readonly suppliers:all customers:all categories:readonly bank_accounts:readonly "
    "supplier_invoices:all customer_invoices:all file_attachments:all"
)
MAX_LIMIT = 100
CHANGELOG_WINDOW = timedelta(days=27)  # Pennylane keeps four weeks of changes
VAT_RATES = [
    ("FR_200", "TVA 20 %", "20"),
    ("FR_100", "TVA 10 %", "10"),
    ("FR_85", "TVA 8,5 % (DOM)", "8.5"),
    ("FR_55", "TVA 5,5 %", "5.5"),
    ("FR_21", "TVA 2,1 %", "2.1"),
    ("exempt", "Exonéré (0 %)", "0"),
]
RATE_NAMES = {code: name for code, name, _ in VAT_RATES}
PARTY_PATHS = {ListKind.SUPPLIERS: "/suppliers", ListKind.CUSTOMERS: "/customers"}
CREATE_PATHS = {ListKind.SUPPLIERS: "/suppliers", ListKind.CUSTOMERS: "/company_customers"}


def pennylane_error(response: requests.Response) -> ConnectorError | None:
    body = _json_or_none(response)
    if response.status_code in (409, 422) and isinstance(body, dict) and body.get("error"):
        message = str(body["error"])
        field = next(
            (f for f in ("ledger_account_id", "vat_rate", "supplier_id", "customer_id") if f in message), ""
        )
        return ProviderValidationError(
            {"ledger_account_id": "account_id", "vat_rate": "tax_rate_id"}.get(field, field),
            _("Pennylane a refusé la demande : %(reason)s", reason=message),
            detail=_snippet(response),
        )
    return None


def _unreadable(why: str) -> ProviderError:
    return ProviderError(_("Pennylane a renvoyé une réponse inattendue (%(why)s).", why=why), detail=why)


def _answer(body: Any) -> dict:
    """A 200 answer as Pennylane sends them: an object, not one of its error bodies."""
    if not isinstance(body, dict):
        raise _unreadable(_("pas un objet JSON"))
    if "error" in body and set(body) <= {"error", "status", "message"}:
        raise ProviderError(
            _("Pennylane a renvoyé une erreur : %(reason)s", reason=str(body.get("error"))[:300]),
            detail=json.dumps(body)[:2000],
        )
    return body


def _items(body: dict) -> list[dict]:
    items = body.get("items")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _unreadable(_("items n'est pas une liste d'objets"))
    return items


def _id(raw: dict) -> str:
    value = raw["id"]
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise ValueError(f"id {value!r}")
    return str(value)


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{what} {value!r}")
    return str(value)


def _optional_text(value: Any, what: str) -> str | None:
    return None if value in (None, "") else _text(value, what)


def _enabled(raw: dict) -> bool:
    value = raw.get("enabled", True)
    if not isinstance(value, bool):
        raise ValueError(f"enabled {value!r}")
    return value


def _readable(make):
    try:
        return make()
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderError(_("Pennylane a renvoyé une réponse illisible."), detail=repr(exc)) from None


class PennylaneConnector(OAuthConnector):
    key = "pennylane"
    name = "Pennylane"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authorize_url: str,
        token_url: str,
        revoke_url: str,
        api_url: str,
        policy: RetryPolicy,
        page_size: int = MAX_LIMIT,
    ):
        self.api_url = api_url.rstrip("/")
        self.page_size = min(max(page_size, 1), MAX_LIMIT)
        self.http = ProviderHttp(policy, describe=pennylane_error, software="Pennylane")
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
        company = self._call(tokens, "GET", "/me").get("company")
        return _readable(lambda: Company(id=_id(company), name=_text(company["name"], "name")))

    # --- API ---
    def _call(self, tokens: TokenSet, method: str, path: str, **kwargs: Any) -> Any:
        def call() -> Any:
            return self.http.json(
                method,
                f"{self.api_url}{path}",
                headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"},
                **kwargs,
            )

        return _answer(with_renewal(tokens, call))

    def _pages(self, tokens: TokenSet, path: str, params: dict | None = None) -> Iterator[list[dict]]:
        cursor = None
        while True:
            query = {**(params or {}), "limit": self.page_size}  # filters are sent again with every page
            if cursor:
                query["cursor"] = cursor
            body = self._call(tokens, "GET", path, params=query)
            yield _items(body)
            cursor = body.get("next_cursor")
            if not body.get("has_more") or not cursor:
                return
            if not isinstance(cursor, str | int) or isinstance(cursor, bool):
                raise _unreadable(_("next_cursor illisible"))

    def iter_pages(
        self, tokens: TokenSet, kind: ListKind, *, since: datetime | None = None
    ) -> Iterator[list[NormalisedItem]]:
        try:
            if kind is ListKind.TAX_RATES:
                yield [
                    NormalisedItem(external_id=code, name=name, code=code, rate=rate)
                    for code, name, rate in VAT_RATES
                ]
            elif kind is ListKind.ACCOUNTS:
                pages = list(self._pages(tokens, "/ledger_accounts"))
                numbers: dict[str, int] = {}
                for items in pages:
                    for raw in items:
                        number = _text(raw["number"], "number")
                        numbers[number] = numbers.get(number, 0) + 1
                for items in pages:
                    yield [self._account(raw, several=numbers[str(raw["number"])] > 1) for raw in items]
            elif kind is ListKind.PAYMENT_METHODS:
                for items in self._pages(tokens, "/bank_accounts"):
                    yield [
                        NormalisedItem(external_id=_id(r), name=_text(r["name"], "name"), active=_enabled(r))
                        for r in items
                    ]
            elif kind in PARTY_PATHS:
                if since is not None and datetime.now(UTC) - since < CHANGELOG_WINDOW:
                    yield from self._changed_parties(tokens, kind, since)
                else:
                    for items in self._pages(tokens, PARTY_PATHS[kind]):
                        yield [self._party(raw) for raw in items]
            elif kind is ListKind.TRACKING_CATEGORIES:
                groups = {
                    g["id"]: _text(g["label"], "label")
                    for items in self._pages(tokens, "/category_groups")
                    for g in items
                }
                for items in self._pages(tokens, "/categories"):
                    yield [self._category(raw, groups) for raw in items]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(_("Pennylane a renvoyé une liste illisible."), detail=repr(exc)) from None

    def _changed_ids(self, tokens: TokenSet, kind: ListKind, since: datetime) -> list[int]:
        start = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ids: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            params.update({"cursor": cursor} if cursor else {"start_date": start})
            body = self._call(tokens, "GET", f"/changelogs{PARTY_PATHS[kind]}", params=params)
            ids += [int(_id(e)) for e in _items(body) if e.get("operation") in ("insert", "update")]
            cursor = body.get("next_cursor")
            if not body.get("has_more") or not cursor:
                return list(dict.fromkeys(ids))
            if not isinstance(cursor, str | int) or isinstance(cursor, bool):
                raise _unreadable(_("next_cursor illisible"))

    def _changed_parties(
        self, tokens: TokenSet, kind: ListKind, since: datetime
    ) -> Iterator[list[NormalisedItem]]:
        ids = self._changed_ids(tokens, kind, since)
        for start in range(0, len(ids), MAX_LIMIT):
            chunk = ids[start : start + MAX_LIMIT]
            flt = json.dumps([{"field": "id", "operator": "in", "value": chunk}])
            for items in self._pages(tokens, PARTY_PATHS[kind], {"filter": flt}):
                yield [self._party(raw) for raw in items]

    @staticmethod
    def _account(raw: dict, *, several: bool) -> NormalisedItem:
        rate = raw.get("vat_rate")
        if rate is not None and not isinstance(rate, str):
            raise ValueError(f"vat_rate {rate!r}")
        name = _text(raw["label"], "label") + (f" ({RATE_NAMES.get(rate, rate)})" if several and rate else "")
        number = _text(raw["number"], "number")
        return NormalisedItem(
            external_id=_id(raw),
            name=name,
            code=number,
            active=_enabled(raw),
            extras={
                "type": "expense"
                if number.startswith("6")
                else "revenue"
                if number.startswith("7")
                else "balance",
                "vat_rate": rate,
                "reverse_charge": bool(raw.get("reverse_charge")),
            },
        )

    @staticmethod
    def _party(raw: dict) -> NormalisedItem:
        emails = raw.get("emails") or []
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
            raise ValueError("emails")
        return NormalisedItem(
            external_id=_id(raw),
            name=_text(raw["name"], "name"),
            vat_number=_optional_text(raw.get("vat_number"), "vat_number"),
            siren=_optional_text(raw.get("reg_no"), "reg_no"),
            extras={"email": emails[0]} if emails else {},
        )

    @staticmethod
    def _category(raw: dict, groups: dict) -> NormalisedItem:
        group = groups.get((raw.get("category_group") or {}).get("id"), "")
        label = _text(raw["label"], "label")
        return NormalisedItem(
            external_id=_id(raw),
            name=f"{group} : {label}" if group else label,
            extras={"category": group, "option": label},
        )

    # --- parties ---
    def find_parties(self, tokens: TokenSet, kind: ListKind, *, term: str) -> list[NormalisedItem]:
        """Pennylane's list has no text search: the parties created or changed in the last four weeks
        (those a list loaded earlier may lack) are read from the changelog, and matched by the caller."""
        since = datetime.now(UTC) - CHANGELOG_WINDOW
        return _readable(
            lambda: [item for items in self._changed_parties(tokens, kind, since) for item in items]
        )

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
        body: dict[str, Any] = {"name": name}
        if vat_number:
            body["vat_number"] = vat_number
        if siren:
            body["reg_no"] = siren
        answer = self._call(tokens, "POST", CREATE_PATHS[kind], json=body)
        return _readable(lambda: self._party(answer))

    # --- publishing ---
    def publish_invoice(
        self,
        tokens: TokenSet,
        invoice: dict[str, Any],
        *,
        idempotency_key: str,
        attachment: Attachment | None = None,
    ) -> str:
        purchase = invoice["type"] == "purchase"
        kind = "supplier_invoices" if purchase else "customer_invoices"
        flt = json.dumps([{"field": "invoice_number", "operator": "eq", "value": invoice["number"]}])
        for items in self._pages(tokens, f"/{kind}", {"filter": flt}):
            for existing in items:
                if existing.get("external_reference") == idempotency_key:
                    return _readable(lambda existing=existing: _id(existing))
        if attachment is None:
            raise ProviderValidationError(
                "pdf",
                _("Pennylane exige le PDF de la facture pour l'importer : ajoutez-le avant de publier."),
            )
        uploaded = self._call(
            tokens,
            "POST",
            "/file_attachments",
            files={"file": (attachment.filename, attachment.content, attachment.content_type)},
        )
        body = {
            "file_attachment_id": _readable(lambda: int(_id(uploaded))),
            "supplier_id" if purchase else "customer_id": int(invoice["contact_id"]),
            "invoice_number": invoice["number"],
            "external_reference": idempotency_key,
            "date": invoice["date"],
            "deadline": invoice.get("due_date") or invoice["date"],
            "currency": invoice.get("currency") or "EUR",
            "currency_amount": invoice["amount_total"],
            "currency_amount_before_tax": invoice["amount_net"],
            "currency_tax": invoice["amount_tax"],
            "invoice_lines": [
                {
                    "ledger_account_id": int(invoice["account_id"]),
                    "currency_amount": invoice["amount_total"],
                    "currency_tax": invoice["amount_tax"],
                    "vat_rate": invoice.get("tax_rate_id") or "exempt",
                    "label": invoice.get("description") or f"Facture {invoice['number']}",
                }
            ],
        }
        imported = self._call(tokens, "POST", f"/{kind}/import", json=body)
        return _readable(lambda: _id(imported))


__all__ = ["PennylaneConnector"]
