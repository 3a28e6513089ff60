"""OAuth 2 client calls (authlib) with the same bounded retries as API calls, and typed errors."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask_babel import gettext as _

from webapp.connectors.base import Connector, IntegrationExpired, ProviderError, TokenSet
from webapp.connectors.http import RetryPolicy

# Answers of a token endpoint that mean the consent is over: only a new authorisation helps.
CONSENT_OVER = {"invalid_grant", "unauthorized_client", "access_denied"}
TRANSIENT = {"server_error", "temporarily_unavailable", "rate_limited", "too_many_requests"}


class OAuthClient:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authorize_url: str,
        token_url: str,
        revoke_url: str | None,
        scope: str,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.revoke_url = revoke_url
        self.scope = scope
        self.policy = policy
        self.sleep = sleep

    def _session(self, redirect_uri: str | None = None) -> OAuth2Session:
        return OAuth2Session(
            self.client_id,
            self.client_secret,
            scope=self.scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method name)
        )

    def authorization_url(self, *, redirect_uri: str, state: str, code_verifier: str, **extra: str) -> str:
        with self._session(redirect_uri) as session:
            url, _state = session.create_authorization_url(
                self.authorize_url, state=state, code_verifier=code_verifier, **extra
            )
        return url

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        def call(session: OAuth2Session) -> dict[str, Any]:
            return session.fetch_token(
                self.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                timeout=self.policy.timeout,
            )

        return TokenSet.from_oauth(self._with_retries(call, redirect_uri=redirect_uri))

    def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise IntegrationExpired()

        def call(session: OAuth2Session) -> dict[str, Any]:
            return session.refresh_token(
                self.token_url, refresh_token=tokens.refresh_token, timeout=self.policy.timeout
            )

        fresh = TokenSet.from_oauth(self._with_retries(call))
        if fresh.refresh_token is None:  # some software keep the refresh token unchanged
            fresh.refresh_token = tokens.refresh_token
        fresh.extra = {**tokens.extra, **fresh.extra}  # what the connection learnt (tenant, realm…)
        return fresh

    def revoke(self, tokens: TokenSet) -> None:
        if not self.revoke_url:
            return
        token = tokens.refresh_token or tokens.access_token
        hint = "refresh_token" if tokens.refresh_token else "access_token"
        with self._session() as session:
            try:
                session.revoke_token(
                    self.revoke_url, token=token, token_type_hint=hint, timeout=self.policy.timeout
                )
            except (requests.RequestException, OAuthError) as exc:
                raise ProviderError(
                    _("La révocation n'a pas pu être confirmée par le logiciel comptable."),
                    detail=type(exc).__name__,
                ) from None

    def _with_retries(self, call: Callable[[OAuth2Session], dict[str, Any]], redirect_uri: str | None = None):
        attempt = 0
        while True:
            attempt += 1
            with self._session(redirect_uri) as session:
                try:
                    return dict(call(session))
                except OAuthError as exc:
                    if exc.error in CONSENT_OVER:
                        raise IntegrationExpired(detail=f"{exc.error}: {exc.description or ''}") from None
                    if exc.error not in TRANSIENT or attempt > self.policy.max_retries:
                        raise ProviderError(
                            _("Le logiciel comptable a refusé l'authentification."), detail=str(exc.error)
                        ) from None
                except (requests.RequestException, ValueError) as exc:
                    if attempt > self.policy.max_retries:
                        raise ProviderError(
                            _("Le logiciel comptable ne répond pas. Réessayez dans quelques minutes."),
                            detail=type(exc).__name__,
                        ) from None
            self.sleep(random.uniform(0, self.policy.backoff * (2 ** (attempt - 1))))


class OAuthConnector(Connector):
    """A connector whose consent, tokens and revocation are plain OAuth 2 through `self.oauth`."""

    oauth: OAuthClient

    def authorization_url(self, *, redirect_uri: str, state: str, code_verifier: str) -> str:
        return self.oauth.authorization_url(
            redirect_uri=redirect_uri, state=state, code_verifier=code_verifier
        )

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, callback: Mapping[str, str] | None = None
    ) -> TokenSet:
        return self.oauth.exchange_code(code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)

    def refresh(self, tokens: TokenSet) -> TokenSet:
        return self.oauth.refresh(tokens)

    def revoke(self, tokens: TokenSet) -> None:
        self.oauth.revoke(tokens)
