"""Connecting a dossier to a software, keeping its tokens fresh and safe, and noticing when access ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from babel.lists import format_list
from flask import current_app
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import select

from webapp.connectors.base import AccessTokenRejected, Company, ConnectorError, IntegrationExpired, TokenSet
from webapp.connectors.catalogue import get_connector, software_name
from webapp.crypto import decrypt_json, encrypt_json
from webapp.extensions import db
from webapp.models import Dossier, Integration, IntegrationStatus, User
from webapp.models.base import utcnow
from webapp.services.events import record_event
from webapp.services.jobs import get_redis

log = logging.getLogger(__name__)
T = TypeVar("T")


def expired_message(integration: Integration) -> str:
    return _(
        "L'intégration avec %(software)s a expiré. Reconnectez-vous pour reprendre.",
        software=integration.software_name,
    )


def store_tokens(integration: Integration, tokens: TokenSet) -> None:
    from datetime import UTC, datetime

    integration.token_ciphertext = encrypt_json(tokens.as_dict())
    integration.access_expires_at = datetime.fromtimestamp(tokens.expires_at, UTC)
    integration.tokens_refreshed_at = utcnow()
    refresh_expires_at = (tokens.extra or {}).get("refresh_expires_at")
    consent_expires_at = None
    if refresh_expires_at:
        consent_expires_at = datetime.fromtimestamp(float(refresh_expires_at), UTC)
    # Set only when it moves: a renewal that changes nothing the pages show keeps the dossier's
    # version (webapp.services.summaries), so its open pages are not woken for nothing.
    if integration.consent_expires_at != consent_expires_at:
        integration.consent_expires_at = consent_expires_at


def load_tokens(integration: Integration) -> TokenSet:
    if not integration.token_ciphertext:
        raise IntegrationExpired()
    return TokenSet.from_dict(decrypt_json(integration.token_ciphertext))


def create_integration(
    dossier: Dossier,
    software: str,
    company: Company,
    tokens: TokenSet,
    user: User | None,
    *,
    record: bool = True,
) -> Integration:
    # The dossier's settings follow it from one integration to the next (a change of software, a
    # connection after 'Se déconnecter'): here, how often its lists refresh by themselves.
    previous = db.session.scalar(
        select(Integration.refresh_frequency)
        .where(Integration.dossier_id == dossier.id)
        .order_by(Integration.id.desc())
        .limit(1)
    )
    integration = Integration(
        dossier_id=dossier.id,
        software=software,
        company_id=company.id,
        company_name=company.name,
        status=IntegrationStatus.CONNECTED,
        status_since=utcnow(),
        connected_by_id=user.id if user else None,
        refresh_frequency=previous or "nightly",
    )
    store_tokens(integration, tokens)
    db.session.add(integration)
    db.session.flush()
    if not record:
        db.session.commit()
        return integration
    record_event(
        dossier_id=dossier.id,
        integration_id=integration.id,
        actor_id=user.id if user else None,
        kind="integration.connected",
        message=_(
            "Connexion à %(software)s (société « %(company)s »).",
            software=software_name(software),
            company=company.name,
        ),
        details={"software": software, "company_id": company.id, "company_name": company.name},
    )
    db.session.commit()
    return integration


#: Where a refused reconnection's explanation waits (in the session) for the integration page to show it.
REFUSED_RECONNECTION_KEY = "reconnexion_refusee"


class CompanyMismatch(Exception):
    """A reconnection chose another company than the dossier's; the message says which, in French."""


