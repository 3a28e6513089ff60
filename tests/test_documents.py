"""'Documents': checked invoice creation, coding from the rules, statuses and the list."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, text_of
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.extensions import db
from webapp.models import Document, DocumentStatus, ListKind, PartyKind, Rule
from webapp.services.documents import parse_amount

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


@pytest.fixture
def world(client, app_ctx):
    org = make_organisation()
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    ids = {
        "edf": make_item(integration, ListKind.SUPPLIERS, "EDF Entreprises").id,
        "orange": make_item(integration, ListKind.SUPPLIERS, "Orange Business").id,
        "client": make_item(integration, ListKind.CUSTOMERS, "Restaurant Le Bon Goût").id,
        "energy": make_item(integration, ListKind.ACCOUNTS, "Fournitures non stockables", code="606100").id,
        "tva20": make_item(integration, ListKind.TAX_RATES, "TVA 20 %", rate="20").id,
        "bank": make_item(integration, ListKind.PAYMENT_METHODS, "Crédit Agricole", code="BQ1").id,
    }
    db.session.add(
        Rule(
            dossier_id=dossier.id,
            integration_id=integration.id,
            party_kind=PartyKind.SUPPLIER,
            party_id=ids["edf"],
            account_id=ids["energy"],
            tax_rate_id=ids["tva20"],
            payment_method_id=ids["bank"],
            due_days=30,
            paid=False,
            description="Électricité",
        )
    )
    db.session.commit()
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    return dossier, ids


def invoice(ids, **overrides):
    form = {
        "party_id": ids["edf"],
        "number": "F-2026-001",
        "issue_date": "2026-11-02",
        "amount_ht": "1 000,00",
        "amount_tva": "200,00",
        "amount_ttc": "1 200,00",
        "currency": "EUR",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def post(client, url, form, **kwargs):
    return client.post(url, data={**form, "csrf_token": csrf_token(client, url)}, **kwargs)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1 234,56", Decimal("1234.56")),
        ("1234.56", Decimal("1234.56")),
        ("1.234,56 €", Decimal("1234.56")),
        ("12", Decimal("12.00")),
        ("1,234", None),
        ("10,000.00", Decimal("10000.00")),  # English grouping: never read as 10,00
        ("1,234.56", Decimal("1234.56")),
        ("10.000,00", Decimal("10000.00")),
        ("1.000.000,00", Decimal("1000000.00")),
        ("1.2345,00", None),  # a group of four is not thousands: ambiguous, refused
        ("1,23,456.00", None),
        ("１００", None),  # digits of another script
        ("abc", None),
        ("", None),
    ],
)
def test_amounts_are_read_the_french_way(raw, value):
    assert parse_amount(raw) == value


def test_an_invoice_is_coded_by_its_suppliers_rule_and_ready(client, world):
    dossier, ids = world
    url = f"/dossiers/{dossier.id}/documents/nouvelle/achat"
    response = post(client, url, invoice(ids), follow_redirects=True)
    page = text_of(response)
    assert "Facture F-2026-001 ajoutée : Prêt." in page
    # Babel's French: a narrow no-break space between thousands, a no-break space before €.
    assert "1 000,00 €" in page and "1 200,00 €" in page and "02/11/2026" in page
    document = db.session.scalar(select(Document))
    assert document.status is DocumentStatus.READY
    assert (document.account_id, document.tax_rate_id, document.payment_method_id) == (
        ids["energy"],
        ids["tva20"],
        ids["bank"],
    )
    assert (document.due_date, document.paid, document.description) == (
        date(2026, 12, 2),
        False,
        "Électricité",
    )
    assert (document.amount_ht, document.amount_tva, document.amount_ttc) == (
        Decimal("1000.00"),
        Decimal("200.00"),
        Decimal("1200.00"),
    )


def test_an_invoice_without_a_rule_waits_for_review(client, world):
    dossier, ids = world
    response = post(
        client,
        f"/dossiers/{dossier.id}/documents/nouvelle/achat",
        invoice(ids, party_id=ids["orange"]),
        follow_redirects=True,
    )
    assert "Facture F-2026-001 ajoutée : À réviser (manque : compte, taux de TVA)." in text_of(response)
    listed = text_of(client.get(f"/dossiers/{dossier.id}/documents?statut=a-reviser"))
    assert "Orange Business" in listed
    assert "Orange Business" not in text_of(client.get(f"/dossiers/{dossier.id}/documents?statut=pret"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"amount_ttc": "1 200,01"},
            "Le montant TTC doit être la somme du HT et de la TVA (1 200,00 et non 1 200,01).",
        ),
        ({"amount_ht": "mille"}, "Saisissez le montant hors taxes en euros et centimes"),
        ({"amount_tva": "200,005"}, "Saisissez le montant de TVA en euros et centimes"),
        ({"issue_date": "1999-12-31"}, "La date de facture doit être comprise entre 2000 et l'an prochain."),
        ({"issue_date": ""}, "La date de facture est obligatoire (jj/mm/aaaa)."),
        ({"number": " "}, "Le numéro de facture est obligatoire."),
        ({"party_id": None}, "Choisissez le fournisseur dans la liste."),
        ({"party_id": "client"}, "Choisissez le fournisseur dans la liste."),
    ],
)
def test_bad_invoices_are_refused_in_french_and_nothing_is_stored(client, world, overrides, message):
    dossier, ids = world
    form = invoice(ids, **{k: ids.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()})
    response = post(client, f"/dossiers/{dossier.id}/documents/nouvelle/achat", form)
    assert response.status_code == 400
    assert message in text_of(response)
    assert db.session.scalar(select(func.count()).select_from(Document)) == 0


def test_only_a_pdf_of_sane_size_is_attached(client, world):
    import io

    dossier, ids = world
    url = f"/dossiers/{dossier.id}/documents/nouvelle/achat"
    refused = post(
        client,
        url,
        {**invoice(ids), "pdf": (io.BytesIO(b"MZ not a pdf"), "facture.pdf")},
        content_type="multipart/form-data",
    )
    assert "Le fichier joint doit être un PDF." in text_of(refused)
    accepted = post(
        client,
        url,
        {**invoice(ids), "pdf": (io.BytesIO(b"%PDF-1.7 test"), "edf-novembre.pdf")},
        content_type="multipart/form-data",
    )
    assert accepted.status_code == 302
    document = db.session.scalar(select(Document))
    with client.get(f"/dossiers/{dossier.id}/documents/{document.id}/pdf") as pdf:
        assert pdf.mimetype == "application/pdf" and pdf.get_data() == b"%PDF-1.7 test"
    other = make_dossier(make_organisation())
    assert client.get(f"/dossiers/{other.id}/documents/{document.id}/pdf").status_code == 404


def test_appliquer_a_toutes_les_factures_recodes_the_waiting_ones_only(client, world):
    dossier, ids = world
    url = f"/dossiers/{dossier.id}/documents/nouvelle/achat"
    post(client, url, invoice(ids, number="F-1"))
    post(client, url, invoice(ids, number="F-2"))
    published = db.session.scalar(select(Document).where(Document.number == "F-2"))
    published.status = DocumentStatus.PUBLISHED
    db.session.commit()
    rule = db.session.scalar(select(Rule))
    from webapp.models import Integration, ListItem

    integration = db.session.get(Integration, rule.integration_id)
    office = make_item(integration, ListKind.ACCOUNTS, "Fournitures administratives", code="606400")
    rule_url = f"/dossiers/{dossier.id}/regles/fournisseurs/{rule.id}"
    edited = client.post(
        rule_url,
        data={
            "account_id": office.id,
            "tax_rate_id": ids["tva20"],
            "currency": "EUR",
            "paid": "",
            "csrf_token": csrf_token(client, rule_url),
        },
    )
    assert edited.status_code == 302, text_of(edited)
    response = client.post(
        f"{rule_url}/appliquer", data={"csrf_token": csrf_token(client, rule_url)}, follow_redirects=True
    )
    assert "Règle appliquée à 1 facture en attente de « EDF Entreprises »." in text_of(response)
    db.session.expire_all()
    waiting = db.session.scalar(select(Document).where(Document.number == "F-1"))
    done = db.session.scalar(select(Document).where(Document.number == "F-2"))
    assert waiting.account_id == office.id and waiting.status is DocumentStatus.READY
    assert done.account_id == ids["energy"]  # a published invoice is never recoded
    assert db.session.get(ListItem, office.id).code == "606400"


def test_documents_come_in_pages_of_fifty_newest_first(client, app_ctx):
    from datetime import timedelta

    from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
    from webapp.models import Direction, Document, DocumentStatus, ListKind
    from webapp.models.base import utcnow

    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    supplier = make_item(integration, ListKind.SUPPLIERS, "EDF")
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    now = utcnow()
    for i in range(120):
        db.session.add(
            Document(
                dossier_id=dossier.id,
                integration_id=integration.id,
                direction=Direction.PURCHASE,
                party_id=supplier.id,
                number=f"F-{i:03d}",
                issue_date=now.date(),
                amount_ht=Decimal("10.00"),
                amount_tva=Decimal("2.00"),
                amount_ttc=Decimal("12.00"),
                status=DocumentStatus.FAILED if i % 2 else DocumentStatus.READY,
                created_at=now - timedelta(minutes=i),
            )
        )
    db.session.commit()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    base = f"/dossiers/{dossier.id}/documents"

    first = text_of(client.get(base))
    assert "120 documents · page 1 sur 3" in first and "Page suivante" in first
    assert "Page précédente" not in first
    assert "F-000" in first and "F-049" in first and "F-050" not in first

    last = text_of(client.get(f"{base}?page=3"))
    assert "page 3 sur 3" in last and "F-119" in last and "F-069" not in last and "Page suivante" not in last
    # A page beyond the last (or not a number) shows the last (or the first) instead of failing.
    assert "page 3 sur 3" in text_of(client.get(f"{base}?page=99999999999999999999"))
    assert "page 1 sur 3" in text_of(client.get(f"{base}?page=deux"))

    failed = client.get(f"{base}?statut=echec&page=2")
    assert "60 documents · page 2 sur 2" in text_of(failed)
    assert f'href="{base}?statut=echec&amp;page=1"' in failed.get_data(as_text=True)


def test_the_rows_links_are_the_routes_own_urls(client, world, app):
    """The rows build their links from one prefix (three url_for calls fewer a row): each must still
    be the URL of its route, on the page and in the row fragment htmx swaps in."""
    import re

    from flask import url_for

    dossier, ids = world
    post(client, f"/dossiers/{dossier.id}/documents/nouvelle/achat", invoice(ids))
    document = db.session.scalar(select(Document))
    document.pdf_name, document.pdf_data = "facture.pdf", b"%PDF-1.4 facture"
    db.session.commit()
    with app.test_request_context():
        wanted = {
            url_for(endpoint, dossier_id=dossier.id, document_id=document.id)
            for endpoint in ("documents.show", "documents.pdf", "documents.publish_one")
        }
        polled = url_for("documents.row", dossier_id=dossier.id, document_id=document.id, suivi=1)

    def links(html: str) -> set[str]:
        row = re.search(rf'<tr id="document-{document.id}".*?</tr>', html, re.S).group(0)
        return set(re.findall(r'(?:href|hx-post|hx-get)="([^"#]+)', row))

    page = client.get(f"/dossiers/{dossier.id}/documents").get_data(as_text=True)
    assert links(page) == wanted
    fragment = client.get(f"/dossiers/{dossier.id}/documents/{document.id}/ligne").get_data(as_text=True)
    assert links(fragment) == wanted
    shown, pdf = (client.get(url) for url in sorted(wanted) if not url.endswith("/publier"))
    assert shown.status_code == 200 and "F-2026-001" in text_of(shown)
    assert pdf.status_code == 200 and pdf.data == b"%PDF-1.4 facture"

    document.status = DocumentStatus.IN_PROGRESS
    db.session.commit()
    page = client.get(f"/dossiers/{dossier.id}/documents").get_data(as_text=True)
    assert polled in links(page)
