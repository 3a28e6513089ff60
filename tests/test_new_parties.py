"""A supplier not in the list: matched, looked for upstream, created once; PDFs and 429 at publication."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from tests.conftest import plain_spaces, run_worker_burst, unescaped
from tests.http_user import COMPANY, Browser, controls_api
from tests.test_publishing import click_publish, status_of, upstream_invoices
from webapp.extensions import db
from webapp.models import Document, DocumentStatus, Dossier, ListItem, ListKind
from webapp.services.parties import PartyIdentity, best_match, normalise_name, siren_from_vat, vat_error

# --- matching, without the database ---------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("AB Builders Ltd", "AB Builders Limited"),
        ("S.A.R.L. Boulangerie Martin", "Boulangerie  Martin SARL"),
        ("Électricité de France", "ELECTRICITE DE FRANCE SA"),
        ("L'Atelier du Pain", "l’atelier du pain"),
        ("Martin & Fils", "Martin et fils SAS"),
        ("Société Générale", "Generale"),
    ],
)
def test_names_that_are_the_same_company(a, b):
    assert normalise_name(a) == normalise_name(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Martin Boulangerie", "Boulangerie Martin SAS"), ("AB Builders", "AB Build"), ("EDF", "GDF")],
)
def test_names_that_are_not(a, b):
    assert normalise_name(a) != normalise_name(b)


def test_vat_numbers_are_checked_and_carry_the_siren():
    assert vat_error("FR40 303 265 045") is None  # spaces allowed; key 40 matches SIREN 303265045
    assert vat_error("fr40303265045") is None
    assert "clé" in vat_error("FR41303265045")
    assert "SIREN" in vat_error("FR40303265046")
    assert "code du pays" in vat_error("303265045")
    assert vat_error("DE123456789") is None
    assert siren_from_vat("FR 40 303265045") == "303265045" and siren_from_vat("DE123456789") is None


class Candidate:
    def __init__(self, name, vat_number=None, siren=None):
        self.name, self.vat_number, self.siren = name, vat_number, siren


def test_vat_number_then_siren_then_name():
    by_name = Candidate("AB Builders Limited")
    by_siren = Candidate("Autre nom", siren="303265045")
    by_vat = Candidate("Encore un autre", vat_number="FR40303265045")
    candidates = [by_name, by_siren, by_vat]
    assert best_match(PartyIdentity("AB Builders Ltd", "FR40303265045"), candidates) is by_vat
    assert best_match(PartyIdentity("AB Builders Ltd", siren="303 265 045"), [by_name, by_siren]) is by_siren
    assert best_match(PartyIdentity("AB Builders Ltd"), candidates) is by_name
    assert best_match(PartyIdentity("Inconnu SARL"), candidates) is None


# --- with the sandbox over HTTP and real workers ----------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def ready(job_app, connected_dossier):
    """Default coding for purchases, so an invoice of a new supplier is 'Prêt' at once."""
    browser, dossier_id, integration_id = connected_dossier
    url = f"/dossiers/{dossier_id}/parametres/codage"
    with job_app.app_context():
        ids = {
            external_id: db.session.scalar(select(ListItem.id).where(ListItem.external_id == external_id))
            for external_id in ("acc-606400", "tax-TVA20")
        }
    page = browser.get(url).text
    token = page.split('name="achats-csrf_token" type="hidden" value="')[1].split('"')[0]
    saved = browser.http.post(
        browser.base + f"{url}/achats",
        data={
            "achats-csrf_token": token,
            "achats-account_id": ids["acc-606400"],
            "achats-tax_rate_id": ids["tax-TVA20"],
        },
        timeout=30,
    )
    assert "Le codage par défaut des achats est enregistré." in unescaped(saved.text)
    return browser, dossier_id, integration_id


def new_invoice(
    browser: Browser,
    dossier_id: int,
    *,
    number="N-001",
    pdf: bytes | None = None,
    filename: str = "facture-n-001.pdf",
    **party,
):
    url = f"/dossiers/{dossier_id}/documents/nouvelle/achat"
    form = {
        "number": number,
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
        **party,
    }
    files = {"pdf": (filename, pdf, "application/pdf")} if pdf else None
    response = browser.post_form(url, form, page=url, files=files)
    assert response.status_code == 200, unescaped(response.text)[-2000:]
    with_id = response.text.split('id="document-')
    return unescaped(response.text), int(with_id[1].split('"')[0])


def upstream_suppliers(job_app, name_part: str) -> list[dict]:
    """The sandbox company's suppliers whose name contains `name_part`, as the software holds them."""
    from sandbox.models import SandboxItem

    with job_app.app_context():
        rows = db.session.scalars(
            select(SandboxItem).where(
                SandboxItem.company_id == COMPANY,
                SandboxItem.kind == "suppliers",
                SandboxItem.name.contains(name_part),
            )
        )
        return [{"id": r.external_id, "name": r.name, "siren": r.siren} for r in rows]


