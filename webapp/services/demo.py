"""The local demo data, and the guard that keeps its logins out of production."""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import func, inspect, select

from webapp.extensions import db
from webapp.models import Dossier, Organisation, Role, User

DEMO_MEMBER = ("demo@raccord.test", "demo")
DEMO_STAFF = ("support@raccord.test", "support")
DEMO_EMAIL_DOMAIN = "@raccord.test"

DEMO_DOSSIERS = [
    ("Boulangerie Martin", "732829320"),
    ("Atelier Dupont & Fils", "552100554"),
    ("Cabinet Médical Rousseau", "443061841"),
]


class DemoRefused(RuntimeError):
    pass


def database_is_empty() -> bool:
    return not db.session.scalar(select(func.count()).select_from(Organisation))


DEMO_ORGANISATION = "Cabinet Démo"


def demo_organisation_id() -> int | None:
    return db.session.scalar(select(Organisation.id).where(Organisation.name == DEMO_ORGANISATION))


def seed_demo() -> bool:
    """Create the demo organisation, logins and dossiers. Returns False if already there."""
    if db.session.scalar(select(User).where(User.email == DEMO_MEMBER[0])) is not None:
        return False
    cabinet = Organisation(name=DEMO_ORGANISATION)
    support_team = Organisation(name="Équipe Raccord")
    db.session.add_all([cabinet, support_team])

    member = User(organisation=cabinet, email=DEMO_MEMBER[0], full_name="Camille Demo", role=Role.MEMBER)
    member.set_password(DEMO_MEMBER[1])
    staff = User(organisation=support_team, email=DEMO_STAFF[0], full_name="Support Raccord", role=Role.STAFF)
    staff.set_password(DEMO_STAFF[1])
    db.session.add_all([member, staff])

    for name, siren in DEMO_DOSSIERS:
        db.session.add(Dossier(organisation=cabinet, name=name, siren=siren))
    db.session.commit()
    if current_app.config.get("SANDBOX_ENABLED"):
        from webapp.sandbox_host import seed_sandbox_for

        seed_sandbox_for(cabinet.id)  # the demo companies of 'Compta Démo' belong to the demo cabinet
    return True


def refuse_demo_accounts(app: Flask) -> None:
    """In production, refuse to start while any demo login exists."""
    with app.app_context():
        try:
            if not inspect(db.engine).has_table(User.__tablename__):
                return
            found = db.session.scalar(
                select(User.email).where(User.email.like(f"%{DEMO_EMAIL_DOMAIN}")).limit(1)
            )
        finally:
            db.session.remove()
    if found:
        raise DemoRefused(
            f"Le compte de démonstration {found} existe dans cette base : Raccord refuse de démarrer en "
            "production. Supprimez les comptes @raccord.test."
        )
