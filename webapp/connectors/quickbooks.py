"""QuickBooks Online, through its Accounting API v3
(https://developer.intuit.com/app/developer/qbo/docs/api/accounting/most-commonly-used/account).

OAuth 2 on appcenter.intuit.com / oauth.platform.intuit.com, scope com.intuit.quickbooks.accounting.
The company chosen on the consent page comes back as `realmId` on the callback and is part of every
API path (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0).
Access tokens last an hour; the refresh token lasts 100 days from its last use and its value may
change at any refresh, so the one returned is always stored. Revocation is a JSON POST with the
client's Basic credentials, not RFC 7009's form.

Lists are read with the query language (GET /query, `SELECT * FROM Vendor WHERE Active IN (true,
false) STARTPOSITION n MAXRESULTS 1000`), so inactive items come back as inactive rather than
vanishing; incremental reads add `MetaData.LastUpdatedTime > '…'`.
- Plan comptable: Account other than Bank and Credit Card; AcctNum is the PCG number.
- Moyens de paiement: Account of type Bank or Credit Card.
- Fournisseurs / Clients: Vendor / Customer (DisplayName). QuickBooks masks TaxIdentifier on read,
  so matching a supplier upstream relies on its name there.
- Taux de TVA: TaxCode, the code lines carry, with the rate of its purchase TaxRate.
- Catégories analytiques: Class (FullyQualifiedName, 'Établissement:Magasin centre-ville').

Publishing: POST /bill with `requestid` (QuickBooks answers a repeated request id once), one
AccountBasedExpenseLineDetail line with the tax code and class; a bill of the same DocNumber and
vendor is looked up first. A sales invoice (POST /invoice) needs a product on each line: a service
item named 'Raccord <account number>' carrying the income account is found or created once. The PDF
goes through POST /upload (multipart: file_metadata_01 with the Attachable pointing at the bill or
invoice, file_content_01).

Errors: {"Fault": {"Error": [{Message, Detail, code, element}]}}: a ValidationFault keeps Intuit's
Detail and names the element; 401 AuthenticationFailed → refresh once; 429 ThrottleExceeded has no
Retry-After and Intuit says to wait 60 seconds
(https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from flask_babel import gettext as _

from webapp.connectors.base import (
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

MINOR_VERSION = "75"
MAX_RESULTS = 1000
PAYMENT_ACCOUNT_TYPES = {"Bank", "Credit Card"}
ELEMENTS = {
    "AccountRef": "account_id",
    "TaxCodeRef": "tax_rate_id",
    "VendorRef": "contact_id",
    "ClassRef": "tracking_id",
}


def quickbooks_error(response: requests.Response) -> ConnectorError | None:
    body = _json_or_none(response)
    if response.status_code == 400 and isinstance(body, dict) and isinstance(body.get("Fault"), dict):
        errors = body["Fault"].get("Error") or [{}]
        first = errors[0]
        element = str(first.get("element") or "")
        words = str(first.get("Detail") or first.get("Message") or _("données invalides"))
        return ProviderValidationError(
            ELEMENTS.get(element, element),
            _("QuickBooks a refusé la demande : %(reason)s (%(field)s)", reason=words, field=element)
            if element
            else _("QuickBooks a refusé la demande : %(reason)s", reason=words),
            detail=_snippet(response),
        )
    return None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _id(raw: dict) -> str:
    value = raw["Id"]
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise ValueError(f"Id {value!r}")
    return str(value)


def _active(raw: dict) -> bool:
    value = raw.get("Active", True)
    if not isinstance(value, bool):
        raise ValueError(f"Active {value!r}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"{what} {value!r}")
    return str(value)


def _readable(make):
    """What is read from an answer whose parts are not of the types QuickBooks documents."""
    try:
        return make()
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderError(
            _("QuickBooks Online a renvoyé une réponse illisible."), detail=repr(exc)
        ) from None


def statement(entity: str, *conditions: str, start: int | None = None, maximum: int | None = None) -> str:
    """A query in QuickBooks' query language (sent to its API, never to a database here)."""
    text = f"SELECT * FROM {entity}"  # noqa: S608 - QuickBooks' query language, values quoted by _quote
    if conditions:
        text += " WHERE " + " AND ".join(conditions)
    if start is not None:
        text += f" STARTPOSITION {start} MAXRESULTS {maximum}"
    return text