def sandbox_count(job_app, kind: str, name: str) -> int:
    from sandbox.models import SandboxItem

    with job_app.app_context():
        return db.session.scalar(
            select(func.count()).where(SandboxItem.kind == kind, SandboxItem.name == name)
        )


def test_a_new_supplier_matching_the_list_is_that_supplier(job_app, live, ready):
    browser, dossier_id, _ = ready
    with job_app.app_context():
        edf = db.session.scalar(select(ListItem).where(ListItem.external_id == "sup-000001"))
        vat, edf_id = edf.vat_number, edf.id
    page, document_id = new_invoice(
        browser, dossier_id, party_name="E.D.F. entreprises SA", party_vat_number=vat
    )
    assert "Facture N-001 ajoutée : Prêt." in page and "(nouveau)" not in page
    assert status_of(job_app, document_id).party_id == edf_id


def test_bad_identifiers_are_refused_in_french_and_nothing_is_stored(job_app, live, ready):
    browser, dossier_id, _ = ready
    url = f"/dossiers/{dossier_id}/documents/nouvelle/achat"
    form = {
        "number": "N-BAD",
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
        "party_name": "Nouvelle Société",
        "party_vat_number": "FR41303265045",
        "party_siren": "123456789",
    }
    response = browser.post_form(url, form, page=url)
    page = unescaped(response.text)
    assert response.status_code == 400
    assert "La clé de ce numéro de TVA ne correspond pas au SIREN" in page
    assert "Ce SIREN n'est pas valide" in page
    missing = browser.post_form(
        url, {**form, "party_name": "", "party_vat_number": "", "party_siren": ""}, page=url
    )
    assert "Choisissez le fournisseur dans la liste." in unescaped(missing.text)
    with job_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Document)) == 0


def test_a_supplier_absent_everywhere_is_created_once_with_the_invoice_and_its_pdf(job_app, live, ready):
    browser, dossier_id, integration_id = ready
    page, document_id = new_invoice(
        browser, dossier_id, party_name="Fournil Dupont SARL", party_siren="303265045", pdf=PDF
    )
    assert "Prêt" in page and "(nouveau)" in page
    assert "il sera cherché dans le logiciel comptable à la publication" in page
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED, document.failure_reason
    created = upstream_suppliers(job_app, "Fournil Dupont")
    assert [(s["name"], s["siren"]) for s in created] == [("Fournil Dupont SARL", "303265045")]
    (invoice,) = upstream_invoices(live)
    assert invoice["payload"]["contact_id"] == created[0]["id"]
    assert invoice["attachments"] == [
        {
            "filename": "facture-n-001.pdf",
            "size": len(PDF),
            "sha256": hashlib.sha256(PDF).hexdigest(),
            "content_type": "application/pdf",
        }
    ]
    with job_app.app_context():  # the new supplier is in the dossier's list too
        item = db.session.get(ListItem, document.party_id)
        assert (item.kind, item.external_id, item.integration_id) == (
            ListKind.SUPPLIERS,
            created[0]["id"],
            integration_id,
        )

    # A re-run (the worker killed after sending, say): one supplier, one invoice, one attachment.
    with job_app.app_context():
        from webapp.services.publishing import publish

        stored = db.session.get(Document, document_id)
        stored.status, stored.party_id = DocumentStatus.READY, None
        db.session.commit()
        publish(document_id)
    assert sandbox_count(job_app, "suppliers", "Fournil Dupont SARL") == 1
    (invoice,) = upstream_invoices(live)
    assert len(invoice["attachments"]) == 1
    # A second invoice of the same supplier, typed another way, finds it in the list.
    _, second = new_invoice(browser, dossier_id, number="N-002", party_name="FOURNIL DUPONT")
    assert status_of(job_app, second).party_id == document.party_id


