"""IDOR: a member reaching another organisation's objects through a URL of their own dossier.

tests/test_dossiers.py tries another organisation's dossier on every URL. Here the dossier in the
URL is the user's own and every other id (integration, list item, rule, payment rule, document,
job) is a real object of another organisation: each URL answers 404 and changes nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, login
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    Event,
    JobRun,
    JobStatus,
    ListItem,
    ListKind,
    PartyKind,
    PaymentRule,
    Rule,
)


@pytest.fixture
def worlds(app_ctx):
    mine = make_organisation("Cabinet Lefèvre")
    theirs = make_organisation("Cabinet Girard")
    my_dossier = make_dossier(mine, "Boulangerie Martin", "732829320")
    my_integration = make_integration(my_dossier)
    make_item(my_integration, ListKind.SUPPLIERS, "EDF")
    make_user(mine, "claire@lefevre.test", "bon-mot-de-passe")
    their_dossier = make_dossier(theirs, "Garage Girard", "552100554")
    their_integration = make_integration(their_dossier, company_name="Garage Girard SAS")
    supplier = make_item(their_integration, ListKind.SUPPLIERS, "Total Énergies")
    account = make_item(their_integration, ListKind.ACCOUNTS, "Carburants", code="606100")
    payment = make_item(their_integration, ListKind.PAYMENT_METHODS, "Carte bancaire")
    owner = make_user(theirs, "paul@girard.test", "autre-mot-de-passe")
    rule = Rule(
        dossier_id=their_dossier.id,
        integration_id=their_integration.id,
        party_kind=PartyKind.SUPPLIER,
        party_id=supplier.id,
        account_id=account.id,
    )
    payment_rule = PaymentRule(
        dossier_id=their_dossier.id,
        integration_id=their_integration.id,
        direction=Direction.PURCHASE,
        payment_method_id=payment.id,
    )
    document = Document(
        dossier_id=their_dossier.id,
        integration_id=their_integration.id,
        direction=Direction.PURCHASE,
        party_id=supplier.id,
        party_name="Total Énergies",
        number="F-2026-001",
        issue_date=date(2026, 11, 2),
        amount_ht=Decimal("100.00"),
        amount_tva=Decimal("20.00"),
        amount_ttc=Decimal("120.00"),
        pdf_name="facture.pdf",
        pdf_data=b"%PDF-1.4 secret",
    )
    run = JobRun(
        rq_job_id="their-job",
        kind="list_refresh",
        description="Chargement : Fournisseurs",
        owner_id=owner.id,
        dossier_id=their_dossier.id,
        status=JobStatus.FAILED,
        func="jobs.lists.refresh_list",
        args=[their_integration.id, "suppliers", False],
        kwargs={},
    )
    db.session.add_all([rule, payment_rule, document, run])
    db.session.commit()
    return my_dossier, {
        "integration_id": their_integration.id,
        "item_id": supplier.id,
        "rule_id": rule.id,
        "document_id": document.id,
        "run_id": run.id,
        "job_run_id": run.id,
        "payment_rule_id": payment_rule.id,
    }


def _state() -> tuple:
    return (
        db.session.scalar(select(func.count()).select_from(Rule)),
        db.session.scalar(select(func.count()).select_from(PaymentRule)),
        tuple(db.session.execute(select(Document.id, Document.status, Document.number)).all()),
        tuple(db.session.execute(select(ListItem.id, ListItem.name, ListItem.active)).all()),
        db.session.scalar(select(func.count()).select_from(JobRun)),
        db.session.scalar(select(func.count()).select_from(Event)),
    )


def test_another_organisations_objects_answer_404_through_my_own_dossier(app, client, worlds):
    my_dossier, theirs = worlds
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    token = csrf_token(client, "/dossiers")
    before = _state()
    tried = 0
    for rule in app.url_map.iter_rules():
        foreign = {name for name in rule.arguments if name in theirs}
        if not foreign:
            continue
        values = {
            "dossier_id": my_dossier.id,
            "kind": "suppliers",
            "software": "sandbox",
            "slug": "fournisseurs",
        }
        values.update({name: theirs[name] for name in foreign})
        if not set(rule.arguments) <= set(values):
            raise AssertionError(
                f"{rule.rule}: give this test a value for {set(rule.arguments) - set(values)}"
            )
        path = rule.build({k: v for k, v in values.items() if k in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(
                path,
                method=method,
                data={"csrf_token": token, "name": "Piraté", "account_id": "1", "party_id": "1"},
                headers={"X-CSRFToken": token},
            )
            tried += 1
            assert response.status_code == 404, (method, path, response.status_code)
            assert b"secret" not in response.get_data()
    assert tried >= 10
    db.session.expire_all()
    assert _state() == before
