"""Coding layers: dossier defaults, then the party rule, then the payment-method rule; their pages."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, text_of
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.extensions import db
from webapp.models import (
    CodingDefault,
    Direction,
    Document,
    DocumentStatus,
    ListKind,
    PartyKind,
    PaymentRule,
    Rule,
)


@pytest.fixture
def world(client, app_ctx):
    org = make_organisation()
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    ids = {
        "edf": make_item(integration, ListKind.SUPPLIERS, "EDF Entreprises").id,
        "orange": make_item(integration, ListKind.SUPPLIERS, "Orange Business").id,
        "client": make_item(integration, ListKind.CUSTOMERS, "Restaurant Le Bon Goût").id,
        "purchases": make_item(integration, ListKind.ACCOUNTS, "Achats divers", code="607000").id,
        "energy": make_item(integration, ListKind.ACCOUNTS, "Fournitures non stockables", code="606100").id,
        "sales": make_item(integration, ListKind.ACCOUNTS, "Prestations de services", code="706000").id,
        "old": make_item(integration, ListKind.ACCOUNTS, "Ancien compte", code="604000", active=False).id,
        "tva20": make_item(integration, ListKind.TAX_RATES, "TVA 20 %", rate="20").id,
        "tva10": make_item(integration, ListKind.TAX_RATES, "TVA 10 %", rate="10").id,
        "bank": make_item(integration, ListKind.PAYMENT_METHODS, "Crédit Agricole", code="BQ1").id,
        "card": make_item(integration, ListKind.PAYMENT_METHODS, "Carte bancaire", code="CB").id,
        "shop": make_item(integration, ListKind.TRACKING_CATEGORIES, "Magasin centre-ville").id,
    }
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    return dossier, integration, ids


def post(client, url, form, **kwargs):
    return client.post(url, data={**form, "csrf_token": csrf_token(client, url)}, **kwargs)


def new_purchase(client, dossier, ids, **overrides):
    form = {
        "party_id": ids["edf"],
        "number": "F-001",
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
    }
    form.update(overrides)
    form = {k: v for k, v in form.items() if v is not None}
    response = post(client, f"/dossiers/{dossier.id}/documents/nouvelle/achat", form, follow_redirects=True)
    assert response.status_code == 200, text_of(response)
    return db.session.scalar(select(Document).order_by(Document.id.desc()))


def add_layers(dossier, integration, ids, *, default=True, rule=True, payment_rule=True):
    if default:
        db.session.add(
            CodingDefault(
                dossier_id=dossier.id,
                integration_id=integration.id,
                direction=Direction.PURCHASE,
                account_id=ids["purchases"],
                tax_rate_id=ids["tva20"],
                payment_method_id=ids["bank"],
                tracking_id=ids["shop"],
                due_days=30,
                paid=False,
                description="Achat",
            )
        )
    if rule:
        db.session.add(
            Rule(
                dossier_id=dossier.id,
                integration_id=integration.id,
                party_kind=PartyKind.SUPPLIER,
                party_id=ids["edf"],
                account_id=ids["energy"],
                payment_method_id=ids["card"],
                due_days=10,
            )
        )
    if payment_rule:
        db.session.add(
            PaymentRule(
                dossier_id=dossier.id,
                integration_id=integration.id,
                direction=Direction.PURCHASE,
                payment_method_id=ids["card"],
                tax_rate_id=ids["tva10"],
                paid=True,
            )
        )
    db.session.commit()


def coding_of(document: Document) -> dict:
    return {
        "account": document.account_id,
        "tax_rate": document.tax_rate_id,
        "payment_method": document.payment_method_id,
        "tracking": document.tracking_id,
        "paid": document.paid,
        "due_date": document.due_date,
        "description": document.description,
    }


def test_defaults_then_the_supplier_rule_then_the_payment_method_rule(client, world):
    dossier, integration, ids = world
    add_layers(dossier, integration, ids)
    document = new_purchase(client, dossier, ids)
    assert coding_of(document) == {
        "account": ids["energy"],  # the rule over the default
        "tax_rate": ids["tva10"],  # the card's payment rule over the default
        "payment_method": ids["card"],  # the rule's, which brings in the card's payment rule
        "tracking": ids["shop"],  # only the default says
        "paid": True,  # the payment rule over the default
        "due_date": date(2026, 11, 12),  # the rule's 10 days over the default's 30
        "description": "Achat",
    }
    assert document.status is DocumentStatus.READY
    assert document.rule_id is not None and document.payment_rule_id is not None


def test_each_layer_alone_and_the_users_payment_method(client, world):
    dossier, integration, ids = world
    add_layers(dossier, integration, ids, rule=False)
    # Another supplier, no rule: the defaults alone (paid by bank transfer: no payment rule).
    document = new_purchase(client, dossier, ids, party_id=ids["orange"])
    assert coding_of(document)["account"] == ids["purchases"] and document.paid is False
    assert document.payment_rule_id is None and document.status is DocumentStatus.READY
    # The invoice says it was paid by card: the card's rule applies over the defaults.
    document = new_purchase(
        client, dossier, ids, party_id=ids["orange"], number="F-002", payment_method_id=ids["card"]
    )
    assert (document.payment_method_id, document.tax_rate_id, document.paid) == (
        ids["card"],
        ids["tva10"],
        True,
    )


def test_a_layer_pointing_at_an_inactive_item_blanks_it_rather_than_letting_the_default_through(
    client, world
):
    dossier, integration, ids = world
    add_layers(dossier, integration, ids, payment_rule=False)
    db.session.scalar(select(Rule)).account_id = ids["old"]  # became inactive in the software
    db.session.commit()
    document = new_purchase(client, dossier, ids)
    assert document.account_id is None and document.status is DocumentStatus.TO_REVIEW
    assert "Manque : compte" in text_of(client.get(f"/dossiers/{dossier.id}/documents"))


def test_codage_par_defaut_page_saves_each_direction_and_refuses_bad_input(client, world):
    dossier, integration, ids = world
    url = f"/dossiers/{dossier.id}/parametres/codage"
    page = text_of(client.get(url))
    assert "Codage par défaut" in page and "Achats" in page and "Ventes" in page
    assert "604000 Ancien compte" not in page  # inactive accounts cannot be chosen

    token = csrf_token(client, url)
    bad = client.post(
        f"{url}/ventes",
        data={"ventes-csrf_token": token, "ventes-account_id": str(ids["old"])},
    )
    assert bad.status_code == 400
    assert "« Ancien compte » est inactif dans le logiciel comptable" in text_of(bad)
    late = client.post(f"{url}/ventes", data={"ventes-csrf_token": token, "ventes-due_days": "400"})
    assert "L'échéance doit être comprise entre 0 et 365 jours" in text_of(late)
    assert db.session.scalar(select(func.count()).select_from(CodingDefault)) == 0

    done = client.post(
        f"{url}/ventes",
        data={
            "ventes-csrf_token": token,
            "ventes-account_id": str(ids["sales"]),
            "ventes-tax_rate_id": str(ids["tva20"]),
            "ventes-paid": "unpaid",
            "ventes-due_days": "45",
        },
        follow_redirects=True,
    )
    assert "Le codage par défaut des ventes est enregistré." in text_of(done)
    stored = db.session.scalar(select(CodingDefault))
    assert (stored.direction, stored.account_id, stored.tax_rate_id, stored.paid, stored.due_days) == (
        Direction.SALE,
        ids["sales"],
        ids["tva20"],
        False,
        45,
    )
    # A sale without a customer rule is now 'Prêt' from the defaults alone.
    response = post(
        client,
        f"/dossiers/{dossier.id}/documents/nouvelle/vente",
        {
            "party_id": ids["client"],
            "number": "V-001",
            "issue_date": "2026-11-02",
            "amount_ht": "50,00",
            "amount_tva": "10,00",
            "amount_ttc": "60,00",
            "currency": "EUR",
        },
        follow_redirects=True,
    )
    assert "Facture V-001 ajoutée : Prêt." in text_of(response)


def test_payment_method_rules_pages(client, world):
    dossier, integration, ids = world
    base = f"/dossiers/{dossier.id}/regles/moyens-de-paiement"
    assert "Aucune règle de moyen de paiement" in text_of(client.get(base))
    form = {"payment_method_id": str(ids["card"]), "direction": "purchase", "paid": "paid"}
    saved = post(client, f"{base}/nouvelle", form, follow_redirects=True)
    assert "La règle du moyen de paiement « Carte bancaire » est enregistrée." in text_of(saved)
    twice = post(client, f"{base}/nouvelle", form)
    assert twice.status_code == 400
    assert "Une règle existe déjà pour ce moyen de paiement (achats) : modifiez-la." in text_of(twice)
    missing = post(client, f"{base}/nouvelle", {"direction": "purchase"})
    assert "Choisissez le moyen de paiement de la règle." in text_of(missing)
    assert db.session.scalar(select(func.count()).select_from(PaymentRule)) == 1

    rule = db.session.scalar(select(PaymentRule))
    assert rule.paid is True and rule.direction is Direction.PURCHASE
    listed = text_of(client.get(base))
    assert "Carte bancaire" in listed and "Payé" in listed
    gone = post(client, f"{base}/{rule.id}/supprimer", {}, follow_redirects=True)
    assert "La règle du moyen de paiement « Carte bancaire » est supprimée." in text_of(gone)
    assert db.session.scalar(select(func.count()).select_from(PaymentRule)) == 0


def test_a_document_is_coded_by_hand_on_its_page_and_the_users_choice_wins(client, world):
    dossier, integration, ids = world
    document = new_purchase(client, dossier, ids, party_id=ids["orange"])
    assert document.status is DocumentStatus.TO_REVIEW
    url = f"/dossiers/{dossier.id}/documents/{document.id}"
    page = text_of(client.get(url))
    assert "À réviser :</strong> manque compte, taux de TVA." in page
    bad = post(
        client, url, {"party_id": str(ids["orange"]), "account_id": str(ids["old"]), "due_date": "2026-10-01"}
    )
    assert bad.status_code == 400
    assert "« Ancien compte » est inactif" in text_of(bad)
    assert "L'échéance ne peut précéder la date de facture." in text_of(bad)
    done = post(
        client,
        url,
        {
            "party_id": str(ids["orange"]),
            "account_id": str(ids["energy"]),
            "tax_rate_id": str(ids["tva20"]),
            "due_date": "2026-12-31",
            "paid": "unpaid",
        },
        follow_redirects=True,
    )
    assert "Codage de la facture F-001 enregistré : Prêt." in text_of(done)
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    assert (document.account_id, document.due_date, document.status) == (
        ids["energy"],
        date(2026, 12, 31),
        DocumentStatus.READY,
    )
    # Published (or on its way), its coding no longer changes.
    document.status = DocumentStatus.PUBLISHED
    db.session.commit()
    refused = post(
        client,
        url,
        {"party_id": str(ids["orange"]), "account_id": str(ids["purchases"])},
        follow_redirects=True,
    )
    assert "La facture a le statut « Publié » : son codage ne peut plus changer." in text_of(refused)
    assert db.session.get(Document, document.id).account_id == ids["energy"]