def reconnect_integration(
    integration: Integration,
    company: Company,
    tokens: TokenSet,
    user: User | None,
    *,
    authorised: list[Company] | None = None,
) -> None:
    """'Se reconnecter': new tokens for the same company; settings, rules and lists stay as they are.

    Another company is refused: the tokens just granted for it are revoked at the software, and
    nothing here changes.
    """
    if company.id != integration.company_id:
        try:
            get_connector(integration.software).revoke(tokens)
        except ConnectorError:
            log.warning("Could not revoke the grant for the wrong company on integration %s", integration.id)
        record_event(
            dossier_id=integration.dossier_id,
            integration_id=integration.id,
            actor_id=user.id if user else None,
            kind="integration.reconnect_refused",
            outcome="failed",
            message=_(
                "Reconnexion refusée : société « %(chosen)s » choisie au lieu de « %(own)s ».",
                chosen=company.name,
                own=integration.company_name,
            ),
            details={"chosen_company_id": company.id, "chosen_company_name": company.name},
        )
        db.session.commit()
        names = sorted((c.name for c in (authorised or [company])), key=str.casefold)
        quoted = [_("« %(name)s »", name=name) for name in names]
        chosen = ngettext(
            "la société %(names)s",
            "les sociétés %(names)s",
            len(names),
            names=format_list(quoted, locale=str(get_locale() or "fr_FR")),
        )
        raise CompanyMismatch(
            _(
                "Vous avez choisi %(chosen)s, mais ce dossier est relié à la société « %(own)s ». "
                "Rien n'a été modifié : reconnectez-vous en choisissant « %(own)s ».",
                chosen=chosen,
                own=integration.company_name,
            )
        )
    was = integration.status
    store_tokens(integration, tokens)
    if was is not IntegrationStatus.CONNECTED:
        integration.status = IntegrationStatus.CONNECTED
        integration.status_since = utcnow()
    integration.status_reason = ""
    _clear_expiry_failures(integration)
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        actor_id=user.id if user else None,
        kind="integration.reconnected",
        message=_(
            "Reconnexion à %(software)s (société « %(company)s »).",
            software=integration.software_name,
            company=company.name,
        ),
        details={"previous_status": was.value},
    )
    db.session.commit()


def _clear_expiry_failures(integration: Integration) -> None:
    """Loads that failed only because access had ended no longer show as failing; their lists stay."""
    from sqlalchemy import case, update

    from webapp.models import ListSync, SyncStatus

    db.session.execute(
        update(ListSync)
        .where(
            ListSync.integration_id == integration.id,
            ListSync.status == SyncStatus.FAILED,
            ListSync.last_error == expired_message(integration),
        )
        .values(
            status=case(
                (ListSync.last_loaded_at.is_(None), SyncStatus.NEVER.value), else_=SyncStatus.SUCCEEDED.value
            ),
            last_error="",
        )
    )


def mark_expired(integration_id: int, detail: str = "") -> None:
    """Access ended at the software: the integration becomes Expirée, once, with an event."""
    db.session.rollback()
    integration = db.session.get(Integration, integration_id, with_for_update=True)
    if integration is None or integration.status is not IntegrationStatus.CONNECTED:
        db.session.rollback()
        return
    integration.status = IntegrationStatus.EXPIRED
    integration.status_since = utcnow()
    integration.status_reason = _("Le logiciel comptable a refusé le renouvellement de l'accès.")
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        kind="integration.expired",
        outcome="failed",
        message=expired_message(integration),
        details={"answer": detail},
    )
    db.session.commit()
    from webapp.services.notifications import integration_expired_later

    integration_expired_later(integration_id)  # its people are told by e-mail, once it is committed


def refresh_margin(tokens: TokenSet) -> float:
    """Renew this long before expiry: TOKEN_REFRESH_MARGIN, but at most a fifth of the token's life,
    so a 5-minute token is not renewed at every call."""
    margin = float(current_app.config["TOKEN_REFRESH_MARGIN"])
    lifetime = float((tokens.extra or {}).get("lifetime") or 0)
    return min(margin, lifetime / 5) if lifetime else margin


