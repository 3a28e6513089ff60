"""The path to the page 'Intégration', with the exact French labels of the product."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import login, text_of
from tests.factories import make_dossier, make_integration, make_organisation, make_user
from webapp.extensions import db
from webapp.models import IntegrationStatus


@pytest.fixture
def dossier(client, app_ctx):
    org = make_organisation()
    dossier = make_dossier(org, "Boulangerie Martin")
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    return dossier


def test_dossier_home_has_parametres_du_dossier(client, dossier):
    page = text_of(client.get(f"/dossiers/{dossier.id}"))
    assert "Paramètres du dossier" in page
    assert f'href="/dossiers/{dossier.id}/parametres"' in page
    assert "Ce dossier n'est relié à aucun logiciel comptable." in page


def test_connexions_lists_the_available_software_without_gerer_when_not_connected(client, dossier):
    page = client.get(f"/dossiers/{dossier.id}/parametres/connexions").get_data(as_text=True)
    assert "Connexions" in page and "Logiciels disponibles" in page
    assert "Compta Démo" in page
    assert ">Gérer<" not in page


def test_connexions_shows_the_connected_software_with_its_status_and_gerer(client, dossier):
    integration = make_integration(dossier, company_name="Boulangerie Martin SARL")
    page = client.get(f"/dossiers/{dossier.id}/parametres/connexions").get_data(as_text=True)
    assert "Boulangerie Martin SARL" in page
    assert "Connectée" in page
    assert f'href="/dossiers/{dossier.id}/integrations/{integration.id}">Gérer</a>' in page


@pytest.mark.parametrize(
    ("status", "label"),
    [(IntegrationStatus.CONNECTED, "Connectée"), (IntegrationStatus.EXPIRED, "Expirée")],
)
def test_integration_page_shows_software_company_status_since_and_the_six_lists(
    client, dossier, status, label
):
    integration = make_integration(dossier, company_name="Boulangerie Martin SARL", status=status)
    integration.status_since = datetime(2026, 11, 23, 13, 5, tzinfo=UTC)
    db.session.commit()
    page = client.get(f"/dossiers/{dossier.id}/integrations/{integration.id}").get_data(as_text=True)
    assert "<h2>Intégration</h2>" in page
    assert "Compta Démo" in page and "Boulangerie Martin SARL" in page
    assert f'<span class="badge badge--{status.value}">{label}</span>' in page
    assert "depuis le 23/11/2026 à 14:05" in page  # Europe/Paris
    for list_label in (
        "Plan comptable",
        "Fournisseurs",
        "Clients",
        "Taux de TVA",
        "Catégories analytiques",
        "Moyens de paiement",
    ):
        assert list_label in page


def test_a_disconnected_integration_is_not_the_current_one(client, dossier):
    make_integration(dossier, status=IntegrationStatus.DISCONNECTED)
    page = client.get(f"/dossiers/{dossier.id}/parametres/connexions").get_data(as_text=True)
    assert ">Gérer<" not in page
