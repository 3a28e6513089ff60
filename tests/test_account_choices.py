"""'Compte de charge' offers first the accounts a purchase goes to (the supplier's usual ones, then
class 6), 'Compte de produit' class 7 first; every other account stays under « Autres comptes »."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from tests.conftest import login
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.extensions import db
from webapp.models import Direction, Document, DocumentStatus, ListKind, PartyKind, Rule


@pytest.fixture
def world(client, app_ctx):
    org = make_organisation()
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    accounts = {
        code: make_item(integration, ListKind.ACCOUNTS, name, code=code).id
        for code, name in (
            ("401000", "Fournisseurs"),
            ("445660", "TVA déductible"),
            ("606100", "Fournitures non stockables"),
            ("606400", "Fournitures administratives"),
            ("615000", "Entretien et réparations"),
            ("706000", "Prestations de services"),
            ("707000", "Ventes de marchandises"),
        )
    }
    edf = make_item(integration, ListKind.SUPPLIERS, "EDF Entreprises")
    orange = make_item(integration, ListKind.SUPPLIERS, "Orange Business")
    client_item = make_item(integration, ListKind.CUSTOMERS, "Restaurant Le Bon Goût")
    # EDF's rule codes to 615000; its previous invoices went to 606400 (twice) and, once, to 445660.
    rule = Rule(
        dossier_id=dossier.id,
        integration_id=integration.id,
        party_kind=PartyKind.SUPPLIER,
        party_id=edf.id,
        account_id=accounts["615000"],
    )
    db.session.add(rule)
    documents = []
    for number, account in (("F-1", "606400"), ("F-2", "445660"), ("F-3", "606400"), ("F-4", None)):
        document = Document(
            dossier_id=dossier.id,
            integration_id=integration.id,
            direction=Direction.PURCHASE,
            party_id=edf.id,
            account_id=accounts[account] if account else None,
            number=number,
            issue_date=date(2026, 11, 3),
            amount_ht=Decimal("10.00"),
            amount_tva=Decimal("2.00"),
            amount_ttc=Decimal("12.00"),
            status=DocumentStatus.TO_REVIEW,
        )
        db.session.add(document)
        documents.append(document)
    db.session.commit()
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    return {
        "dossier": dossier.id,
        "rule": rule.id,
        "document": documents[-1].id,
        "orange": orange.id,
        "client": client_item.id,
    }


class AccountSelect(HTMLParser):
    """The account select as the user sees it: (group label, account codes) in order, and its label."""

    def __init__(self):
        super().__init__()
        self.groups: list[tuple[str | None, list[str]]] = []
        self.label = ""
        self._in_select = self._in_option = self._in_label = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select" and attrs.get("id") == "account_id":
            self._in_select = True
        elif tag == "label" and attrs.get("for") == "account_id":
            self._in_label = True
        elif self._in_select and tag == "optgroup":
            self.groups.append((attrs["label"], []))
        elif self._in_select and tag == "option":
            self._in_option = True
            if not self.groups or self.groups[-1][0] is None and self.groups[-1][1]:
                self.groups.append((None, []))
            self.groups[-1][1].append("")

    def handle_endtag(self, tag):
        if tag == "select":
            self._in_select = False
        elif tag == "option":
            self._in_option = False
        elif tag == "label":
            self._in_label = False
        elif tag == "optgroup":
            self.groups.append((None, []))

    def handle_data(self, data):
        if self._in_option:
            self.groups[-1][1][-1] += data
        elif self._in_label:
            self.label += data


def read_select(response) -> AccountSelect:
    assert response.status_code == 200
    parser = AccountSelect()
    parser.feed(response.text)
    parser.groups = [(label, [text.split()[0] for text in codes]) for label, codes in parser.groups if codes]
    return parser


def account_groups(response) -> list[tuple[str | None, list[str]]]:
    return read_select(response).groups


def label_of(response) -> str:
    return read_select(response).label.strip()


def test_a_suppliers_rule_offers_its_usual_accounts_then_class_6_then_the_others(client, world):
    response = client.get(f"/dossiers/{world['dossier']}/regles/fournisseurs/{world['rule']}")
    assert label_of(response) == "Compte de charge"
    assert account_groups(response) == [
        (None, ["—"]),
        ("Comptes habituels de ce fournisseur", ["615000", "606400", "445660"]),
        ("Comptes de charge (classe 6)", ["606100"]),
        ("Autres comptes", ["401000", "706000", "707000"]),
    ]


def test_a_new_supplier_rule_offers_class_6_first(client, world):
    response = client.get(f"/dossiers/{world['dossier']}/regles/fournisseurs/nouvelle")
    assert account_groups(response) == [
        (None, ["—"]),
        ("Comptes de charge (classe 6)", ["606100", "606400", "615000"]),
        ("Autres comptes", ["401000", "445660", "706000", "707000"]),
    ]


def test_a_customer_rule_offers_class_7_first(client, world):
    response = client.get(f"/dossiers/{world['dossier']}/regles/clients/nouvelle")
    assert label_of(response) == "Compte de produit"
    assert account_groups(response) == [
        (None, ["—"]),
        ("Comptes de produit (classe 7)", ["706000", "707000"]),
        ("Autres comptes", ["401000", "445660", "606100", "606400", "615000"]),
    ]


def test_an_invoice_offers_its_suppliers_usual_accounts_first(client, world):
    response = client.get(f"/dossiers/{world['dossier']}/documents/{world['document']}")
    assert label_of(response) == "Compte de charge"
    assert account_groups(response) == [
        (None, ["—"]),
        ("Comptes habituels de ce fournisseur", ["615000", "606400", "445660"]),
        ("Comptes de charge (classe 6)", ["606100"]),
        ("Autres comptes", ["401000", "706000", "707000"]),
    ]