def fresh_tokens(integration_id: int, *, rejected: str | None = None) -> TokenSet:
    """Tokens good for a few more minutes, refreshed if needed under a lock shared by every worker.

    `rejected` is an access token the software refused (or one to renew now): the tokens are renewed
    unless another worker has already replaced that token, in which case its result is taken.

    Refresh tokens rotate: two workers refreshing at once would each send the same refresh token,
    and the second would be refused (invalid_grant), losing the integration. So the refresh happens
    under a Redis lock per integration, re-reads the row inside it, and commits the new tokens before
    releasing it.
    """
    integration = db.session.get(Integration, integration_id)
    if integration is None or integration.status is not IntegrationStatus.CONNECTED:
        raise IntegrationExpired()
    tokens = load_tokens(integration)
    margin = refresh_margin(tokens)
    if rejected is None and tokens.expires_at - time.time() > margin:
        return tokens
    if rejected is not None and tokens.access_token != rejected:
        return tokens  # already renewed by another worker since that token was read
    stale_access = tokens.access_token
    lock = get_redis().lock(f"raccord:token-refresh:{integration_id}", timeout=120, blocking_timeout=90)
    with lock:
        db.session.rollback()  # see what another worker may have committed meanwhile
        integration = db.session.get(Integration, integration_id)
        if integration is None or integration.status is not IntegrationStatus.CONNECTED:
            raise IntegrationExpired()
        tokens = load_tokens(integration)
        already_fresh = tokens.access_token != stale_access or (
            rejected is None and tokens.expires_at - time.time() > margin
        )
        if already_fresh:
            return tokens
        connector = get_connector(integration.software)
        try:
            tokens = connector.refresh(tokens)
        except IntegrationExpired as exc:
            mark_expired(integration_id, exc.detail)
            raise
        store_tokens(integration, tokens)
        db.session.commit()
        log.info("Refreshed tokens of integration %s", integration_id)
    return tokens


def call_with_tokens(integration_id: int, call: Callable[[TokenSet], T]) -> T:
    """Run `call` with fresh tokens; if the software refuses the access token, refresh once and retry."""
    tokens = fresh_tokens(integration_id)
    try:
        return call(tokens)
    except AccessTokenRejected:
        tokens = fresh_tokens(integration_id, rejected=tokens.access_token)
        try:
            return call(tokens)
        except AccessTokenRejected as exc:
            mark_expired(integration_id, exc.detail)
            raise IntegrationExpired(detail=exc.detail) from None


def current_integration_for(dossier: Dossier) -> Integration | None:
    return db.session.scalar(
        select(Integration)
        .where(Integration.dossier_id == dossier.id, Integration.status != IntegrationStatus.DISCONNECTED)
        .order_by(Integration.created_at.desc())
        .limit(1)
    )


class LiveTokens:
    """Tokens for a long job: re-read (and refreshed when near expiry) as pages go by.

    Connectors read `access_token` for each request and call `renew()` once if the software
    refuses it, so a refresh of 200 000 items outlives any access token.
    """

    def __init__(self, integration_id: int):
        self.integration_id = integration_id
        self._tokens = fresh_tokens(integration_id)

    @property
    def access_token(self) -> str:
        if self._tokens.expires_at - time.time() < refresh_margin(self._tokens):
            self._tokens = fresh_tokens(self.integration_id)
        return self._tokens.access_token

    @property
    def refresh_token(self) -> str | None:
        return self._tokens.refresh_token

    @property
    def expires_at(self) -> float:
        return self._tokens.expires_at

    @property
    def extra(self) -> dict:
        """What the connection learnt at consent (Xero's tenant, QuickBooks' realm…)."""
        return self._tokens.extra

    def renew(self) -> None:
        self._tokens = fresh_tokens(self.integration_id, rejected=self._tokens.access_token)


def latest_integration_for(dossier: Dossier) -> Integration | None:
    """The integration to show: the current one, else the last disconnected one (its lists and
    documents stay readable, and its rules can be transferred)."""
    return current_integration_for(dossier) or db.session.scalar(
        select(Integration)
        .where(Integration.dossier_id == dossier.id)
        .order_by(Integration.created_at.desc(), Integration.id.desc())
        .limit(1)
    )


def disconnected_message(integration: Integration) -> str:
    return _(
        "L'intégration avec %(software)s est déconnectée : connectez un logiciel comptable depuis Paramètres "
        "du dossier › Connexions.",
        software=integration.software_name,
    )


