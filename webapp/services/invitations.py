"""Invitations: an admin invites a colleague to the cabinet by e-mail.

The mail's link carries a signed (invitation id, nonce), made when the mail is sent (salt
"invitation"): nothing secret is stored. « Renvoyer » draws a new nonce (the links sent before die),
« Annuler » revokes it, accepting it once makes the account; an invitation lasts 7 days.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from enum import StrEnum

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Dossier, Invitation, OutgoingMail, Role, User
from webapp.models.base import utcnow
from webapp.services.mail import public_url, queue_mail, register_mail_context
from webapp.services.team import AccessPage, TeamRefused, access_page, grant, organisation_dossier_ids

INVITATION_SALT = "invitation"
INVITATION_DAYS = 7

HAS_ACCOUNT = _l("Cette adresse a déjà un compte Raccord.")
ALREADY_INVITED = _l(
    "Une invitation attend déjà cette adresse : renvoyez-la depuis la liste des invitations."
)
BAD_EMAIL = _l("Saisissez une adresse e-mail valide.")
BAD_ROLE = _l("Choisissez le rôle « Administrateur » ou « Membre ».")


class InvitationState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    INVALID = "invalid"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=INVITATION_SALT)


def invitation_token(invitation: Invitation) -> str:
    return _serializer().dumps({"i": invitation.id, "n": invitation.nonce})


def _invitation_context(row: OutgoingMail) -> dict:
    invitation = db.session.get(Invitation, (row.context or {}).get("invitation_id") or 0)
    if invitation is None:
        return {"accept_url": public_url("auth.login")}
    return {
        "accept_url": public_url("auth.accept_invitation", token=invitation_token(invitation)),
        "expires_at": invitation.expires_at,
    }


register_mail_context("invitation", _invitation_context)


def has_account(email: str) -> bool:
    return db.session.scalar(select(User.id).where(User.email == email)) is not None


def pending_invitations(organisation_id: int) -> list[Invitation]:
    """Invitations neither accepted nor cancelled (expired ones too: they can be sent again)."""
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.organisation_id == organisation_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        )
    )


def _send(invitation: Invitation, admin: User) -> None:
    queue_mail(
        "invitation",
        None,
        to_address=invitation.email,
        template="invitation",
        context={
            "invitation_id": invitation.id,
            "cabinet": invitation.organisation.name,
            "inviter": admin.display_name,
            "role": invitation.role.value,
        },
        locale=admin.locale,
    )


def deliverable_address(email: str | None) -> str | None:
    """The address normalised if a mail server would take it (plain ASCII, no quoting, a real domain;
    a reserved one such as .test only outside production), else None."""
    from email_validator import EmailNotValidError, validate_email

    raw = (email or "").strip()
    if not raw or len(raw) > 320:
        return None
    try:
        checked = validate_email(
            raw,
            check_deliverability=False,
            allow_smtputf8=False,
            test_environment=current_app.config.get("RACCORD_ENV") != "production",
        )
    except EmailNotValidError:
        return None
    return User.normalise_email(checked.normalized)


def invite(admin: User, email: str, role_value: str, restricted: bool) -> Invitation:
    """Invite `email` to the admin's cabinet; a member `restricted` sees only the dossiers chosen
    afterwards (none until then)."""
    email = deliverable_address(email)
    if email is None:
        raise TeamRefused(str(BAD_EMAIL))
    if role_value not in (Role.ADMIN.value, Role.MEMBER.value):
        raise TeamRefused(str(BAD_ROLE))
    if has_account(email):
        raise TeamRefused(str(HAS_ACCOUNT))
    waiting = db.session.scalar(
        select(func.count())
        .select_from(Invitation)
        .where(
            Invitation.organisation_id == admin.organisation_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    )
    if waiting:
        raise TeamRefused(str(ALREADY_INVITED))
    role = Role(role_value)
    now = utcnow()
    invitation = Invitation(
        organisation_id=admin.organisation_id,
        email=email,
        role=role,
        dossier_ids=[] if role is Role.MEMBER and restricted else None,
        invited_by_id=admin.id,
        created_at=now,
        sent_at=now,
        expires_at=now + timedelta(days=INVITATION_DAYS),
        nonce=secrets.token_urlsafe(24),
    )
    db.session.add(invitation)
    db.session.flush()
    _send(invitation, admin)
    db.session.commit()
    return invitation


def resend(invitation: Invitation, admin: User) -> None:
    """A new mail with a new link (the earlier links die), valid 7 days from now."""
    now = utcnow()
    invitation.nonce = secrets.token_urlsafe(24)
    invitation.sent_at = now
    invitation.expires_at = now + timedelta(days=INVITATION_DAYS)
    _send(invitation, admin)
    db.session.commit()


def revoke(invitation: Invitation) -> None:
    invitation.revoked_at = utcnow()
    db.session.commit()


def set_invitation_restricted(invitation: Invitation, restricted: bool) -> None:
    """« Seulement les dossiers cochés » (a member only) or all the cabinet's dossiers."""
    if restricted and invitation.role is Role.MEMBER:
        invitation.dossier_ids = list(invitation.dossier_ids or [])
    else:
        invitation.dossier_ids = None
    db.session.commit()


