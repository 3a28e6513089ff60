"""The sandbox's OAuth 2 server (authlib): code with PKCE, rotating refresh tokens, revocation."""

from __future__ import annotations

import secrets
import time
import uuid

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Blueprint, Flask, g, jsonify, render_template, request
from sqlalchemy import select, update

from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.faults import apply_faults, get_setting
from sandbox.models import (
    SandboxAuthCode,
    SandboxClient,
    SandboxCompany,
    SandboxConnection,
    SandboxGrant,
    SandboxToken,
    token_hash,
)
from sandbox.tenancy import signed_in_owner
from webapp.extensions import db

bp = Blueprint("sandbox_oauth", __name__, url_prefix="/oauth")

DEFAULT_ACCESS_TTL = 1800
DEFAULT_REFRESH_TTL = 60 * 86400


def _generate(*_args, **_kwargs) -> str:
    return secrets.token_urlsafe(32)


def _issued(value: str) -> str:
    """Every token the sandbox hands out passes here (tests spy on it to see the tokens in clear,
    which the sandbox itself no longer keeps)."""
    return value


def _new_token(*_args, **_kwargs) -> str:
    """The refresh token generator authlib is given."""
    return _issued(_generate())


def _new_access_token(client, grant_type, user, scope) -> str:
    """The access token: random, or a signed JWT where the vendor issues one (Xero)."""
    if g.get("dialect_jwt") is not None:
        return _issued(
            g.dialect_jwt(client=client, user=user, scope=scope, ttl=_access_ttl(client, grant_type))
        )
    return _issued(_generate())


def _access_ttl(_client, _grant_type) -> int:
    """The lifetime set through the controls, else the dialect's (each vendor has its own), else 30 min."""
    return int(get_setting("access_ttl", None) or g.get("dialect_access_ttl") or DEFAULT_ACCESS_TTL)


def _refresh_ttl() -> int:
    return int(get_setting("refresh_ttl", None) or g.get("dialect_refresh_ttl") or DEFAULT_REFRESH_TTL)


def issue_token_as(access_ttl: int, refresh_ttl: int, *, jwt=None, refresh_grace: int = 0):
    """The token endpoint, with a vendor's token lifetimes (a dialect's /token calls this).

    `jwt(client=, user=, scope=, ttl=)` makes the access token where the vendor's is a JWT;
    `refresh_grace`: seconds during which a refresh token already replaced is still accepted."""
    g.dialect_access_ttl, g.dialect_refresh_ttl = access_ttl, refresh_ttl
    g.dialect_jwt, g.dialect_refresh_grace = jwt, refresh_grace
    return issue_token()


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code, request):
        company = request.user
        chosen = g.get("consent_companies") or [company.id]
        g.consent_auth_event = str(uuid.uuid4())
        item = SandboxAuthCode(
            code=code,
            client_id=request.client.client_id,
            company_id=company.id,
            company_ids=chosen,
            auth_event_id=g.consent_auth_event,
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.payload.scope or "",
            code_challenge=request.payload.data.get("code_challenge"),
            code_challenge_method=request.payload.data.get("code_challenge_method"),
        )
        db.session.add(item)
        db.session.commit()
        return item

    def query_authorization_code(self, code, client):
        item = db.session.scalar(
            select(SandboxAuthCode).where(
                SandboxAuthCode.code == code, SandboxAuthCode.client_id == client.client_id
            )
        )
        if item and not item.is_expired():
            return item
        return None

    def delete_authorization_code(self, authorization_code):
        db.session.delete(authorization_code)
        db.session.commit()

    def authenticate_user(self, authorization_code):
        g.token_consent = (authorization_code.companies, authorization_code.auth_event_id)
        return db.session.get(SandboxCompany, authorization_code.company_id)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    # Every refresh gives a new refresh token and kills the old one, as Xero and QuickBooks do:
    # two workers refreshing the same token at once would lose the integration.
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        token = SandboxToken.by_refresh_token(refresh_token)
        if token is None:
            return None
        if token.revoked:
            # Xero: "the previous refresh token remains valid for a grace period of 30 minutes" after
            # a rotation, so that a client that lost the answer can try again
            # (https://developer.xero.com/documentation/guides/oauth2/token-types). A revoked one never.
            grace = g.get("dialect_refresh_grace") or 0
            if not grace or token.rotated_at is None or time.time() - token.rotated_at > grace:
                return None
        if token.refresh_expires_at is not None and time.time() >= token.refresh_expires_at:
            return None
        grant = db.session.get(SandboxGrant, token.grant_id)
        if grant is None or grant.revoked_at is not None or grant.refresh_expired_at is not None:
            return None
        if token.revoked:
            # Used again within the grace: the answer to its first use was lost, and what that gave
            # is ended, so that only one chain of tokens lives on (the client never saw the other).
            db.session.execute(
                update(SandboxToken)
                .where(
                    SandboxToken.grant_id == token.grant_id,
                    SandboxToken.id > token.id,  # issued after it, by its first use and onwards
                )
                .values(revoked=True)
            )
        g.token_consent = (grant.companies, grant.auth_event_id)
        return token

    def authenticate_user(self, refresh_token):
        return db.session.get(SandboxCompany, refresh_token.company_id)

    def revoke_old_credential(self, refresh_token):
        refresh_token.revoked = True
        if refresh_token.rotated_at is None:
            refresh_token.rotated_at = time.time()
        db.session.commit()


