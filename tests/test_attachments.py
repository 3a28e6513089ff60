"""A PDF's name, whatever the user's file was called: sent to the software under a safe name (the
user's stays on display), and served inline under a name that cannot break the header, never cached."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from tests.conftest import csrf_token, login, run_worker_burst, text_of, unescaped
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from tests.test_documents import invoice
from tests.test_new_parties import PDF, new_invoice, ready  # noqa: F401 - the fixture
from tests.test_publishing import click_publish, status_of, upstream_invoices
from webapp.extensions import db
from webapp.models import Document, DocumentStatus, ListKind
from webapp.services.documents import attachment_name


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        (".", "facture.pdf"),
        ("..", "facture.pdf"),
        ("../../facture.pdf", "facture.pdf"),
        ("C:\\Users\\claire\\Facture été n°12.PDF", "Facture ete n_12.pdf"),
        ('devis "final"; x=1.pdf', "devis _final_ x_1.pdf"),
        ("relevé\r\nSet-Cookie: a=b", "releve_Set-Cookie_ a_b.pdf"),
        ("", "facture.pdf"),
        ("EDF novembre 2026.pdf", "EDF novembre 2026.pdf"),
        ("a" * 300 + ".pdf", "a" * 100 + ".pdf"),
    ],
)
def test_a_file_name_becomes_a_safe_pdf_name(name, safe):
    assert attachment_name(name) == safe


@pytest.mark.parametrize("name", ["..", ".", "sous/dossier/.."])
def test_a_pdf_named_dot_dot_is_sent_under_a_safe_name_and_the_invoice_published(job_app, live, ready, name):  # noqa: F811
    browser, dossier_id, _ = ready
    page, document_id = new_invoice(
        browser, dossier_id, party_name="Fournil Dupont SARL", party_siren="303265045", pdf=PDF, filename=name
    )
    assert "Prêt" in page
    click_publish(browser, dossier_id, document_id)
    run_worker_burst(job_app)
    document = status_of(job_app, document_id)
    assert document.status is DocumentStatus.PUBLISHED, document.failure_reason
    (invoice,) = upstream_invoices(live)
    assert [a["filename"] for a in invoice["attachments"]] == ["facture.pdf"]
    assert document.pdf_name == name  # the user's own name, as shown
    shown = unescaped(browser.get(f"/dossiers/{dossier_id}/documents/{document_id}").text)
    assert name in shown


@pytest.fixture
def stored_pdf(app_ctx, client):
    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    supplier = make_item(integration, ListKind.SUPPLIERS, "EDF Entreprises")
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    url = f"/dossiers/{dossier.id}/documents/nouvelle/achat"
    form = {
        "csrf_token": csrf_token(client, url),
        **invoice({"edf": supplier.id}),
        "pdf": (io.BytesIO(b"%PDF-1.7 test"), "facture été; filename=evil.html"),
    }
    response = client.post(url, data=form, content_type="multipart/form-data")
    assert response.status_code == 302, text_of(response)[-1500:]
    document = db.session.scalar(select(Document))
    return dossier.id, document.id


def test_a_pdf_is_served_inline_under_a_safe_name_and_never_cached(client, stored_pdf):
    dossier_id, document_id = stored_pdf
    with client.get(f"/dossiers/{dossier_id}/documents/{document_id}/pdf") as response:
        assert response.status_code == 200 and response.get_data() == b"%PDF-1.7 test"
        assert response.mimetype == "application/pdf"
        assert response.headers["Content-Disposition"] == (
            'inline; filename="facture ete_ filename_evil.html.pdf"; '
            "filename*=UTF-8''facture%20ete_%20filename_evil.html.pdf"
        )
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = text_of(client.get(f"/dossiers/{dossier_id}/documents/{document_id}"))
    assert "facture été; filename=evil.html" in page  # the name the user gave, on display
