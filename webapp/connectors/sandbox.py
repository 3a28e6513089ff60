"""'Compta Démo', the built-in sandbox software, spoken to over HTTP like any other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask_babel import gettext as _

from webapp.connectors.answers import AnswerReader
from webapp.connectors.base import (
    AccessTokenRejected,
    Attachment,
    Company,
    NormalisedItem,
    TokenSet,
    checked_item,
    with_renewal,
)
from webapp.connectors.http import ProviderHttp, RetryPolicy
from webapp.connectors.oauth import OAuthClient, OAuthConnector
from webapp.models.integration import ListKind

SOFTWARE = "Compta Démo"
#: Compta Démo's largest page (`limit`, sandbox/api.py MAX_LIMIT).
MAX_LIMIT = 1000


_answers = AnswerReader(SOFTWARE)
_unexpected, _object, _id = _answers.unexpected, _answers.object, _answers.id


def _text(raw: dict, key: str, what: str) -> str | None:
    return _answers.text(raw, key, what, decimals=True)  # Compta Démo may send a rate as a number


class SandboxConnector(OAuthConnector):
    key = "sandbox"
    name = SOFTWARE

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        policy: RetryPolicy,
        page_size: int = MAX_LIMIT,
    ):
        self.base_url = base_url.rstrip("/")
        self.page_size = min(max(page_size, 1), MAX_LIMIT)
        self.http = ProviderHttp(policy, software=SOFTWARE)
        self.oauth = OAuthClient(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=f"{self.base_url}/oauth/authorize",
            token_url=f"{self.base_url}/oauth/token",
            revoke_url=f"{self.base_url}/oauth/revoke",
            scope="lists invoices",
            policy=policy,
        )

    # --- OAuth (tokens and consent: OAuthConnector) ---

    # --- API ---
    def _get(self, tokens: TokenSet, path: str, params: dict[str, Any] | None = None) -> Any:
        def call() -> Any:
            return self.http.json(
                "GET",
                f"{self.base_url}/api/v1{path}",
                params=params,
                headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json"},
            )

        return with_renewal(tokens, call)

    def company(self, tokens: TokenSet) -> Company:
        body = _object(self._get(tokens, "/company"), _("société"))
        name = _text(body, "name", _("société"))
        if name is None:
            raise _unexpected(_("société"), body)
        return Company(id=_id(body, _("société")), name=name)

    def iter_pages(
        self, tokens: TokenSet, kind: ListKind, *, since: datetime | None = None
    ) -> Iterator[list[NormalisedItem]]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"limit": self.page_size}
            if cursor:
                params["cursor"] = cursor
            if since:
                params["updated_since"] = since.isoformat()
            body = _object(self._get(tokens, f"/{kind.value}", params), "liste")
            items = self._items(kind, body)
            cursor = _text(body, "next_cursor", "liste")
            yield items
            if not cursor:
                return
            if cursor in seen:  # the same page again: a list that would never end
                raise _unexpected(_("curseur de pagination répété"), body)
            seen.add(cursor)

    def _items(self, kind: ListKind, body: dict) -> list[NormalisedItem]:
        raws = body.get("items")
        if not isinstance(raws, list):
            raise _unexpected("liste", body)
        return [self._normalise(kind, raw) for raw in raws]

    @staticmethod
    def _normalise(kind: ListKind, raw: Any) -> NormalisedItem:
        what = _("élément de liste")
        raw = _object(raw, what)
        name, status, extras = _text(raw, "name", what), raw.get("status", "active"), raw.get("extras") or {}
        if name is None or status not in ("active", "archived") or not isinstance(extras, dict):
            raise _unexpected(what, raw)
        return checked_item(
            NormalisedItem(
                external_id=_id(raw, what),
                name=name,
                code=_text(raw, "code", what),
                vat_number=_text(raw, "vat_number", what),
                siren=_text(raw, "siren", what),
                rate=_text(raw, "rate", what),
                active=status == "active",
                extras=extras,
            ),
            SOFTWARE,
        )

    def _send(self, tokens: TokenSet, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {tokens.access_token}", **kwargs.pop("headers", {})}

        def call() -> Any:
            headers["Authorization"] = f"Bearer {tokens.access_token}"
            return self.http.json(method, f"{self.base_url}/api/v1{path}", headers=headers, **kwargs)

        return with_renewal(tokens, call)

    def find_parties(self, tokens: TokenSet, kind: ListKind, *, term: str) -> list[NormalisedItem]:
        body = self._get(tokens, f"/{kind.value}", {"search": term, "limit": 100})
        return self._items(kind, _object(body, "recherche"))

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
        body = self._send(
            tokens,
            "POST",
            f"/{kind.value}",
            json={"name": name, "vat_number": vat_number, "siren": siren},
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._normalise(kind, body)

    def publish_invoice(
        self,
        tokens: TokenSet,
        invoice: dict[str, Any],
        *,
        idempotency_key: str,
        attachment: Attachment | None = None,
    ) -> str:
        body = self._send(
            tokens, "POST", "/invoices", json=invoice, headers={"Idempotency-Key": idempotency_key}
        )
        invoice_id = _id(_object(body, _("facture créée")), _("facture créée"))
        if attachment is not None:
            # PUT under the file name: sending it again (a retry, a re-run) replaces it, never doubles it.
            self._send(
                tokens,
                "PUT",
                f"/invoices/{invoice_id}/attachments/{quote(attachment.filename, safe='')}",
                data=attachment.content,
                headers={"Content-Type": attachment.content_type},
            )
        return invoice_id


__all__ = ["AccessTokenRejected", "SandboxConnector"]