def save_token(token: dict, request) -> None:
    company = request.user
    previous = getattr(request, "refresh_token", None)
    if isinstance(previous, SandboxToken):
        grant_id = previous.grant_id
    else:
        companies, auth_event = g.get("token_consent") or ([company.id], None)
        grant = SandboxGrant(
            client_id=request.client.client_id,
            company_id=company.id,
            company_ids=companies,
            auth_event_id=auth_event or str(uuid.uuid4()),
        )
        db.session.add(grant)
        db.session.flush()
        grant_id = grant.id
    refresh_ttl = _refresh_ttl()
    grant = db.session.get(SandboxGrant, grant_id)
    if grant is not None and grant.consent_ends_at is not None:
        # As Intuit: the refresh token lives until the consent's end at most, and the answer says
        # how long it has left.
        left = max(0, int(grant.consent_ends_at.timestamp() - time.time()))
        refresh_ttl = min(refresh_ttl, left)
        token["x_refresh_token_expires_in"] = refresh_ttl
    db.session.add(
        SandboxToken(
            grant_id=grant_id,
            client_id=request.client.client_id,
            company_id=company.id,
            access_token_hash=token_hash(token["access_token"]),
            refresh_token_hash=token_hash(token["refresh_token"]) if token.get("refresh_token") else None,
            scope=token.get("scope", ""),
            issued_at=time.time(),
            expires_in=token["expires_in"],
            refresh_expires_at=time.time() + refresh_ttl,
        )
    )
    db.session.commit()


def issue_tokens(
    *,
    client_id: str,
    company_id: str,
    scope: str,
    access_ttl: int,
    refresh_ttl: int,
    issued_at: float | None = None,
    refresh_expired: bool = False,
) -> tuple[str, str]:
    """A new grant to `company_id` with its tokens, as if the consent had been given at `issued_at`
    (support's reproductions, benches, tests): the access and refresh tokens, which only the caller
    ever sees. `refresh_expired`: the consent has ended, the next refresh is refused. Not committed."""
    grant = SandboxGrant(client_id=client_id, company_id=company_id, auth_event_id=str(uuid.uuid4()))
    if refresh_expired:
        grant.refresh_expired_at = utcnow()
    db.session.add(grant)
    db.session.flush()
    issued_at = time.time() if issued_at is None else issued_at
    access, refresh = _issued(_generate()), _issued(_generate())
    db.session.add(
        SandboxToken(
            grant_id=grant.id,
            client_id=client_id,
            company_id=company_id,
            access_token_hash=token_hash(access),
            refresh_token_hash=token_hash(refresh),
            scope=scope,
            issued_at=issued_at,
            expires_in=access_ttl,
            refresh_expires_at=issued_at + refresh_ttl,
        )
    )
    record_connections(client_id, [company_id], grant.auth_event_id)  # read by Xero's clients only
    return access, refresh  # the caller commits, with what else it makes