def test_a_supplier_missing_from_the_list_but_present_upstream_is_used_not_duplicated(job_app, live, ready):
    browser, dossier_id, _ = ready
    controls_api.post(
        f"{live.url}/sandbox/controls/api/companies/{COMPANY}/suppliers",
        json={"name": "AB Builders Limited", "vat_number": "GB123456789"},
        timeout=10,
    ).raise_for_status()
    _, document_id = new_invoice(browser, dossier_id, party_name="AB Builders Ltd")
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    assert status_of(job_app, document_id).status is DocumentStatus.PUBLISHED
    assert sandbox_count(job_app, "suppliers", "AB Builders Ltd") == 0
    assert sandbox_count(job_app, "suppliers", "AB Builders Limited") == 1
    (invoice,) = upstream_invoices(live)
    assert invoice["payload"]["contact_id"] == upstream_suppliers(job_app, "AB Builders")[0]["id"]


def test_with_the_warning_setting_the_invoice_waits_until_the_user_agrees(job_app, live, ready):
    browser, dossier_id, _ = ready
    with job_app.app_context():
        db.session.get(Dossier, dossier_id).warn_before_creating_supplier = True
        db.session.commit()
    _, document_id = new_invoice(browser, dossier_id, party_name="Nouvelle Minoterie")
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.TO_REVIEW
    assert plain_spaces(document.hold_reason).startswith(
        "Fournisseur absent de Compta Démo : « Nouvelle Minoterie » sera créé"
    )
    assert upstream_invoices(live) == [] and sandbox_count(job_app, "suppliers", "Nouvelle Minoterie") == 0
    listed = unescaped(browser.get(f"/dossiers/{dossier_id}/documents?statut=a-reviser").text)
    assert "M'avertir avant de créer un fournisseur" in listed

    url = f"/dossiers/{dossier_id}/documents/{document_id}"
    assert "Créer le fournisseur et publier" in browser.get(url).text
    done = browser.post_form(f"{url}/creer-le-tiers", {}, page=url)
    assert "« Nouvelle Minoterie » sera créé dans le logiciel comptable" in unescaped(done.text)
    run_worker_burst(job_app)
    assert status_of(job_app, document_id).status is DocumentStatus.PUBLISHED
    assert sandbox_count(job_app, "suppliers", "Nouvelle Minoterie") == 1


def test_rate_limited_during_publication_waits_and_publishes_once(job_app, live, ready):
    browser, dossier_id, integration_id = ready
    _, document_id = new_invoice(browser, dossier_id, party_name="Fournil Dupont", pdf=PDF)
    faults = f"{live.url}/sandbox/controls/api/faults"
    # Every call of the publication meets a 429 first: the search, the creation, the invoice, the PDF.
    controls_api.post(faults, json={"count": 3, "status": 429, "retry_after": 1}, timeout=10)
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED, document.failure_reason
    (invoice,) = upstream_invoices(live)
    assert len(invoice["attachments"]) == 1
    page = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{integration_id}").text)
    assert "Connectée" in page  # a 429 never reads as an expiry
