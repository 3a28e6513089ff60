"""IDOR: a member reaching another organisation's objects through a URL of their own dossier.

tests/test_dossiers.py tries another organisation's dossier on every URL. Here the dossier in the
URL is the user's own and every other id (integration, list item, rule, payment rule, document,
job) is a real object of another organisation: each URL answers 404 and changes nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, text_of
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    Dossier,
    Event,
    JobRun,
    JobStatus,
    ListItem,
    ListKind,
    PartyKind,
    PaymentRule,
    Role,
    Rule,
    User,
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


# --- a member restricted to some dossiers of their own cabinet --------------------------------


@pytest.fixture
def restricted(app_ctx):
    """Hugo, a member of Cabinet Lefèvre restricted to 'Boulangerie Martin'; 'Garage Éric' is a dossier
    of the same cabinet he was not given, with every kind of object in it."""
    from webapp.services.team import grant

    org = make_organisation("Cabinet Lefèvre")
    mine = make_dossier(org, "Boulangerie Martin", "732829320")
    make_integration(mine)
    hidden = make_dossier(org, "Garage Éric", "552100554")
    integration = make_integration(hidden, company_name="Garage Éric SAS")
    supplier = make_item(integration, ListKind.SUPPLIERS, "Total Énergies")
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe", Role.ADMIN)
    hugo = make_user(org, "hugo@lefevre.test", "mot-de-passe-hugo")
    hugo.dossiers_restricted = True
    grant(hugo.id, [mine.id])
    document = Document(
        dossier_id=hidden.id,
        integration_id=integration.id,
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
    # A job Hugo started on the dossier before he was restricted.
    run = JobRun(
        rq_job_id="hugo-job",
        kind="list_refresh",
        description="Chargement : Fournisseurs",
        owner_id=hugo.id,
        dossier_id=hidden.id,
        status=JobStatus.SUCCEEDED,
        func="jobs.lists.refresh_list",
        args=[integration.id, "suppliers", False],
        kwargs={},
    )
    db.session.add_all([document, run])
    db.session.commit()
    return mine, hidden, integration, {"document_id": document.id, "item_id": supplier.id, "run_id": run.id}


def test_a_restricted_member_gets_404_on_every_url_of_a_dossier_not_theirs(app, client, restricted):
    from tests.test_dossiers import dossier_urls

    mine, hidden, integration, ids = restricted
    login(client, "hugo@lefevre.test", "mot-de-passe-hugo")
    token = csrf_token(client, "/dossiers")
    before = _state()
    tried = 0
    for method, path in dossier_urls(app, hidden.id, integration.id):
        response = client.open(
            path,
            method=method,
            data={"csrf_token": token, "name": "Piraté", "account_id": "1", "party_id": "1"},
            headers={"X-CSRFToken": token},
        )
        tried += 1
        assert response.status_code == 404, (method, path, response.status_code)
        assert "secret" not in response.get_data(as_text=True)
    # The dossier's real objects too (its document, its PDF, its list item).
    for method, path in [
        ("GET", f"/dossiers/{hidden.id}/documents/{ids['document_id']}"),
        ("GET", f"/dossiers/{hidden.id}/documents/{ids['document_id']}/pdf"),
        ("POST", f"/dossiers/{hidden.id}/documents/{ids['document_id']}/publier"),
        ("POST", f"/dossiers/{hidden.id}/listes/accounts/{ids['item_id']}/visible"),
        ("GET", f"/jobs/{ids['run_id']}"),  # his own job, but of a dossier no longer his
    ]:
        response = client.open(
            path, method=method, data={"csrf_token": token}, headers={"X-CSRFToken": token}
        )
        tried += 1
        assert response.status_code == 404, (method, path)
        assert "secret" not in response.get_data(as_text=True)
    assert tried >= 20
    db.session.expire_all()
    assert _state() == before
    assert db.session.get(Dossier, hidden.id).name == "Garage Éric"
    # His own dossier answers.
    assert client.get(f"/dossiers/{mine.id}").status_code == 200


def test_a_restricted_member_does_not_find_the_dossier_in_my_dossiers_or_search(client, restricted):
    mine, hidden, integration, ids = restricted
    login(client, "hugo@lefevre.test", "mot-de-passe-hugo")
    page = text_of(client.get("/dossiers"))
    assert "Boulangerie Martin" in page and "Garage" not in page
    for query in ("garage", "eric", "552100554", "552 100 554"):
        found = text_of(
            client.get(f"/dossiers?q={query}", headers={"HX-Request": "true", "HX-Target": "dossier-list"})
        )
        assert "Garage" not in found and "Aucun dossier ne correspond" in found


def test_an_admin_and_an_unrestricted_member_see_the_whole_cabinet(app, client, restricted):
    mine, hidden, integration, ids = restricted
    make_user(hidden.organisation, "lea@lefevre.test", "mot-de-passe-lea")
    for email, password in (
        ("claire@lefevre.test", "bon-mot-de-passe"),
        ("lea@lefevre.test", "mot-de-passe-lea"),
    ):
        browser = app.test_client()
        login(browser, email, password)
        assert "Garage Éric" in text_of(browser.get("/dossiers"))
        assert browser.get(f"/dossiers/{hidden.id}").status_code == 200


def test_a_member_cannot_use_any_admin_endpoint(app, client, restricted):
    """Every URL of « Équipe », whatever comes later, answers a member 403 in French."""
    mine, hidden, integration, ids = restricted
    login(client, "hugo@lefevre.test", "mot-de-passe-hugo")
    token = csrf_token(client, "/dossiers")
    hugo = db.session.scalar(select(User).where(User.email == "hugo@lefevre.test"))
    tried = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("team."):
            continue
        values = {"user_id": hugo.id, "invitation_id": 1}
        path = rule.build({k: v for k, v in values.items() if k in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(
                path, method=method, data={"csrf_token": token, "mode": "all", "role": "admin"}
            )
            tried += 1
            assert response.status_code == 403, (method, path)
            assert "réservée aux administrateurs du cabinet" in text_of(response)
    assert tried >= 7
    db.session.expire_all()
    hugo = db.session.get(User, hugo.id)
    assert hugo.role is Role.MEMBER and hugo.dossiers_restricted