def set_invitation_dossiers(invitation: Invitation, shown: list[int], ticked: list[int]) -> tuple[int, int]:
    """The ticks of one page of the dossier list for an invited member (as team.update_access)."""
    if invitation.dossier_ids is None:  # « Tous les dossiers du cabinet »: nothing to tick
        return 0, 0
    valid = set(organisation_dossier_ids(invitation.organisation_id, shown))
    had = set(invitation.dossier_ids)
    wanted = valid & set(ticked)
    given, taken = wanted - had, (valid - wanted) & had
    invitation.dossier_ids = sorted((had - taken) | given)
    db.session.commit()
    return len(given), len(taken)


def invitation_for_token(token: str) -> tuple[Invitation | None, InvitationState]:
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None, InvitationState.INVALID
    if not isinstance(data, dict) or not isinstance(data.get("i"), int) or not isinstance(data.get("n"), str):
        return None, InvitationState.INVALID
    invitation = db.session.get(Invitation, data["i"])
    if invitation is None or not secrets.compare_digest(invitation.nonce, data["n"]):
        return None, InvitationState.INVALID
    if invitation.accepted_at is not None:
        return invitation, InvitationState.ACCEPTED
    if invitation.revoked_at is not None:
        return invitation, InvitationState.REVOKED
    if invitation.expires_at <= utcnow():
        return invitation, InvitationState.EXPIRED
    return invitation, InvitationState.VALID


def accept(invitation: Invitation, full_name: str, password: str) -> User:
    """The account the invitation promised, in its cabinet, with its role and dossiers."""
    if has_account(invitation.email):
        raise TeamRefused(str(HAS_ACCOUNT))
    restricted = invitation.role is Role.MEMBER and invitation.dossier_ids is not None
    user = User(
        organisation_id=invitation.organisation_id,
        email=invitation.email,
        full_name=full_name.strip()[:200],
        role=invitation.role,
        dossiers_restricted=restricted,
    )
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # the same address made an account at the same moment
        db.session.rollback()
        raise TeamRefused(str(HAS_ACCOUNT)) from None
    if restricted:
        grant(
            user.id, organisation_dossier_ids(invitation.organisation_id, list(invitation.dossier_ids or []))
        )
    invitation.accepted_at = utcnow()
    invitation.user_id = user.id
    return user


def invitation_access_page(invitation: Invitation, **options) -> AccessPage:
    """The dossiers chosen for an invited member, page by page."""
    chosen = set(invitation.dossier_ids or [])
    return access_page(
        invitation.organisation_id,
        Dossier.id.in_(sorted(chosen)),
        lambda ids: chosen & set(ids),
        **options,
    )


def invitation_of(organisation_id: int, invitation_id: int) -> Invitation | None:
    """A pending invitation of the cabinet (neither accepted nor cancelled)."""
    invitation = db.session.get(Invitation, invitation_id)
    if (
        invitation is None
        or invitation.organisation_id != organisation_id
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
    ):
        return None
    return invitation
