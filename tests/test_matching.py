"""'Transférer les règles': how an old item finds its counterpart in the new software's list."""

from __future__ import annotations

import pytest

from webapp.models import ListItem, ListKind
from webapp.services.matching import account_number_key, match_item


def item(kind: ListKind, name: str, *, code=None, vat=None, siren=None, rate=None, active=True) -> ListItem:
    return ListItem(kind=kind, name=name, code=code, vat_number=vat, siren=siren, rate=rate, active=active)


SUPPLIERS = [
    item(ListKind.SUPPLIERS, "AB Builders Limited"),
    item(ListKind.SUPPLIERS, "Boulangerie Martin", vat="FR40303265045"),
    item(ListKind.SUPPLIERS, "Fournil & Co", siren="552081317"),
    item(ListKind.SUPPLIERS, "Archivé SARL", active=False),
]


@pytest.mark.parametrize(
    ("old", "expected", "how"),
    [
        (item(ListKind.SUPPLIERS, "AB Builders Ltd"), "AB Builders Limited", "par nom"),
        (
            item(ListKind.SUPPLIERS, "Autre nom", vat="FR 40 303 265 045"),
            "Boulangerie Martin",
            "par numéro de TVA",
        ),
        (item(ListKind.SUPPLIERS, "S.A.S. Boulangerie MARTIN"), "Boulangerie Martin", "par nom"),
        (item(ListKind.SUPPLIERS, "Le Fournil", vat="FR32552081317"), "Fournil & Co", "par SIREN"),
        (item(ListKind.SUPPLIERS, "Archivé"), None, "introuvable"),  # inactive items are not offered
        (item(ListKind.SUPPLIERS, "Inconnu SA"), None, "introuvable"),
    ],
)
def test_suppliers(old, expected, how):
    match = match_item(old, SUPPLIERS)
    assert (match.item.name if match.item else None) == expected
    assert match.how.startswith(how)


ACCOUNTS = [
    item(ListKind.ACCOUNTS, "Fournitures non stockables", code="606100"),
    item(ListKind.ACCOUNTS, "Achats de marchandises", code="607"),
    item(ListKind.ACCOUNTS, "Honoraires", code="6226"),
    item(ListKind.ACCOUNTS, "Honoraires juridiques", code="622600"),
    item(ListKind.ACCOUNTS, "Publicité", code="623000"),
    item(ListKind.ACCOUNTS, "Publicité", code="623100"),
    item(ListKind.ACCOUNTS, "Banque", code="512000", active=False),
]


@pytest.mark.parametrize(
    ("code", "name", "expected", "how"),
    [
        ("6061", "Énergie", "606100", "par numéro (6061 = 606100)"),
        ("606100", "Autre libellé", "606100", "par numéro"),
        ("607000", "Achats", "607", "par numéro (607000 = 607)"),
        ("6226", "Honoraires", "6226", "par numéro"),  # exact first, though 622600 pads to the same
        ("622600000", "Honoraires juridiques", "622600", "par numéro et nom"),
        ("62260", "Frais divers", None, "plusieurs comptes correspondent"),
        ("999", "Publicité", None, "plusieurs comptes s'appellent"),
        ("999", "fournitures NON stockables", "606100", "par nom"),
        ("512", "Banque", None, "aucun compte"),
    ],
)
def test_accounts(code, name, expected, how):
    match = match_item(item(ListKind.ACCOUNTS, name, code=code), ACCOUNTS)
    assert (match.item.code if match.item else None) == expected
    assert match.how.startswith(how)


def test_account_number_keys():
    assert (
        account_number_key("6061") == account_number_key("606100") == account_number_key("6061000") == "6061"
    )
    assert account_number_key("401") != account_number_key("4011")
    assert account_number_key("000") == "000"


RATES = [
    item(ListKind.TAX_RATES, "TVA 20 %", code="TVA20", rate="20"),
    item(ListKind.TAX_RATES, "Autoliquidation 20 %", code="AUTOLIQ", rate="20.0"),
    item(ListKind.TAX_RATES, "TVA 5,5 %", code="TVA55", rate="5.5"),
    item(ListKind.TAX_RATES, "TVA 10 %", code="FR_100", rate="10"),
    item(ListKind.TAX_RATES, "Taux réduit", code="R1", rate="10.00"),
]


@pytest.mark.parametrize(
    ("name", "rate", "expected", "how"),
    [
        ("TVA 5,5%", "5,5", "TVA55", "par taux"),
        ("Standard 20%", "20.00", "TVA20", "par taux"),  # the plain rate, not the reverse-charge one
        ("Autoliquidation 20%", "20", "AUTOLIQ", "par taux et nom"),
        ("Intermédiaire", "10", None, "plusieurs taux de 10"),
        ("TVA 2,1 %", "2.1", None, "aucun taux de 2.1"),
    ],
)
def test_tax_rates(name, rate, expected, how):
    match = match_item(item(ListKind.TAX_RATES, name, rate=rate), RATES)
    assert (match.item.code if match.item else None) == expected
    assert match.how.startswith(how)


def test_tracking_and_payment_methods_by_name():
    tracking = [item(ListKind.TRACKING_CATEGORIES, "Établissement : Magasin centre-ville")]
    assert (
        match_item(item(ListKind.TRACKING_CATEGORIES, "Magasin Centre-Ville"), tracking).item is tracking[0]
    )
    assert match_item(item(ListKind.TRACKING_CATEGORIES, "Traiteur"), tracking).item is None
    methods = [
        item(ListKind.PAYMENT_METHODS, "Carte bancaire"),
        item(ListKind.PAYMENT_METHODS, "Crédit Agricole"),
    ]
    assert match_item(item(ListKind.PAYMENT_METHODS, "CARTE BANCAIRE"), methods).item is methods[0]
    assert match_item(item(ListKind.PAYMENT_METHODS, "Caisse"), methods).how == "aucun élément « Caisse »"