class SandboxRevocationEndpoint(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string, token_type_hint):
        if token_type_hint == "refresh_token":  # noqa: S105 - a hint's name, not a secret
            return SandboxToken.by_refresh_token(token_string)
        token = SandboxToken.by_access_token(token_string)
        if token is None and token_type_hint is None:
            token = SandboxToken.by_refresh_token(token_string)
        return token

    def revoke_token(self, token, request):
        # Revoking either token ends the whole consent, as the vendors' disconnect does.
        grant = db.session.get(SandboxGrant, token.grant_id)
        if grant is not None and grant.revoked_at is None:
            grant.revoked_at = utcnow()
        token.revoked = True
        db.session.commit()


server = AuthorizationServer()


def init_app(app: Flask) -> None:
    server.init_app(
        app,
        query_client=lambda client_id: db.session.get(SandboxClient, client_id),
        save_token=save_token,
    )
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            access_token_generator=_new_access_token,
            refresh_token_generator=_new_token,
            expires_generator=_access_ttl,
        ),
    )
    server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_endpoint(SandboxRevocationEndpoint)


INVALID_REQUEST = (
    "Un paramètre de la demande (l'adresse de retour, par exemple) n'est pas accepté. "
    "Recommencez la connexion depuis Raccord."
)


def _refused_input(call):
    """authlib raises ValueError for what it cannot put in an answer (a control character in a
    parameter, a redirect_uri it cannot parse): that is a bad request, not a failure of the server."""

    def wrapper(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except ValueError:
            db.session.rollback()
            if request.endpoint and request.endpoint.endswith("authorize"):
                return render_template("consent_error.html", error=INVALID_REQUEST), 400
            return jsonify({"error": "invalid_request"}), 400

    wrapper.__name__ = call.__name__
    wrapper.__doc__ = call.__doc__
    return wrapper


@bp.route("/authorize", methods=["GET", "POST"])
@_refused_input
def authorize(*, several: bool = False):
    """The consent page. `several`: the user may authorise several companies at once (Xero's
    organisations, Sage's businesses); otherwise one, as QuickBooks and Pennylane ask."""
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        detail = error.description or error.error  # authlib's words, for whoever debugs the client
        return render_template("consent_error.html", error=f"{INVALID_REQUEST} ({detail})"), 400
    owner = signed_in_owner()
    companies = (
        db.session.scalars(
            select(SandboxCompany).where(SandboxCompany.owner == owner).order_by(SandboxCompany.name)
        ).all()
        if owner
        else []
    )
    page = {"grant": grant, "companies": companies, "client": grant.client, "several": several}
    if request.method == "GET":
        return render_template("consent.html", **page)
    if request.form.get("decision") != "allow":
        return server.create_authorization_response(grant=grant, grant_user=None)
    wanted = set(request.form.getlist("company_id")) if several else {request.form.get("company_id") or ""}
    chosen = [each for each in companies if each.id in wanted]  # only those offered
    if not chosen:
        error = None
        if companies:
            error = (
                "Choisissez au moins une société à laquelle Raccord aura accès."
                if several
                else "Choisissez la société à laquelle Raccord aura accès."
            )
        return render_template("consent.html", **page, error=error, checked=wanted), 400
    g.consent_companies = [each.id for each in chosen]
    return server.create_authorization_response(grant=grant, grant_user=chosen[0])


def record_connections(client_id: str, company_ids: list[str], auth_event_id: str) -> None:
    """Xero's connections after a consent: one per organisation, made or brought up to date (not
    committed: the caller commits with the rest)."""
    now = utcnow()
    for company_id in company_ids:
        connection = db.session.scalar(
            select(SandboxConnection).where(
                SandboxConnection.client_id == client_id, SandboxConnection.company_id == company_id
            )
        )
        if connection is None:
            db.session.add(
                SandboxConnection(
                    client_id=client_id,
                    company_id=company_id,
                    auth_event_id=auth_event_id,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            connection.auth_event_id, connection.updated_at = auth_event_id, now
    db.session.flush()


@bp.post("/token")
@sandbox_csrf.exempt
@_refused_input
def issue_token():
    faulted = apply_faults()
    if faulted is not None:
        return faulted
    return server.create_token_response()


@bp.post("/revoke")
@sandbox_csrf.exempt
@_refused_input
def revoke_token():
    return server.create_endpoint_response(SandboxRevocationEndpoint.ENDPOINT_NAME)
