"""A consent that needs the user's word before it connects a dossier: which company, when the consent
covers several (Xero's organisations, Sage's businesses), and whether to go on when the company is
already connected to another dossier of the organisation."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select

from webapp.connectors.base import Company, TokenSet
from webapp.crypto import decrypt_json, encrypt_json
from webapp.extensions import db
from webapp.models import Dossier, Integration, IntegrationStatus, PendingConsent, User
from webapp.models.base import utcnow

#: How long the choice waits: the software's consent page had the same time (connections.routes).
PENDING_MINUTES = 15


def connected_elsewhere(dossier: Dossier, software: str, company_ids: list[str]) -> dict[str, list[Dossier]]:
    """For each company, the other dossiers of the same organisation connected to it in `software`
    (connected or expired: both are the dossier's company until it is disconnected)."""
    if not company_ids:
        return {}
    rows = db.session.execute(
        select(Integration.company_id, Dossier)
        .join(Dossier, Dossier.id == Integration.dossier_id)
        .where(
            Dossier.organisation_id == dossier.organisation_id,
            Dossier.id != dossier.id,
            Integration.software == software,
            Integration.company_id.in_(company_ids),
            Integration.status != IntegrationStatus.DISCONNECTED,
        )
        .order_by(Dossier.name, Dossier.id)
    ).all()
    found: dict[str, list[Dossier]] = {}
    for company_id, other in rows:
        if other not in found.setdefault(company_id, []):
            found[company_id].append(other)
    return found


def hold(
    *,
    user: User,
    dossier: Dossier,
    software: str,
    purpose: dict[str, int],
    tokens: TokenSet,
    companies: list[Company],
) -> PendingConsent:
    """Keep the consent (tokens encrypted) until the user decides; give its key for the page's address."""
    forget_stale()
    pending = PendingConsent(
        key=secrets.token_urlsafe(32),
        user_id=user.id,
        dossier_id=dossier.id,
        software=software,
        purpose=dict(purpose),
        token_ciphertext=encrypt_json(tokens.as_dict()),
        companies=[c.as_dict() for c in companies],
    )
    db.session.add(pending)
    db.session.commit()
    return pending


def find(key: str, *, user: User, dossier: Dossier) -> PendingConsent | None:
    """The user's own waiting consent for this dossier, if still within its time."""
    if not key or len(key) > 64:
        return None
    pending = db.session.scalar(
        select(PendingConsent).where(
            PendingConsent.key == key,
            PendingConsent.user_id == user.id,
            PendingConsent.dossier_id == dossier.id,
        )
    )
    if pending is None or pending.created_at < utcnow() - timedelta(minutes=PENDING_MINUTES):
        return None
    return pending


def tokens_of(pending: PendingConsent) -> TokenSet:
    return TokenSet.from_dict(decrypt_json(pending.token_ciphertext))


def companies_of(pending: PendingConsent) -> list[Company]:
    return [Company.from_dict(each) for each in pending.companies or []]


def forget(pending: PendingConsent) -> None:
    db.session.delete(pending)
    db.session.commit()


def forget_stale() -> None:
    """Consents nobody decided on within their time: their tokens go."""
    db.session.execute(
        delete(PendingConsent).where(
            PendingConsent.created_at < utcnow() - timedelta(minutes=PENDING_MINUTES)
        )
    )
