"""What the contract tests of every vendor's connector share: list sizes, a full refresh, a coded bill."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import run_worker_burst, unescaped
from tests.http_user import Browser
from webapp.extensions import db
from webapp.models import ListItem, ListKind


def active_sizes(job_app, integration_id: int) -> dict[ListKind, int]:
    with job_app.app_context():
        return dict(
            db.session.execute(
                select(ListItem.kind, func.count())
                .where(ListItem.integration_id == integration_id, ListItem.active.is_(True))
                .group_by(ListItem.kind)
            ).all()
        )


def refresh_all(job_app, connected: tuple) -> None:
    """'Actualiser les données de l'intégration', then a worker drains the queue."""
    browser, dossier_id, integration_id = connected
    page = f"/dossiers/{dossier_id}/integrations/{integration_id}"
    browser.post_form(f"{page}/actualiser", {}, page=page, htmx=True)
    run_worker_burst(job_app)


def new_bill(
    browser: Browser, dossier_id: int, job_app, *, number: str, tax_code: str, pdf: bytes | None = None
) -> int:
    """A purchase invoice of EDF, coded by hand on its page: account 606100 and the tax `tax_code`."""
    with job_app.app_context():
        ids = {
            "edf": db.session.scalar(select(ListItem.id).where(ListItem.name == "EDF Entreprises")),
            "account": db.session.scalar(
                select(ListItem.id).where(ListItem.code == "606100", ListItem.kind == ListKind.ACCOUNTS)
            ),
            "tax": db.session.scalar(
                select(ListItem.id).where(ListItem.code == tax_code, ListItem.kind == ListKind.TAX_RATES)
            ),
        }
    url = f"/dossiers/{dossier_id}/documents/nouvelle/achat"
    form = {
        "party_id": ids["edf"],
        "number": number,
        "issue_date": "2026-11-02",
        "amount_ht": "100,00",
        "amount_tva": "20,00",
        "amount_ttc": "120,00",
        "currency": "EUR",
    }
    files = {"pdf": (f"{number}.pdf", pdf, "application/pdf")} if pdf else None
    response = browser.post_form(url, form, page=url, files=files)
    document_id = int(response.text.split('id="document-')[1].split('"')[0])
    show = f"/dossiers/{dossier_id}/documents/{document_id}"
    coded = browser.post_form(
        show, {"party_id": ids["edf"], "account_id": ids["account"], "tax_rate_id": ids["tax"]}, page=show
    )
    assert "enregistré : Prêt" in unescaped(coded.text)
    return document_id