def _unreadable(why: str) -> ProviderError:
    return ProviderError(
        _("QuickBooks Online a renvoyé une réponse inattendue (%(why)s).", why=why), detail=why
    )


def _answer(body: Any) -> dict:
    """A 200 answer as QuickBooks sends them: an object, without a Fault (Intuit may put one in a 200,
    https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes)."""
    if not isinstance(body, dict):
        raise _unreadable(_("pas un objet JSON"))
    fault = body.get("Fault") or body.get("fault")
    if fault is not None:
        errors = fault.get("Error") or fault.get("error") if isinstance(fault, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        words = str(first.get("Detail") or first.get("Message") or _("erreur sans détail"))[:300]
        raise ProviderError(
            _("QuickBooks Online a renvoyé une erreur : %(reason)s", reason=words),
            detail=json.dumps(body)[:2000],
        )
    return body


def _rows(found: dict, entity: str) -> list[dict]:
    """The entities of a QueryResponse: absent when none matched, else a list of objects."""
    rows = found.get(entity)
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise _unreadable(_("%(entity)s n'est pas une liste d'objets", entity=entity))
    return rows


def _entity(answer: dict, entity: str) -> dict:
    found = answer.get(entity)
    if not isinstance(found, dict) or not isinstance(found.get("Id"), str | int) or found.get("Id") == "":
        raise _unreadable(_("%(entity)s sans Id", entity=entity))
    return found


class QuickBooksConnector(OAuthConnector):
    key = "quickbooks"
    name = "QuickBooks Online"

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
        page_size: int = MAX_RESULTS,
        throttle_wait: float = 60.0,
    ):
        self.api_url = api_url.rstrip("/")
        self.revoke_url = revoke_url
        self.client_id, self.client_secret = client_id, client_secret
        self.page_size = min(max(page_size, 1), MAX_RESULTS)
        self.policy = policy
        self.http = ProviderHttp(
            policy, describe=quickbooks_error, default_retry_after=throttle_wait, software="QuickBooks Online"
        )
        self.oauth = OAuthClient(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=authorize_url,
            token_url=token_url,
            revoke_url=None,
            scope="com.intuit.quickbooks.accounting",
            policy=policy,
        )

    # --- OAuth (tokens and consent: OAuthConnector) ---

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, callback: Mapping[str, str] | None = None
    ) -> TokenSet:
        realm = (callback or {}).get("realmId", "")
        if not realm.isdigit():
            raise ProviderError(
                _("QuickBooks n'a pas indiqué quelle entreprise a été choisie (realmId manquant).")
            )
        tokens = self.oauth.exchange_code(code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)
        tokens.extra["realm_id"] = realm
        return tokens

    def revoke(self, tokens: TokenSet) -> None:
        token = tokens.refresh_token or tokens.access_token
        try:
            response = requests.post(
                self.revoke_url,
                json={"token": token},
                auth=(self.client_id, self.client_secret),
                headers={"Accept": "application/json"},
                timeout=self.policy.timeout,
            )
        except requests.RequestException as exc:
            raise ProviderError(
                _("La révocation n'a pas pu être confirmée par QuickBooks."), detail=type(exc).__name__
            ) from None
        if response.status_code >= 400:
            raise ProviderError(
                _("La révocation n'a pas pu être confirmée par QuickBooks."), detail=_snippet(response)
            )

    def company(self, tokens: TokenSet) -> Company:
        realm = tokens.extra["realm_id"]
        body = self._call(tokens, "GET", f"/companyinfo/{realm}")
        info = body.get("CompanyInfo")
        name = (info.get("CompanyName") or info.get("LegalName")) if isinstance(info, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise _unreadable(_("CompanyInfo sans nom"))
        return Company(id=realm, name=name)

    # --- API ---
    def _call(
        self, tokens: TokenSet, method: str, path: str, *, params: dict | None = None, **kwargs: Any
    ) -> Any:
        realm = tokens.extra.get("realm_id")
        if not realm:
            raise IntegrationExpired(
                _("L'entreprise QuickBooks n'est pas connue : reconnectez l'intégration.")
            )

        def call() -> Any:
            return self.http.json(
                method,
                f"{self.api_url}/{realm}{path}",
                params={**(params or {}), "minorversion": MINOR_VERSION},
                headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"},
                **kwargs,
            )

        return _answer(with_renewal(tokens, call))

    def _query(self, tokens: TokenSet, statement: str) -> dict:
        found = self._call(tokens, "GET", "/query", params={"query": statement}).get("QueryResponse")
        if not isinstance(found, dict):
            raise _unreadable(_("sans QueryResponse"))
        return found

    def _all(self, tokens: TokenSet, entity: str, conditions: list[str]) -> Iterator[list[dict]]:
        start = 1
        while True:
            query = statement(entity, *conditions, start=start, maximum=self.page_size)
            rows = _rows(self._query(tokens, query), entity)
            yield rows
            if len(rows) < self.page_size:
                return
            start += len(rows)

    def iter_pages(
        self, tokens: TokenSet, kind: ListKind, *, since: datetime | None = None
    ) -> Iterator[list[NormalisedItem]]:
        conditions = ["Active IN (true, false)"]
        if since is not None:
            conditions.append(
                f"MetaData.LastUpdatedTime > '{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')}Z'"
            )
        try:
            if kind in (ListKind.ACCOUNTS, ListKind.PAYMENT_METHODS):
                payment = kind is ListKind.PAYMENT_METHODS
                for rows in self._all(tokens, "Account", conditions):
                    yield [
                        self._account(r)
                        for r in rows
                        if (r.get("AccountType") in PAYMENT_ACCOUNT_TYPES) == payment
                    ]
            elif kind in (ListKind.SUPPLIERS, ListKind.CUSTOMERS):
                entity = "Vendor" if kind is ListKind.SUPPLIERS else "Customer"
                for rows in self._all(tokens, entity, conditions):
                    yield [self._party(r) for r in rows]
            elif kind is ListKind.TAX_RATES:
                rates = {
                    r["Id"]: r
                    for rows in self._all(tokens, "TaxRate", ["Active IN (true, false)"])
                    for r in rows
                }
                for rows in self._all(tokens, "TaxCode", conditions):
                    yield [self._tax_code(r, rates) for r in rows]
            elif kind is ListKind.TRACKING_CATEGORIES:
                for rows in self._all(tokens, "Class", conditions):
                    yield [self._class(r) for r in rows]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(
                _("QuickBooks Online a renvoyé une liste illisible."), detail=repr(exc)
            ) from None

    @staticmethod
    def _account(raw: dict) -> NormalisedItem:
        kind = str(raw.get("AccountType") or "")
        return NormalisedItem(
            external_id=_id(raw),
            name=_text(raw["Name"], "Name"),
            code=_text(raw["AcctNum"], "AcctNum") if raw.get("AcctNum") is not None else None,
            active=_active(raw),
            extras={"type": {"Expense": "expense", "Income": "revenue"}.get(kind, kind.lower())},
        )

    @staticmethod
    def _party(raw: dict) -> NormalisedItem:
        email = (raw.get("PrimaryEmailAddr") or {}).get("Address")
        if email is not None and not isinstance(email, str):
            raise ValueError("PrimaryEmailAddr")
        return NormalisedItem(
            external_id=_id(raw),
            name=_text(raw.get("DisplayName") or raw.get("CompanyName"), "DisplayName"),
            active=_active(raw),
            extras={"email": email} if email else {},
        )

    @staticmethod
    def _tax_code(raw: dict, rates: dict[str, dict]) -> NormalisedItem:
        details = ((raw.get("PurchaseTaxRateList") or {}).get("TaxRateDetail")) or []
        rate = None
        if details:
            found = rates.get(str((details[0].get("TaxRateRef") or {}).get("value")))
            if found is not None:
                value = found.get("RateValue") or 0
                if isinstance(value, bool) or not isinstance(value, int | float | str):
                    raise ValueError(f"RateValue {value!r}")
                number = float(value)
                if not 0 <= number <= 100:  # also refuses NaN
                    raise ValueError(f"RateValue {value!r}")
                rate = format(number, "g")
        return NormalisedItem(
            external_id=_id(raw),
            name=_text(raw.get("Description") or raw["Name"], "Description"),
            code=_text(raw["Name"], "Name"),
            rate=rate,
            active=_active(raw),
        )

    @staticmethod
    def _class(raw: dict) -> NormalisedItem:
        full = _text(raw.get("FullyQualifiedName") or raw["Name"], "FullyQualifiedName")
        category, _, option = full.rpartition(":")
        return NormalisedItem(
            external_id=_id(raw),
            name=f"{category} : {option}" if category else option,
            active=_active(raw),
            extras={"category": category, "option": option} if category else {},
        )

    # --- parties ---
    def find_parties(self, tokens: TokenSet, kind: ListKind, *, term: str) -> list[NormalisedItem]:
        entity = "Vendor" if kind is ListKind.SUPPLIERS else "Customer"
        rows = _rows(
            self._query(
                tokens,
                statement(entity, f"DisplayName LIKE '%{_quote(term)}%'", "Active IN (true, false)"),
            ),
            entity,
        )
        return _readable(lambda: [self._party(r) for r in rows])

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
        entity = "Vendor" if kind is ListKind.SUPPLIERS else "Customer"
        body: dict[str, Any] = {"DisplayName": name[:100], "CompanyName": name[:100]}
        if vat_number:
            body["TaxIdentifier"] = vat_number
        answer = self._call(
            tokens, "POST", f"/{entity.lower()}", params={"requestid": idempotency_key[:50]}, json=body
        )
        return _readable(lambda: self._party(_entity(answer, entity)))

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
        entity, party_ref = ("Bill", "VendorRef") if purchase else ("Invoice", "CustomerRef")
        number = str(invoice["number"])[:21]  # DocNumber holds 21 characters
        existing = [
            found
            for found in _rows(
                self._query(tokens, statement(entity, f"DocNumber = '{_quote(number)}'")), entity
            )
            if isinstance(found.get(party_ref), dict)
            and found[party_ref].get("value") == invoice["contact_id"]
            and isinstance(found.get("Id"), str | int)
        ]
        if existing:
            bill_id = str(existing[0]["Id"])
        elif not purchase:
            bill_id = self._create_sales_invoice(tokens, invoice, number, idempotency_key)
        else:
            detail: dict[str, Any] = {"AccountRef": {"value": invoice.get("account_id")}}
            if invoice.get("tax_rate_id"):
                detail["TaxCodeRef"] = {"value": invoice["tax_rate_id"]}
            if invoice.get("tracking_id"):
                detail["ClassRef"] = {"value": invoice["tracking_id"]}
            body: dict[str, Any] = {
                "VendorRef": {"value": invoice["contact_id"]},
                "TxnDate": invoice["date"],
                "DocNumber": number,
                "CurrencyRef": {"value": invoice.get("currency") or "EUR"},
                "GlobalTaxCalculation": "TaxExcluded",
                "TxnTaxDetail": {"TotalTax": float(invoice["amount_tax"])},
                "Line": [
                    {
                        "DetailType": "AccountBasedExpenseLineDetail",
                        "Amount": float(invoice["amount_net"]),
                        "Description": invoice.get("description") or f"Facture {invoice['number']}",
                        "AccountBasedExpenseLineDetail": detail,
                    }
                ],
            }
            if invoice.get("due_date"):
                body["DueDate"] = invoice["due_date"]
            if invoice.get("description"):
                body["PrivateNote"] = invoice["description"][:4000]
            answer = self._call(
                tokens, "POST", "/bill", params={"requestid": idempotency_key[:50]}, json=body
            )
            bill_id = str(_entity(answer, "Bill")["Id"])
        if attachment is not None:
            attached = _rows(
                self._query(tokens, statement("Attachable", f"AttachableRef.EntityRef.Value = '{bill_id}'")),
                "Attachable",
            )
            if not any(a.get("FileName") == attachment.filename for a in attached):
                metadata = {
                    "AttachableRef": [{"EntityRef": {"type": entity, "value": bill_id}}],
                    "FileName": attachment.filename,
                    "ContentType": attachment.content_type,
                }
                self._call(
                    tokens,
                    "POST",
                    "/upload",
                    files={
                        "file_metadata_01": ("attachment.json", json.dumps(metadata), "application/json"),
                        "file_content_01": (attachment.filename, attachment.content, attachment.content_type),
                    },
                )
        return bill_id

    def _create_sales_invoice(self, tokens: TokenSet, invoice: dict[str, Any], number: str, key: str) -> str:
        """A QuickBooks invoice line needs a product: a service item per income account, named after it,
        is found or created once and carries the account
        (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice)."""
        item_id = self._service_item(
            tokens, str(invoice.get("account_code") or ""), str(invoice["account_id"]), key
        )
        detail: dict[str, Any] = {
            "ItemRef": {"value": item_id},
            "Qty": 1,
            "UnitPrice": float(invoice["amount_net"]),
        }
        if invoice.get("tax_rate_id"):
            detail["TaxCodeRef"] = {"value": invoice["tax_rate_id"]}
        if invoice.get("tracking_id"):
            detail["ClassRef"] = {"value": invoice["tracking_id"]}
        body: dict[str, Any] = {
            "CustomerRef": {"value": invoice["contact_id"]},
            "TxnDate": invoice["date"],
            "DocNumber": number,
            "CurrencyRef": {"value": invoice.get("currency") or "EUR"},
            "GlobalTaxCalculation": "TaxExcluded",
            "TxnTaxDetail": {"TotalTax": float(invoice["amount_tax"])},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": float(invoice["amount_net"]),
                    "Description": invoice.get("description") or f"Facture {invoice['number']}",
                    "SalesItemLineDetail": detail,
                }
            ],
        }
        if invoice.get("due_date"):
            body["DueDate"] = invoice["due_date"]
        answer = self._call(tokens, "POST", "/invoice", params={"requestid": key[:50]}, json=body)
        return str(_entity(answer, "Invoice")["Id"])

    def _service_item(self, tokens: TokenSet, account_code: str, account_id: str, key: str) -> str:
        name = f"Raccord {account_code or account_id}"[:100]

        def existing() -> str | None:
            found = self._query(
                tokens, statement("Item", f"Name = '{_quote(name)}'", "Active IN (true, false)")
            )
            for item in _rows(found, "Item"):
                income = item.get("IncomeAccountRef")
                if isinstance(income, dict) and income.get("value") == account_id and item.get("Id"):
                    return str(item["Id"])
            return None

        item_id = existing()
        if item_id:
            return item_id
        try:
            created = self._call(
                tokens,
                "POST",
                "/item",
                params={"requestid": f"item-{key}"[:50]},
                json={"Name": name, "Type": "Service", "IncomeAccountRef": {"value": account_id}},
            )
        except ProviderValidationError as exc:
            # Another publication created it a moment ago (QuickBooks names are unique): take that one.
            item_id = existing() if "Duplicate" in exc.message else None
            if item_id is None:
                raise
            return item_id
        return str(_entity(created, "Item")["Id"])


__all__ = ["QuickBooksConnector"]
