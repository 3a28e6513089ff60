"""A list's page: searching a big list by name, code, VAT number or SIREN, in pages of 50."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from tests.conftest import login, text_of
from tests.factories import make_dossier, make_integration, make_organisation, make_user
from webapp.extensions import db
from webapp.models import ListItem, ListKind
from webapp.models.base import utcnow


@pytest.fixture
def suppliers(client, app_ctx):
    """1 500 'Boulangerie …' suppliers, 30 'Garage …' ones (one inactive), a few to find by number."""
    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    now = utcnow()

    def row(i: int, name: str, **fields):
        return {
            "integration_id": integration.id,
            "kind": ListKind.SUPPLIERS,
            "external_id": f"s-{i}",
            "name": name,
            "active": True,
            "extras": {},
            "visible": True,
            "created_at": now,
            "updated_at": now,
            "code": None,
            "vat_number": None,
            "siren": None,
            **fields,
        }

    rows = [row(i, f"Boulangerie du Marché {i:04d}") for i in range(1500)]
    rows += [row(2000 + i, f"Garage de l'Église {i:02d}", active=i != 7) for i in range(30)]
    rows += [
        row(3000, "EDF Entreprises", code="FOUR-EDF", vat_number="FR03552081317", siren="552081317"),
        row(3001, "Orange Business", code="FOUR-ORA"),
    ]
    db.session.execute(insert(ListItem), rows)
    db.session.commit()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    return f"/dossiers/{dossier.id}/listes/suppliers"


def test_a_search_with_few_matches_counts_them_all_in_any_case(client, suppliers):
    page = text_of(client.get(f"{suppliers}?q=GARAGE"))
    assert "29 éléments · page 1 sur 1" in page  # the inactive one is not among the active
    assert "Garage de l'Église 00" in page and "Boulangerie du Marché" not in page
    assert "30 éléments" in text_of(client.get(f"{suppliers}?q=garage&statut=tous"))
    assert "1 élément · page 1 sur 1" in text_of(client.get(f"{suppliers}?q=garage&statut=inactifs"))


@pytest.mark.parametrize("query", ["four-edf", "FR03552081317", "552 081 317", "ntrepris"])
def test_a_supplier_is_found_by_code_vat_number_siren_or_part_of_its_name(client, suppliers, query):
    page = text_of(client.get(f"{suppliers}?q={query}"))
    assert "EDF Entreprises" in page and "1 élément ·" in page and "Orange" not in page


def test_a_search_matching_more_than_a_thousand_says_so_and_asks_for_a_narrower_one(client, suppliers):
    first = text_of(client.get(f"{suppliers}?q=boulangerie"))
    assert "Plus de 1 000 éléments : précisez la recherche · page 1 sur 20" in first
    assert "Boulangerie du Marché 0000" in first and "Boulangerie du Marché 0049" in first
    assert "Boulangerie du Marché 0050" not in first and "Page suivante" in first
    last = text_of(client.get(f"{suppliers}?q=boulangerie&page=20"))
    assert "page 20 sur 20" in last and "Boulangerie du Marché 0999" in last and "Page suivante" not in last
    # The whole list, without a search, is counted exactly.
    assert "1 531 éléments · page 1 sur 31" in text_of(client.get(suppliers))


def test_a_search_finding_nothing_says_so(client, suppliers):
    assert "Aucun élément ne correspond à « zzz »." in text_of(client.get(f"{suppliers}?q=zzz"))


def test_a_page_of_results_is_in_name_order(client, suppliers):
    import re

    second = client.get(f"{suppliers}?q=march&page=2").get_data(as_text=True)
    names = re.findall(r"Boulangerie du Marché (\d{4})", second)
    assert names == [f"{i:04d}" for i in range(50, 100)]
