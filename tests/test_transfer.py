"""'Transférer les règles' after 'Changer de logiciel': placed, reviewed, reported, and idempotent."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import run_worker_burst, unescaped
from tests.test_switch import switch
from webapp.extensions import db
from webapp.models import (
    Event,
    Integration,
    ItemChoice,
    ListItem,
    ListKind,
    PartyKind,
    Rule,
    RuleTransfer,
)

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


def add_rule(integration_id: int, dossier_id: int, party_id: int, **items) -> int:
    rule = Rule(
        dossier_id=dossier_id,
        integration_id=integration_id,
        party_kind=PartyKind.SUPPLIER,
        party_id=party_id,
        due_days=30,
        **items,
    )
    db.session.add(rule)
    db.session.commit()
    return rule.id


def old_item(integration_id: int, kind: ListKind, name: str, code: str | None = None) -> int:
    item = ListItem(
        integration_id=integration_id, kind=kind, external_id=f"gone-{name}", name=name, code=code
    )
    db.session.add(item)
    db.session.commit()
    return item.id


def to_xero(job_app, browser, dossier_id, integration_id) -> int:
    switch(browser, dossier_id, integration_id, "xero")
    with job_app.app_context():
        return db.session.scalar(select(Integration.id).where(Integration.software == "xero"))


def test_the_button_waits_for_the_new_lists_then_transfers_every_rule_whole(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, ids = dossier_with_rule
    new_id = to_xero(job_app, browser, dossier_id, integration_id)
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{new_id}").text)
    assert "Règles à transférer (1)" in page
    assert "Disponible quand les listes de Xero auront fini de se charger." in page and "disabled" in page
    run_worker_burst(job_app)  # the new lists load

    url = f"/dossiers/{dossier_id}/integrations/{new_id}"
    started = browser.post_form(f"{url}/transfert", {}, page=url)
    assert "Transfert en cours" in unescaped(started.text)
    run_worker_burst(job_app)
    report = unescaped(browser.get(started.url).text)
    assert (
        "Transfert terminé : 1 règle transférée entière, 0 avec des champs vides, 0 non transférée." in report
    )
    with job_app.app_context():
        old = db.session.scalar(select(Rule).where(Rule.integration_id == integration_id))
        new = db.session.scalar(select(Rule).where(Rule.transferred_from_id == old.id))
        assert new.integration_id == new_id and (new.due_days, new.paid) == (old.due_days, old.paid)
        assert (new.party.name, new.account.code, new.tax_rate.code) == ("EDF Entreprises", "606100", "TVA20")
        assert new.party.integration_id == new.account.integration_id == new_id
        event = db.session.scalar(select(Event).where(Event.kind == "rules.transferred"))
        assert event.details["whole"] == 1
    rules = unescaped(browser.get(f"/dossiers/{dossier_id}/regles/fournisseurs").text)
    assert "À transférer" not in rules and "EDF Entreprises" in rules

    # Nothing left to transfer: a second click changes nothing.
    again = browser.post_form(f"{url}/transfert", {}, page=url)
    assert "Aucune règle à transférer" in unescaped(again.text)


def test_unplaced_items_are_reviewed_and_the_report_says_what_was_left(job_app, live, dossier_with_rule):
    browser, dossier_id, integration_id, ids = dossier_with_rule
    with job_app.app_context():
        gone_account = old_item(integration_id, ListKind.ACCOUNTS, "Compte disparu", "699999")
        phantom = old_item(integration_id, ListKind.SUPPLIERS, "Fournisseur Fantôme")
        gone_axis = old_item(integration_id, ListKind.TRACKING_CATEGORIES, "Axe disparu")
        orange = db.session.scalar(select(ListItem.id).where(ListItem.external_id == "sup-000002"))
        db.session.get(Rule, db.session.scalar(select(Rule.id))).account_id = gone_account
        db.session.commit()
        add_rule(integration_id, dossier_id, phantom)
        add_rule(integration_id, dossier_id, orange, account_id=ids["office"], tracking_id=gone_axis)
    new_id = to_xero(job_app, browser, dossier_id, integration_id)
    run_worker_burst(job_app)

    url = f"/dossiers/{dossier_id}/integrations/{new_id}"
    review = browser.post_form(f"{url}/transfert", {}, page=url)
    page = unescaped(review.text)
    assert "Éléments à placer dans Xero" in page
    for label in ("699999 Compte disparu", "Fournisseur Fantôme", "Axe disparu"):
        assert label in page
    with job_app.app_context():
        run = db.session.scalar(select(RuleTransfer))
        office = db.session.scalar(
            select(ListItem.id).where(ListItem.integration_id == new_id, ListItem.code == "606400")
        )
        assert (
            db.session.scalar(select(func.count()).where(Rule.integration_id == new_id)) == 0
        )  # nothing yet
    answers = {
        f"choix-{gone_account}": str(office),
        f"choix-{phantom}": "ignorer",
        f"choix-{gone_axis}": "ignorer",
    }
    done = browser.post_form(review.url, answers, page=review.url)
    run_worker_burst(job_app)
    report = unescaped(browser.get(done.url).text)
    assert "1 règle transférée entière, 1 avec des champs vides, 1 non transférée." in report
    assert "Fournisseur Fantôme : Fournisseur ignoré à la revue." in report
    assert "catégorie analytique vide (« Axe disparu » ignoré à la revue)" in report
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ItemChoice)) == 3  # the answers are kept
        edf = db.session.scalar(
            select(Rule)
            .join(ListItem, Rule.party_id == ListItem.id)
            .where(Rule.integration_id == new_id, ListItem.name == "EDF Entreprises")
        )
        assert edf.account.code == "606400"  # the reviewer's choice
        assert run.id

    # Run again: the kept answers are reused, no review, and nothing changes.
    url_again = browser.post_form(f"{url}/transfert", {}, page=url)
    assert "Éléments à placer" not in unescaped(url_again.text)
    run_worker_burst(job_app)
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).where(Rule.integration_id == new_id)) == 2
        transferred_ids = select(Rule.transferred_from_id).where(Rule.transferred_from_id.is_not(None))
        pending = db.session.scalar(
            select(func.count()).where(Rule.integration_id == integration_id, Rule.id.not_in(transferred_ids))
        )
        assert pending == 1  # the phantom's rule stays 'À transférer', untouched
