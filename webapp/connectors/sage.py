"""Sage Business Cloud Accounting, through its API v3.1 (https://developer.sage.com/accounting/reference/).

OAuth 2 (authorisation code) on www.sageone.com / oauth.accounting.sage.com, scope full_access.
Access tokens last 5 minutes and refresh tokens 31 days, rotating at each use
(https://developer.sage.com/accounting/guides/authenticating/authentication/): a refresh is the
rule, not the exception, and the new refresh token is stored at once. The business comes from
GET /businesses after consent and is named by the X-Business header on every call.

How Sage's data maps to Raccord's lists (a French business):
- Plan comptable: ledger_accounts; nominal_code is the PCG number, the id Sage's GUID; an account
  not included_in_chart is inactive. Its ledger_account_type (EXPENSES, SALES…) is kept as the type.
- Moyens de paiement: bank_accounts (current accounts, cards, cash), is_active.
- Fournisseurs / Clients: contacts with contact_type_id VENDOR / CUSTOMER; tax_number is the VAT
  number, registered_number the SIREN; is_active false is inactive, and a contact deleted since the
  last read (deleted_since) too.
- Taux de TVA: tax_rates (French rates: 20, 10, 5,5, 2,1, 0); percentage is the rate; a rate that is
  not is_visible is inactive.
- Catégories analytiques: the analysis_type_categories of each analysis_type, named 'Type : Catégorie'.
Incremental reads pass updated_or_created_since; paging is page + items_per_page (at most 200),
following $next until it is null.

Publishing: POST /purchase_invoices (or /sales_invoices) with one line (ledger account, tax rate,
net and tax amounts) and an idempotency_id (a 32-character hyphenless GUID in the entity's
namespace, https://developer.sage.com/accounting/guides/concepts/idempotency), then the PDF with
POST /attachments (base64, attachment_context_type_id PURCHASE_INVOICE). Before creating, the
invoices of the same contact with the same reference are looked up too, so a re-run long after
the first attempt still finds it; the attachment is only sent if the invoice has none of that name.

Errors are arrays of {$severity, $dataCode, $message, $source}: 422 RecordInvalid keeps Sage's
message and names the field ($source); 401 → refresh once; a refused refresh → Expirée.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import requests
from flask_babel import gettext as _

from webapp.connectors.answers import AnswerReader
from webapp.connectors.base import (
    Attachment,
    Company,
    ConnectorError,
    NormalisedItem,
    ProviderError,
    ProviderValidationError,
    TokenSet,
    checked_item,
    with_renewal,
)
from webapp.connectors.http import ProviderHttp, RetryPolicy, _json_or_none, _snippet
from webapp.connectors.oauth import OAuthClient, OAuthConnector
from webapp.models.integration import ListKind

#: Sage's largest page: items_per_page at most 200 (its description, and
#: https://developer.sage.com/accounting/guides/concepts/pagination/).
MAX_PER_PAGE = 200
CONTACT_TYPE = {ListKind.SUPPLIERS: "VENDOR", ListKind.CUSTOMERS: "CUSTOMER"}
FIELD_NAMES = {"ledger_account_id": "account_id", "tax_rate_id": "tax_rate_id", "contact_id": "contact_id"}


def sage_idempotency_id(key: str) -> str:
    """Sage wants a 32-character hyphenless GUID: the key itself when it is one, else derived from it."""
    if len(key) == 32 and all(c in "0123456789abcdef" for c in key):
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def sage_error(response: requests.Response) -> ConnectorError | None:
    body = _json_or_none(response)
    if response.status_code == 422 and isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        source = str(first.get("$source") or "")
        return ProviderValidationError(
            FIELD_NAMES.get(source.rsplit(".", 1)[-1], source),
            _(
                "Sage a refusé la demande : %(reason)s (champ %(field)s)",
                reason=str(first.get("$message") or _("données invalides")),
                field=source,
            )
            if source
            else _(
                "Sage a refusé la demande : %(reason)s",
                reason=str(first.get("$message") or _("données invalides")),
            ),
            detail=_snippet(response),
        )
    return None


SOFTWARE = "Sage"
#: Pages read at most, past which a list that never ends ($next for ever) is an error, not a hang.
MAX_PAGES = 10_000


_answers = AnswerReader(SOFTWARE)
_unexpected, _object, _id, _text = _answers.unexpected, _answers.object, _answers.id, _answers.text


def _items(body: Any, what: str) -> list[dict]:
    """The `$items` of a Sage list answer, each an object."""
    items = _object(body, what).get("$items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _unexpected(what, body)
    return items


def _flag(raw: dict, key: str, default: bool, what: str) -> bool:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _unexpected(what, raw)
    return value


def _name(raw: dict, what: str) -> str:
    name = _text(raw, "name", what) or _text(raw, "displayed_as", what)
    if name is None:
        raise _unexpected(what, raw)
    return name


def _siren(value: str | None) -> str | None:
    """A French business's registered number: the SIREN, or the first 9 digits of a SIRET."""
    digits = (value or "").replace(" ", "")
    if digits.isascii() and digits.isdigit() and len(digits) in (9, 14):
        return digits[:9]
    return None


