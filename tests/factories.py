"""Builders for test data, with believable French values."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import count

from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Dossier,
    Integration,
    IntegrationStatus,
    ListItem,
    Organisation,
    Role,
    User,
)

_sequence = count(1)


def make_organisation(name: str | None = None) -> Organisation:
    org = Organisation(name=name or f"Cabinet {next(_sequence)}")
    db.session.add(org)
    db.session.commit()
    return org


def make_user(
    organisation: Organisation,
    email: str | None = None,
    password: str = "mot-de-passe-solide",
    role: Role = Role.MEMBER,
) -> User:
    user = User(
        organisation=organisation,
        email=email or f"compta{next(_sequence)}@cabinet.test",
        role=role,
        full_name="Claire Comptable",
    )
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def make_dossier(
    organisation: Organisation, name: str | None = None, siren: str | None = "732829320"
) -> Dossier:
    dossier = Dossier(organisation=organisation, name=name or f"Société {next(_sequence)}", siren=siren)
    db.session.add(dossier)
    db.session.commit()
    return dossier


def make_integration(
    dossier: Dossier,
    software: str = "sandbox",
    company_name: str = "Boulangerie Martin SARL",
    status: IntegrationStatus = IntegrationStatus.CONNECTED,
) -> Integration:
    integration = Integration(
        dossier=dossier,
        software=software,
        company_id=f"company-{next(_sequence)}",
        company_name=company_name,
        status=status,
    )
    db.session.add(integration)
    db.session.commit()
    return integration


def make_item(integration: Integration, kind, name: str, code: str | None = None, **fields) -> ListItem:
    item = ListItem(
        integration_id=integration.id,
        kind=kind,
        external_id=f"ext-{next(_sequence)}",
        name=name,
        code=code,
        **fields,
    )
    db.session.add(item)
    db.session.commit()
    return item


def make_document(dossier: Dossier, integration: Integration, number: str, **fields) -> Document:
    """An invoice of EDF Entreprises, 1 000,00 € HT, « Prêt » unless said otherwise."""
    values = {
        "direction": Direction.PURCHASE,
        "party_name": "EDF Entreprises",
        "issue_date": date(2026, 11, 2),
        "amount_ht": Decimal("1000.00"),
        "amount_tva": Decimal("200.00"),
        "amount_ttc": Decimal("1200.00"),
        "currency": "EUR",
        "status": DocumentStatus.READY,
        "idempotency_key": f"cle-{number}-{next(_sequence)}",
        **fields,
    }
    document = Document(dossier_id=dossier.id, integration_id=integration.id, number=number, **values)
    db.session.add(document)
    db.session.commit()
    return document
