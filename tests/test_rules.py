"""'Règles fournisseurs' and 'Règles clients': every field, French validation, 'À revoir'."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, plain_spaces, text_of
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.extensions import db
from webapp.models import Event, ListKind, PartyKind, Rule


@pytest.fixture
def world(client, app_ctx):
    org = make_organisation()
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    items = {
        "edf": make_item(integration, ListKind.SUPPLIERS, "EDF Entreprises", vat_number="FR03552081317"),
        "orange": make_item(integration, ListKind.SUPPLIERS, "Orange Business"),
        "gone": make_item(integration, ListKind.SUPPLIERS, "Ancien Fournisseur", active=False),
        "client": make_item(integration, ListKind.CUSTOMERS, "Restaurant Le Bon Goût"),
        "energy": make_item(integration, ListKind.ACCOUNTS, "Fournitures non stockables", code="606100"),
        "office": make_item(integration, ListKind.ACCOUNTS, "Fournitures administratives", code="606400"),
        "hidden": make_item(integration, ListKind.ACCOUNTS, "Compte masqué", code="606300", visible=False),
        "archived": make_item(integration, ListKind.ACCOUNTS, "Compte archivé", code="604000", active=False),
        "tva20": make_item(integration, ListKind.TAX_RATES, "TVA 20 %", rate="20"),
        "bank": make_item(
            integration, ListKind.PAYMENT_METHODS, "Crédit Agricole - compte courant", code="BQ1"
        ),
        "shop": make_item(integration, ListKind.TRACKING_CATEGORIES, "Magasin centre-ville"),
        "reverse": make_item(
            integration,
            ListKind.ACCOUNTS,
            "TVA due intracommunautaire",
            code="445200",
            extras={"reverse_charge": True},
        ),
    }
    other = make_integration(make_dossier(make_organisation()), company_name="Autre société")
    items["foreign"] = make_item(other, ListKind.ACCOUNTS, "Compte d'un autre dossier", code="606100")
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    return dossier, integration, {k: v.id for k, v in items.items()}


def full_form(ids: dict[str, int], **overrides) -> dict:
    form = {
        "party_id": ids["edf"],
        "account_id": ids["energy"],
        "tax_rate_id": ids["tva20"],
        "payment_method_id": ids["bank"],
        "tracking_id": ids["shop"],
        "due_days": "30",
        "paid": "unpaid",
        "currency": "EUR",
        "description": "Électricité du magasin",
        "reverse_charge": "y",
        "auto_publish": "y",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def post(client, url: str, form: dict):
    return client.post(url, data={**form, "csrf_token": csrf_token(client, url)})


def test_rule_pages_explain_when_no_software_is_connected(client, app_ctx):
    org = make_organisation()
    dossier = make_dossier(org)
    make_user(org, "paul@x.test", "mot-de-passe-solide")
    login(client, "paul@x.test", "mot-de-passe-solide")
    page = text_of(client.get(f"/dossiers/{dossier.id}/regles/fournisseurs"))
    assert "Les règles s'appuient sur les listes du logiciel comptable" in page
    assert client.get(f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle").status_code == 404


def test_a_supplier_rule_with_every_field_is_created(client, world):
    dossier, integration, ids = world
    url = f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle"
    form_page = text_of(client.get(url))
    for label in (
        "Fournisseur",
        "Compte de charge",
        "Taux de TVA",
        "Moyen de paiement",
        "Date d'échéance (jours après la date de facture)",
        "Statut payé / non payé",
        "Devise",
        "Description",
        "Axe analytique",
        "Autoliquidation de la TVA",
        "Publication automatique",
    ):
        assert label in form_page, label
    assert "Compte masqué" not in form_page and "Compte archivé" not in form_page  # cannot be chosen

    response = post(client, url, full_form(ids))
    assert response.status_code == 302
    page = text_of(client.get(response.headers["Location"]))
    assert "La règle du fournisseur « EDF Entreprises » est enregistrée." in page
    assert "606100 Fournitures non stockables" in page and "OK" in page

    rule = db.session.scalar(select(Rule))
    assert (rule.party_kind, rule.party_id, rule.account_id, rule.tax_rate_id) == (
        PartyKind.SUPPLIER,
        ids["edf"],
        ids["energy"],
        ids["tva20"],
    )
    assert (rule.payment_method_id, rule.tracking_id, rule.due_days, rule.paid) == (
        ids["bank"],
        ids["shop"],
        30,
        False,
    )
    assert (rule.currency, rule.description, rule.reverse_charge, rule.auto_publish) == (
        "EUR",
        "Électricité du magasin",
        True,
        True,
    )
    assert plain_spaces(db.session.scalar(select(Event.message).where(Event.kind == "rule.created"))) == (
        "Règle fournisseur « EDF Entreprises » créée."
    )


@pytest.mark.parametrize(
    ("overrides", "field_message"),
    [
        ({"party_id": None}, "Choisissez le fournisseur de la règle."),
        ({"party_id": "gone"}, "« Ancien Fournisseur » est inactif dans le logiciel comptable"),
        ({"party_id": "client"}, "Choisissez le fournisseur dans la liste."),
        ({"account_id": "archived"}, "« Compte archivé » est inactif dans le logiciel comptable"),
        ({"account_id": "hidden"}, "Le compte 606300 est masqué des choix de codage"),
        ({"account_id": "foreign"}, "Choisissez le compte de charge dans la liste."),
        ({"account_id": "abc"}, "Choisissez le compte de charge dans la liste."),
        ({"due_days": "400"}, "L'échéance doit être comprise entre 0 et 365 jours."),
        ({"currency": "XXX"}, "Choisissez une devise de la liste."),
        ({"description": "x" * 501}, "La description ne peut dépasser 500 caractères."),
    ],
)
def test_bad_input_is_refused_in_french_and_nothing_is_stored(client, world, overrides, field_message):
    dossier, _, ids = world
    form = full_form(ids, **{k: (ids.get(v, v) if isinstance(v, str) else v) for k, v in overrides.items()})
    response = post(client, f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle", form)
    assert response.status_code == 400
    assert field_message in text_of(response)
    assert db.session.scalar(select(func.count()).select_from(Rule)) == 0


def test_a_second_rule_for_the_same_supplier_is_refused(client, world):
    dossier, _, ids = world
    url = f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle"
    assert post(client, url, full_form(ids)).status_code == 302
    again = post(client, url, full_form(ids, account_id=ids["office"]))
    assert "Une règle existe déjà pour ce fournisseur : modifiez-la." in text_of(again)
    assert db.session.scalar(select(func.count()).select_from(Rule)) == 1


def test_autoliquidation_needs_a_reverse_charge_account(client, world):
    dossier, integration, ids = world
    from webapp.models import ListItem

    db.session.get(ListItem, ids["reverse"]).active = False
    db.session.commit()
    response = post(client, f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle", full_form(ids))
    assert "Le logiciel comptable n'a pas de compte de TVA autoliquidée" in text_of(response)


def test_party_search_offers_only_active_matching_suppliers(client, world):
    dossier, _, ids = world
    url = f"/dossiers/{dossier.id}/regles/fournisseurs/tiers"
    fragment = text_of(client.get(f"{url}?q=fourn", headers={"HX-Request": "true"}))
    assert "Ancien Fournisseur" not in fragment
    assert "Aucun fournisseur actif ne correspond à « fourn »." in fragment
    found = text_of(client.get(f"{url}?q=FR0355", headers={"HX-Request": "true"}))
    assert f'value="{ids["edf"]}"' in found and "EDF Entreprises" in found and "<html" not in found
    customers = text_of(client.get(f"/dossiers/{dossier.id}/regles/clients/tiers?q=restaurant"))
    assert "Restaurant Le Bon Goût" in customers


def test_a_rule_is_edited_then_deleted(client, world):
    dossier, _, ids = world
    post(client, f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle", full_form(ids))
    rule_id = db.session.scalar(select(Rule.id))
    url = f"/dossiers/{dossier.id}/regles/fournisseurs/{rule_id}"
    page = text_of(client.get(url))
    assert "Règle du fournisseur « EDF Entreprises »" in page and 'value="30"' in page

    changed = post(
        client,
        url,
        full_form(
            ids, party_id=ids["orange"], account_id=ids["office"], due_days="", paid="", auto_publish=None
        ),
    )
    assert changed.status_code == 302
    db.session.expire_all()
    rule = db.session.get(Rule, rule_id)
    assert (rule.party_id, rule.account_id, rule.due_days, rule.paid, rule.auto_publish) == (
        ids["edf"],
        ids["office"],
        None,
        None,
        False,  # the supplier of a rule does not change
    )
    deleted = client.post(
        f"{url}/supprimer", data={"csrf_token": csrf_token(client, url)}, follow_redirects=True
    )
    assert "La règle du fournisseur « EDF Entreprises » est supprimée." in text_of(deleted)
    assert db.session.scalar(select(func.count()).select_from(Rule)) == 0
    assert client.get(url).status_code == 404


def test_a_rule_pointing_at_an_item_that_left_the_lists_is_a_revoir(client, world):
    dossier, _, ids = world
    post(client, f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle", full_form(ids))
    from webapp.models import ListItem

    db.session.get(ListItem, ids["energy"]).active = False
    db.session.get(ListItem, ids["bank"]).visible = False  # payment methods are not hidden: stays OK
    db.session.commit()
    page = text_of(client.get(f"/dossiers/{dossier.id}/regles/fournisseurs"))
    assert "À revoir" in page
    assert "Le compte « 606100 Fournitures non stockables » est inactif dans le logiciel comptable." in page
    # What it pointed to is kept: nothing is lost, the user chooses again.
    assert db.session.scalar(select(Rule.account_id)) == ids["energy"]


def test_another_dossiers_rule_answers_404(client, world, app_ctx):
    dossier, integration, ids = world
    post(client, f"/dossiers/{dossier.id}/regles/fournisseurs/nouvelle", full_form(ids))
    rule_id = db.session.scalar(select(Rule.id))
    other = make_dossier(make_organisation())
    assert client.get(f"/dossiers/{other.id}/regles/fournisseurs/{rule_id}").status_code == 404
    assert client.get(f"/dossiers/{dossier.id}/regles/clients/{rule_id}").status_code == 404
