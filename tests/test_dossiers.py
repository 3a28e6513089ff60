"""Dossiers belong to organisations: members see theirs, others get 404 everywhere; staff reach other
organisations' dossiers only through the support area (tests/test_support.py)."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_token, login, text_of
from tests.factories import make_dossier, make_integration, make_organisation, make_user
from webapp.extensions import db
from webapp.models import Dossier, Role

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


@pytest.fixture
def two_cabinets(app_ctx):
    mine = make_organisation("Cabinet Lefèvre")
    theirs = make_organisation("Cabinet Girard")
    my_dossier = make_dossier(mine, "Boulangerie Martin", "732829320")
    their_dossier = make_dossier(theirs, "Garage Girard", "552100554")
    their_integration = make_integration(their_dossier, company_name="Garage Girard SAS")
    my_integration = make_integration(my_dossier)
    make_user(mine, "claire@lefevre.test", "bon-mot-de-passe")
    make_user(theirs, "paul@girard.test", "autre-mot-de-passe")
    make_user(make_organisation("Équipe Raccord"), "support@raccord.example", "support-secret", Role.STAFF)
    return my_dossier, their_dossier, my_integration, their_integration


def dossier_urls(app, dossier_id: int, integration_id: int) -> list[tuple[str, str]]:
    """Every registered URL that takes a dossier, filled in: a new page is checked without being listed."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "dossier_id" not in rule.arguments:
            continue
        values = {
            "dossier_id": dossier_id,
            "integration_id": integration_id,
            "kind": "suppliers",
            "software": "sandbox",
            "item_id": 1,
            "slug": "fournisseurs",
            "key": "cle-de-choix-inconnue",
            "document_id": 1,
            "rule_id": 1,
            "run_id": 1,
        }
        path = rule.build({k: v for k, v in values.items() if k in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            urls.append((method, path))
    assert len(urls) >= 5
    return urls


def test_my_dossiers_lists_only_my_organisation(client, two_cabinets):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    page = text_of(client.get("/dossiers"))
    assert "Boulangerie Martin" in page
    assert "732 829 320" in page
    assert "Garage Girard" not in page


def test_another_organisations_dossier_answers_404_on_every_url(app, client, two_cabinets):
    my_dossier, their_dossier, my_integration, their_integration = two_cabinets
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    token = csrf_token(client, "/dossiers")
    for method, path in dossier_urls(app, their_dossier.id, their_integration.id):
        response = client.open(path, method=method, data={"csrf_token": token, "name": "Piraté"})
        assert response.status_code == 404, (method, path)
        assert "Page introuvable" in response.get_data(as_text=True)
    assert db.session.get(Dossier, their_dossier.id).name == "Garage Girard"


def test_a_dossier_that_does_not_exist_answers_the_same_404(client, two_cabinets):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    assert client.get("/dossiers/999999").status_code == 404


def test_another_dossiers_integration_answers_404(client, two_cabinets):
    my_dossier, _, _, their_integration = two_cabinets
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    assert client.get(f"/dossiers/{my_dossier.id}/integrations/{their_integration.id}").status_code == 404


def test_staff_reach_another_cabinets_dossier_only_through_support(client, two_cabinets):
    _, their_dossier, _, their_integration = two_cabinets
    login(client, "support@raccord.example", "support-secret")
    page = text_of(client.get("/dossiers"))
    assert "Boulangerie Martin" not in page and "Garage Girard" not in page
    token = csrf_token(client, "/dossiers")
    for method, path in dossier_urls(client.application, their_dossier.id, their_integration.id):
        if path.startswith("/support/"):
            continue
        response = client.open(path, method=method, data={"csrf_token": token, "name": "Piraté"})
        assert response.status_code == 404, (method, path)
    assert client.get(f"/support/dossiers/{their_dossier.id}").status_code == 200
    assert db.session.get(Dossier, their_dossier.id).name == "Garage Girard"


def test_search_filters_by_name_or_siren(client, app_ctx):
    org = make_organisation()
    make_dossier(org, "Boulangerie Martin", "732829320")
    make_dossier(org, "Atelier Dupont", "552100554")
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    by_name = text_of(client.get("/dossiers?q=boul"))
    assert "Boulangerie Martin" in by_name and "Atelier Dupont" not in by_name
    fragment = client.get("/dossiers?q=552 100", headers={"HX-Request": "true", "HX-Target": "dossier-list"})
    text = text_of(fragment)
    assert "Atelier Dupont" in text and "Boulangerie" not in text
    assert "<html" not in text  # a fragment, not the whole page
    assert "Aucun dossier ne correspond à « zzz »." in text_of(client.get("/dossiers?q=zzz"))


def test_dossier_settings_refuse_a_bad_siren_in_french_and_change_nothing(client, two_cabinets):
    my_dossier = two_cabinets[0]
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    url = f"/dossiers/{my_dossier.id}/parametres"
    token = csrf_token(client, url)
    for siren, message in [
        ("12345", "Le SIREN doit compter 9 chiffres."),
        ("123456789", "Ce SIREN n'est pas valide : vérifiez les chiffres saisis."),
    ]:
        response = client.post(url, data={"name": "Nouveau nom", "siren": siren, "csrf_token": token})
        assert response.status_code == 200
        assert message in text_of(response)
    response = client.post(url, data={"name": "  ", "siren": "", "csrf_token": token})
    assert "Le nom du dossier est obligatoire." in response.get_data(as_text=True)
    db.session.expire_all()
    stored = db.session.get(Dossier, my_dossier.id)
    assert (stored.name, stored.siren) == ("Boulangerie Martin", "732829320")


def test_dossier_settings_are_saved(client, two_cabinets):
    my_dossier = two_cabinets[0]
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    url = f"/dossiers/{my_dossier.id}/parametres"
    response = client.post(
        url,
        data={
            "name": "Boulangerie Martin SARL",
            "siren": "443 061 841",
            "csrf_token": csrf_token(client, url),
        },
        follow_redirects=True,
    )
    assert "Les paramètres du dossier sont enregistrés." in response.get_data(as_text=True)
    db.session.expire_all()
    stored = db.session.get(Dossier, my_dossier.id)
    assert (stored.name, stored.siren) == ("Boulangerie Martin SARL", "443061841")