class SageConnector(OAuthConnector):
    key = "sage"
    name = "Sage Business Cloud Comptabilité"

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
        page_size: int = MAX_PER_PAGE,
    ):
        self.api_url = api_url.rstrip("/")
        self.page_size = min(max(page_size, 1), MAX_PER_PAGE)
        self.http = ProviderHttp(policy, describe=sage_error, software=SOFTWARE)
        self.oauth = OAuthClient(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=authorize_url,
            token_url=token_url,
            revoke_url=revoke_url,
            scope="full_access",
            policy=policy,
        )

    # --- OAuth (tokens and consent: OAuthConnector) ---

    def company(self, tokens: TokenSet) -> Company:
        """The business of a user who has only one."""
        found = self.companies(tokens)
        self.use_company(tokens, found[0])
        return found[0]

    def companies(self, tokens: TokenSet) -> list[Company]:
        """Every business the user reaches with this token (GET /businesses): the user chooses."""
        body = self._call(tokens, "GET", "/businesses", business=False)
        businesses = body.get("$items") if isinstance(body, dict) else body
        if not isinstance(businesses, list):
            raise ProviderError(
                _("Sage a renvoyé une liste d'entreprises illisible."), detail=repr(body)[:300]
            )
        found = [
            Company(id=str(b["id"]), name=str(b.get("name") or b.get("displayed_as") or _("Entreprise Sage")))
            for b in businesses
            if isinstance(b, dict) and b.get("id")
        ]
        if not found:
            raise ProviderError(_("Aucune entreprise Sage n'est accessible avec ce compte."))
        return found

    def use_company(self, tokens: TokenSet, company: Company) -> None:
        tokens.extra["business_id"] = company.id

    # --- API ---
    def _call(self, tokens: TokenSet, method: str, path: str, *, business: bool = True, **kwargs: Any) -> Any:
        def call() -> Any:
            headers = {"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"}
            if business and tokens.extra.get("business_id"):
                headers["X-Business"] = str(tokens.extra["business_id"])
            return self.http.json(method, f"{self.api_url}{path}", headers=headers, **kwargs)

        return with_renewal(tokens, call)

    def _pages(self, tokens: TokenSet, path: str, params: dict[str, Any]) -> Iterator[list[dict]]:
        for page in range(1, MAX_PAGES + 1):
            body = self._call(
                tokens, "GET", path, params={**params, "page": page, "items_per_page": self.page_size}
            )
            items = _items(body, "liste")
            yield items
            if not body.get("$next") or not items:
                return
        raise ProviderError(
            _("Sage annonce une liste de plus de %(pages)d pages : lecture interrompue.", pages=MAX_PAGES)
        )

    def iter_pages(
        self, tokens: TokenSet, kind: ListKind, *, since: datetime | None = None
    ) -> Iterator[list[NormalisedItem]]:
        params: dict[str, Any] = {}
        if since is not None:
            params["updated_or_created_since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind is ListKind.ACCOUNTS:
            for items in self._pages(tokens, "/ledger_accounts", params):
                yield [self._account(raw) for raw in items]
        elif kind is ListKind.PAYMENT_METHODS:
            for items in self._pages(tokens, "/bank_accounts", params):
                yield [self._bank_account(raw) for raw in items]
        elif kind in CONTACT_TYPE:
            for items in self._pages(tokens, "/contacts", {**params, "contact_type_id": CONTACT_TYPE[kind]}):
                yield [self._contact(raw) for raw in items]
        elif kind is ListKind.TAX_RATES:
            for items in self._pages(tokens, "/tax_rates", params):
                yield [self._tax_rate(raw) for raw in items]
        elif kind is ListKind.TRACKING_CATEGORIES:
            for items in self._pages(tokens, "/analysis_types", {}):
                yield [
                    self._category(analysis_type, category)
                    for analysis_type in items
                    for category in self._categories(analysis_type)
                ]

    @staticmethod
    def _account(raw: dict) -> NormalisedItem:
        what = _("compte du plan comptable")
        kind = _text(_object(raw.get("ledger_account_type") or {}, what), "id", what) or ""
        return checked_item(
            NormalisedItem(
                external_id=_id(raw, what),
                name=_name(raw, what),
                code=_text(raw, "nominal_code", what),
                active=_flag(raw, "included_in_chart", True, what),
                extras={
                    "type": {"EXPENSES": "expense", "SALES": "revenue"}.get(kind, kind.lower()),
                    "reverse_charge": _flag(raw, "tax_recoverable", True, what) is False,
                },
            ),
            SOFTWARE,
        )

    @staticmethod
    def _bank_account(raw: dict) -> NormalisedItem:
        what = _("compte bancaire")
        details = _object(raw.get("bank_account_details") or {}, what)  # only the name: never the IBAN
        kind = _text(_object(raw.get("bank_account_type") or {}, what), "id", what) or ""
        return checked_item(
            NormalisedItem(
                external_id=_id(raw, what),
                name=_text(details, "account_name", what) or _name(raw, what),
                code=_text(raw, "nominal_code", what),
                active=_flag(raw, "is_active", True, what),
                extras={"type": kind.lower()},
            ),
            SOFTWARE,
        )

    @staticmethod
    def _contact(raw: Any) -> NormalisedItem:
        what = "contact"
        raw = _object(raw, what)
        email = _text(raw, "email", what)
        return checked_item(
            NormalisedItem(
                external_id=_id(raw, what),
                name=_name(raw, what),
                code=_text(raw, "reference", what),
                vat_number=_text(raw, "tax_number", what),
                siren=_siren(_text(raw, "registered_number", what)),
                active=_flag(raw, "is_active", True, what) and not raw.get("deleted_at"),
                extras={"email": email} if email else {},
            ),
            SOFTWARE,
        )

    @staticmethod
    def _tax_rate(raw: dict) -> NormalisedItem:
        what = _("taux de TVA")
        percentage = raw.get("percentage")
        if percentage is None:
            percentage = 0
        if (
            isinstance(percentage, bool)
            or not isinstance(percentage, int | float)
            or not math.isfinite(percentage)
        ):
            raise _unexpected(what, raw)
        return checked_item(
            NormalisedItem(
                external_id=_id(raw, what),
                name=_name(raw, what),
                code=_id(raw, what),
                rate=format(float(percentage), "g"),
                active=_flag(raw, "is_visible", True, what),
            ),
            SOFTWARE,
        )

    @staticmethod
    def _categories(analysis_type: dict) -> list[dict]:
        categories = analysis_type.get("analysis_type_categories") or []
        if not isinstance(categories, list) or not all(isinstance(c, dict) for c in categories):
            raise _unexpected(_("catégories analytiques"), analysis_type)
        return categories

    @staticmethod
    def _category(analysis_type: dict, category: dict) -> NormalisedItem:
        what = _("catégorie analytique")
        axis, option = _name(analysis_type, what), _name(category, what)
        return checked_item(
            NormalisedItem(
                external_id=_id(category, what),
                name=f"{axis} : {option}",
                code=_text(category, "code", what),
                extras={"category": axis, "option": option},
            ),
            SOFTWARE,
        )

    # --- parties ---
    def find_parties(self, tokens: TokenSet, kind: ListKind, *, term: str) -> list[NormalisedItem]:
        body = self._call(
            tokens,
            "GET",
            "/contacts",
            params={"contact_type_id": CONTACT_TYPE[kind], "search": term, "items_per_page": MAX_PER_PAGE},
        )
        return [self._contact(raw) for raw in _items(body, _("recherche de contacts"))]

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
        contact: dict[str, Any] = {
            "name": name,
            "contact_type_ids": [CONTACT_TYPE[kind]],
            "idempotency_id": sage_idempotency_id(idempotency_key),
        }
        if vat_number:
            contact["tax_number"] = vat_number
        if siren:
            contact["registered_number"] = siren
        return self._contact(self._call(tokens, "POST", "/contacts", json={"contact": contact}))

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
        path, root, context = (
            ("/purchase_invoices", "purchase_invoice", "PURCHASE_INVOICE")
            if purchase
            else ("/sales_invoices", "sales_invoice", "SALES_INVOICE")
        )
        existing = self._call(
            tokens, "GET", path, params={"contact_id": invoice["contact_id"], "search": invoice["number"]}
        )
        same = [
            i
            for i in _items(existing, _("recherche de factures"))
            if (i.get("vendor_reference") if purchase else i.get("reference")) == invoice["number"]
        ]
        if same:
            invoice_id = _id(same[0], "facture")
        else:
            line: dict[str, Any] = {
                "description": invoice.get("description") or f"Facture {invoice['number']}",
                "ledger_account_id": invoice.get("account_id"),
                "quantity": 1,
                "unit_price": float(invoice["amount_net"]),
                "net_amount": float(invoice["amount_net"]),
                "tax_amount": float(invoice["amount_tax"]),
                "total_amount": float(invoice["amount_total"]),
            }
            if invoice.get("tax_rate_id"):
                line["tax_rate_id"] = invoice["tax_rate_id"]
            body: dict[str, Any] = {
                "idempotency_id": sage_idempotency_id(idempotency_key),
                "contact_id": invoice["contact_id"],
                "date": invoice["date"],
                "due_date": invoice.get("due_date") or invoice["date"],
                "reference": invoice["number"],
                "net_amount": float(invoice["amount_net"]),
                "tax_amount": float(invoice["amount_tax"]),
                "total_amount": float(invoice["amount_total"]),
                "invoice_lines": [line],
            }
            if purchase:
                body["vendor_reference"] = invoice["number"]
            if invoice.get("currency") and invoice["currency"] != "EUR":
                body["currency_id"] = invoice["currency"]
            created = self._call(tokens, "POST", path, json={root: body})
            invoice_id = _id(_object(created, _("facture créée")), _("facture créée"))
        if attachment is not None:
            attached = self._call(
                tokens,
                "GET",
                "/attachments",
                params={"attachment_context_id": invoice_id, "attachment_context_type_id": context},
            )
            names = [a.get("file_name") for a in _items(attached, _("pièces jointes"))]
            if attachment.filename not in names:
                self._call(
                    tokens,
                    "POST",
                    "/attachments",
                    json={
                        "attachment": {
                            "file": base64.b64encode(attachment.content).decode(),
                            "file_name": attachment.filename,
                            "mime_type": attachment.content_type,
                            "file_extension": attachment.filename.rsplit(".", 1)[-1].lower(),
                            "file_size": len(attachment.content),
                            "attachment_context_type_id": context,
                            "attachment_context_id": invoice_id,
                        }
                    },
                )
        return invoice_id


__all__ = ["SageConnector"]