def disconnect_integration(
    integration: Integration,
    user: User | None,
    *,
    keep_rules: bool = True,
    event_kind: str = "integration.disconnected",
    record: bool = True,
) -> dict:
    """End an integration completely: its grant revoked at the software (where it can be), its
    tokens deleted here, its status Déconnectée. Its lists stay, for its rules' sake; its rules stay
    unless the user chose to delete them. Returns what was done, for the event."""
    from sqlalchemy import delete, update

    from webapp.models import Document, PaymentRule, Rule

    revoked = False
    if integration.token_ciphertext:
        try:
            get_connector(integration.software).revoke(load_tokens(integration))
            revoked = True
        except (ConnectorError, KeyError):
            log.warning("Could not revoke the grant of integration %s at the software", integration.id)
    integration.token_ciphertext = None
    integration.access_expires_at = None
    integration.status = IntegrationStatus.DISCONNECTED
    integration.status_since = utcnow()
    if user and user.full_name:
        integration.status_reason = _("Déconnectée par %(name)s.", name=user.full_name)
    else:
        integration.status_reason = _("Déconnectée par un utilisateur.")
    deleted = 0
    if not keep_rules:
        rule_ids = list(db.session.scalars(select(Rule.id).where(Rule.integration_id == integration.id)))
        payment_ids = list(
            db.session.scalars(select(PaymentRule.id).where(PaymentRule.integration_id == integration.id))
        )
        if rule_ids:
            db.session.execute(update(Document).where(Document.rule_id.in_(rule_ids)).values(rule_id=None))
        if payment_ids:
            db.session.execute(
                update(Document).where(Document.payment_rule_id.in_(payment_ids)).values(payment_rule_id=None)
            )
        deleted = len(rule_ids) + len(payment_ids)
        db.session.execute(delete(Rule).where(Rule.id.in_(rule_ids)))
        db.session.execute(delete(PaymentRule).where(PaymentRule.id.in_(payment_ids)))
    outcome = {"revoked": revoked, "keep_rules": keep_rules, "rules_deleted": deleted}
    if record:
        if keep_rules:
            kept = _("règles conservées")
        elif deleted == 0:
            kept = _("aucune règle supprimée")
        else:
            kept = ngettext("%(num)d règle supprimée", "%(num)d règles supprimées", deleted)
        if not revoked:
            kept = _("%(rules)s ; la révocation n'a pas pu être confirmée par le logiciel", rules=kept)
        record_event(
            dossier_id=integration.dossier_id,
            integration_id=integration.id,
            actor_id=user.id if user else None,
            kind=event_kind,
            message=_(
                "Intégration avec %(software)s déconnectée (%(outcome)s).",
                software=integration.software_name,
                outcome=kept,
            ),
            details=outcome,
        )
    db.session.commit()
    return outcome


def switch_software(
    old: Integration, software: str, company: Company, tokens: TokenSet, user: User | None
) -> tuple[Integration, dict]:
    """'Changer de logiciel', once the new connection has succeeded: the new integration becomes the
    dossier's, the old one is disconnected completely (grant revoked, tokens deleted, rules kept for
    a transfer). One event tells who switched, when, from what and to what."""
    dossier = db.session.get(Dossier, old.dossier_id)
    new = create_integration(dossier, software, company, tokens, user, record=False)
    outcome = disconnect_integration(old, user, keep_rules=True, record=False)
    record_event(
        dossier_id=dossier.id,
        integration_id=new.id,
        actor_id=user.id if user else None,
        kind="integration.switched",
        message=_(
            "Changement de logiciel : %(old)s (société « %(old_company)s ») remplacé par %(new)s "
            "(société « %(company)s »).",
            old=old.software_name,
            old_company=old.company_name,
            new=new.software_name,
            company=company.name,
        ),
        details={
            "from": {"integration_id": old.id, "software": old.software, "company": old.company_name},
            "to": {"integration_id": new.id, "software": software, "company": company.name},
            "previous_grant_revoked": outcome["revoked"],
        },
    )
    db.session.commit()
    return new, outcome
