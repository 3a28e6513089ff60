"""'Compta Démo', the built-in sandbox software, spoken to over HTTP like any other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from webapp.connectors.base import (
    AccessTokenRejected,
    Attachment,
    Company,
    NormalisedItem,
    ProviderError,
    TokenSet,
    with_renewal,
)
from webapp.connectors.http import ProviderHttp, RetryPolicy
from webapp.connectors.oauth import OAuthClient, OAuthConnector
from webapp.models.integration import ListKind


class SandboxConnector(OAuthConnector):
    key = "sandbox"
    name = "Compta Démo"

    def __init__(
        self, *, base_url: str, client_id: str, client_secret: str, policy: RetryPolicy, page_size: int = 500
    ):
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.http = ProviderHttp(policy)
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
        body = self._get(tokens, "/company")
        return Company(id=str(body["id"]), name=str(body["name"]))

    def iter_pages(
        self, tokens: TokenSet, kind: ListKind, *, since: datetime | None = None
    ) -> Iterator[list[NormalisedItem]]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_size}
            if cursor:
                params["cursor"] = cursor
            if since:
                params["updated_since"] = since.isoformat()
            body = self._get(tokens, f"/{kind.value}", params)
            try:
                items = [self._normalise(kind, raw) for raw in body["items"]]
                cursor = body.get("next_cursor")
            except (KeyError, TypeError) as exc:
                raise ProviderError(
                    "Le logiciel comptable a renvoyé une liste illisible.", detail=repr(exc)
                ) from None
            yield items
            if not cursor:
                return

    @staticmethod
    def _normalise(kind: ListKind, raw: dict[str, Any]) -> NormalisedItem:
        return NormalisedItem(
            external_id=str(raw["id"]),
            name=str(raw["name"]),
            code=raw.get("code"),
            vat_number=raw.get("vat_number"),
            siren=raw.get("siren"),
            rate=raw.get("rate"),
            active=raw.get("status", "active") == "active",
            extras=raw.get("extras") or {},
        )

    def _send(self, tokens: TokenSet, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {tokens.access_token}", **kwargs.pop("headers", {})}

        def call() -> Any:
            headers["Authorization"] = f"Bearer {tokens.access_token}"
            return self.http.json(method, f"{self.base_url}/api/v1{path}", headers=headers, **kwargs)

        return with_renewal(tokens, call)

    def find_parties(self, tokens: TokenSet, kind: ListKind, *, term: str) -> list[NormalisedItem]:
        body = self._get(tokens, f"/{kind.value}", {"search": term, "limit": 100})
        try:
            return [self._normalise(kind, raw) for raw in body["items"]]
        except (KeyError, TypeError) as exc:
            raise ProviderError(
                "Le logiciel comptable a renvoyé une liste illisible.", detail=repr(exc)
            ) from None

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
        invoice_id = str(body["id"])
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
