"""After 'Changer de logiciel', 'Transférer les règles' carries the waiting documents (recoded on the new
lists, never published by the move), the payment-method rules and the 'Codage par défaut'; the
documents already published stay readable with the software they were published to."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.conftest import plain_spaces, run_worker_burst, text_of, unescaped
from tests.test_publishing import click_publish, new_invoice, upstream_invoices
from tests.test_switch import switch
from tests.test_transfer import old_item, to_xero
from webapp.extensions import db
from webapp.models import (
    CodingDefault,
    Direction,
    Document,
    DocumentStatus,
    Integration,
    JobRun,
    ListItem,
    ListKind,
    PaymentRule,
    Rule,
    RuleTransfer,
)

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")


def add_document(integration_id: int, dossier_id: int, number: str, status: DocumentStatus, **fields) -> int:
    document = Document(
        dossier_id=dossier_id,
        integration_id=integration_id,
        direction=fields.pop("direction", Direction.PURCHASE),
        number=number,
        issue_date=date(2026, 11, 2),
        amount_ht=Decimal("100.00"),
        amount_tva=Decimal("20.00"),
        amount_ttc=Decimal("120.00"),
        status=status,
        **fields,
    )
    db.session.add(document)
    db.session.commit()
    return document.id


def item_id(integration_id: int, external_id: str) -> int:
    return db.session.scalar(
        select(ListItem.id).where(
            ListItem.integration_id == integration_id, ListItem.external_id == external_id
        )
    )


def new_item(integration_id: int, kind: ListKind, **where) -> ListItem:
    query = select(ListItem).where(ListItem.integration_id == integration_id, ListItem.kind == kind)
    for name, value in where.items():
        query = query.where(getattr(ListItem, name) == value)
    return db.session.scalars(query).one()


def run_transfer(job_app, browser, dossier_id: int, new_id: int, answers: dict | None = None) -> str:
    """'Transférer les règles', the review answered ('Ignorer' for what `answers` leaves out), the job
    run: the report as the user reads it."""
    url = f"/dossiers/{dossier_id}/integrations/{new_id}"
    started = browser.post_form(f"{url}/transfert", {}, page=url)
    if "Éléments à placer" in unescaped(started.text):
        started = browser.post_form(started.url, answers or {}, page=started.url)
    assert "Transfert en cours" in unescaped(started.text), unescaped(started.text)[:2000]
    run_worker_burst(job_app)
    return unescaped(browser.get(started.url).text)


def documents_state(job_app) -> list[tuple]:
    """Every document, rule, payment rule and default as stored: what a second transfer must not change."""
    with job_app.app_context():
        rows = []
        for model in (Document, Rule, PaymentRule, CodingDefault):
            table = model.__table__
            columns = [c for c in table.columns if c.name not in ("pdf_data",)]
            rows += [(table.name, *row) for row in db.session.execute(select(*columns).order_by(table.c.id))]
        return rows


def test_waiting_documents_move_recoded_and_the_published_stay_under_compta_demo(
    job_app, live, dossier_with_rule
):
    browser, dossier_id, old_id, ids = dossier_with_rule
    published_id = new_invoice(browser, dossier_id, ids, "F-PUB")
    click_publish(browser, dossier_id, published_id)
    run_worker_burst(job_app)
    ready_id = new_invoice(browser, dossier_id, ids, "F-PRET")
    with job_app.app_context():
        published = db.session.get(Document, published_id)
        assert published.status is DocumentStatus.PUBLISHED and published.upstream_id
        upstream_ref = published.upstream_id
        gone_account = old_item(old_id, ListKind.ACCOUNTS, "Compte disparu", "699999")
        gone_axis = old_item(old_id, ListKind.TRACKING_CATEGORIES, "Axe disparu")
        phantom = old_item(old_id, ListKind.SUPPLIERS, "Fournisseur Fantôme")
        failed_id = add_document(
            old_id,
            dossier_id,
            "F-ECHEC",
            DocumentStatus.FAILED,
            party_id=ids["edf"],
            account_id=gone_account,
            tax_rate_id=ids["tva20"],
            tracking_id=gone_axis,
            failure_reason="Intégration expirée",
        )
        phantom_id = add_document(
            old_id,
            dossier_id,
            "F-FANTOME",
            DocumentStatus.TO_REVIEW,
            party_id=phantom,
            account_id=ids["energy"],
            tax_rate_id=ids["tva20"],
        )
        # From now on the supplier's rule publishes by itself: the move must not.
        db.session.scalars(select(Rule)).one().auto_publish = True
        db.session.commit()
    sent_before = upstream_invoices(live)
    assert len(sent_before) == 1

    said = unescaped(switch(browser, dossier_id, old_id, "xero").text)
    assert "Les 3 factures en attente suivront avec « Transférer les règles »." in said
    with job_app.app_context():
        new_id = db.session.scalar(select(Integration.id).where(Integration.software == "xero"))
    run_worker_burst(job_app)  # the new lists load
    with job_app.app_context():  # written on the old integration after the switch: carried all the same
        late_id = add_document(
            old_id,
            dossier_id,
            "F-APRES",
            DocumentStatus.READY,
            party_id=ids["edf"],
            account_id=ids["energy"],
            tax_rate_id=ids["tva20"],
        )

    before = unescaped(browser.get(f"/dossiers/{dossier_id}/documents").text)
    assert "4 factures en attente sont encore codées sur les listes du logiciel précédent." in before
    assert "« Transférer les règles » les reprend dans Xero" in before
    assert "Publié dans Compta Démo" in before
    setting = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{new_id}").text)
    assert "Règles à transférer (1)" in setting
    assert "Il reprend aussi 4 documents en attente de publication" in setting

    report = run_transfer(job_app, browser, dossier_id, new_id)
    assert "Documents : 4 transférés, dont 2 à réviser." in report
    assert "4 documents en attente transférés de Compta Démo vers Xero" in report
    assert f'href="/dossiers/{dossier_id}/documents?statut=a-reviser">2 à réviser</a>' in report
    assert f'href="/dossiers/{dossier_id}/documents?statut=pret">2 prêts à publier</a>' in report

    with job_app.app_context():
        edf = new_item(new_id, ListKind.SUPPLIERS, name="EDF Entreprises")
        energy = new_item(new_id, ListKind.ACCOUNTS, code="606100")
        tva20 = new_item(new_id, ListKind.TAX_RATES, name="TVA 20 %")
        new_rule = db.session.scalar(select(Rule).where(Rule.integration_id == new_id))
        for document_id in (ready_id, late_id):
            moved = db.session.get(Document, document_id)
            assert (moved.integration_id, moved.moved_from_integration_id) == (new_id, old_id)
            assert (moved.party_id, moved.account_id, moved.tax_rate_id) == (edf.id, energy.id, tva20.id)
            assert moved.status is DocumentStatus.READY and moved.transfer_notes is None
            # Coded by Compta Démo's rule: now by the rule transferred from it (the late one had none).
            assert moved.rule_id == (new_rule.id if document_id == ready_id else None)
        failed = db.session.get(Document, failed_id)
        assert failed.integration_id == new_id and failed.status is DocumentStatus.TO_REVIEW
        assert (failed.party_id, failed.account_id, failed.tax_rate_id, failed.tracking_id) == (
            edf.id,
            None,
            tva20.id,
            None,
        )
        assert plain_spaces(failed.failure_reason) == ""  # Compta Démo's failure is past
        assert [{**note, "why": plain_spaces(note["why"])} for note in failed.transfer_notes] == [
            {"field": "compte", "why": "« Compte disparu » ignoré à la revue"},
            {"field": "catégorie analytique", "why": "« Axe disparu » ignoré à la revue"},
        ]
        orphan = db.session.get(Document, phantom_id)
        assert orphan.integration_id == new_id and orphan.status is DocumentStatus.TO_REVIEW
        assert (orphan.party_id, orphan.party_name, orphan.account_id) == (
            None,
            "Fournisseur Fantôme",
            energy.id,
        )
        assert orphan.transfer_notes[0]["field"] == "fournisseur"
        stayed = db.session.get(Document, published_id)
        assert (stayed.integration_id, stayed.status, stayed.upstream_id) == (
            old_id,
            DocumentStatus.PUBLISHED,
            upstream_ref,
        )
        # Nothing was sent: no publication job, and the software holds the one invoice it had.
        assert db.session.scalar(select(func.count()).where(JobRun.kind == "publish")) == 1
    assert upstream_invoices(live) == sent_before

    listed = unescaped(browser.get(f"/dossiers/{dossier_id}/documents").text)
    assert "F-PRET" in listed and "F-ECHEC" in listed and "F-PUB" not in listed
    assert "encore codée" not in listed
    assert "Après le changement de logiciel : compte, catégorie analytique à revoir" in listed
    previous = unescaped(browser.get(f"/dossiers/{dossier_id}/documents?precedent={old_id}").text)
    assert "Factures publiées dans Compta Démo (société « Boulangerie Martin SARL »)" in previous
    assert "F-PUB" in previous and f"Réf. {upstream_ref}" in previous
    assert "F-PRET" not in previous and "Publier la sélection" not in previous
    shown = unescaped(browser.get(f"/dossiers/{dossier_id}/documents/{published_id}").text)
    assert f"Dans Compta Démo</dt><dd>Facture n° {upstream_ref}" in shown

    page = f"/dossiers/{dossier_id}/documents/{failed_id}"
    why = unescaped(browser.get(page).text)
    assert "À revoir après le changement de logiciel</strong> (reprise de Compta Démo)" in why
    assert "Compte : « Compte disparu » ignoré à la revue." in why
    assert "Catégorie analytique : « Axe disparu » ignoré à la revue." in why
    # The user completes the coding: the notes go, the invoice is ready.
    with job_app.app_context():
        office = new_item(new_id, ListKind.ACCOUNTS, code="606400").id
    saved = browser.post_form(
        page, {"party_id": edf.id, "account_id": office, "tax_rate_id": tva20.id}, page=page
    )
    assert "Codage de la facture F-ECHEC enregistré : Prêt." in unescaped(saved.text)
    with job_app.app_context():
        assert db.session.get(Document, failed_id).transfer_notes is None

    # A second transfer has nothing left: the button says so, and the job run again changes nothing.
    state = documents_state(job_app)
    url = f"/dossiers/{dossier_id}/integrations/{new_id}"
    again = browser.post_form(f"{url}/transfert", {}, page=url)
    assert "Aucune règle à transférer" in unescaped(again.text)
    with job_app.app_context():
        from webapp.services.transfer import prepare, transfer

        first = db.session.scalar(select(RuleTransfer.id))
        assert transfer(first)["documents"]["moved"] == 4  # the job run again: its report, nothing redone
        run = prepare(db.session.get(Integration, new_id).dossier, db.session.get(Integration, new_id), None)
        report_again = transfer(run.id)
        assert report_again["documents"]["moved"] == 0 and report_again["whole"] == []
    assert documents_state(job_app) == state
    assert upstream_invoices(live) == sent_before


def test_payment_rules_and_the_default_coding_are_carried_with_their_report(job_app, live, dossier_with_rule):
    browser, dossier_id, old_id, ids = dossier_with_rule
    with job_app.app_context():
        gone_account = old_item(old_id, ListKind.ACCOUNTS, "Compte disparu", "699999")
        gone_method = old_item(old_id, ListKind.PAYMENT_METHODS, "Chèques Déjeuner")
        gone_axis = old_item(old_id, ListKind.TRACKING_CATEGORIES, "Axe disparu")
        card, cash = item_id(old_id, "pay-CB"), item_id(old_id, "pay-CAI")
        db.session.add_all(
            [
                PaymentRule(
                    dossier_id=dossier_id,
                    integration_id=old_id,
                    direction=Direction.PURCHASE,
                    payment_method_id=card,
                    account_id=ids["office"],
                    tax_rate_id=ids["tva20"],
                    paid=True,
                ),
                PaymentRule(
                    dossier_id=dossier_id,
                    integration_id=old_id,
                    direction=Direction.PURCHASE,
                    payment_method_id=cash,
                    account_id=gone_account,
                    due_days=0,
                ),
                PaymentRule(
                    dossier_id=dossier_id,
                    integration_id=old_id,
                    direction=Direction.SALE,
                    payment_method_id=gone_method,
                    paid=True,
                ),
                CodingDefault(
                    dossier_id=dossier_id,
                    integration_id=old_id,
                    direction=Direction.PURCHASE,
                    account_id=ids["energy"],
                    tax_rate_id=ids["tva20"],
                    tracking_id=gone_axis,
                    due_days=30,
                    description="Achats courants",
                ),
                CodingDefault(
                    dossier_id=dossier_id, integration_id=old_id, direction=Direction.SALE, due_days=15
                ),
            ]
        )
        db.session.commit()
    new_id = to_xero(job_app, browser, dossier_id, old_id)
    run_worker_burst(job_app)
    with job_app.app_context():  # the user set the sales default on Xero before transferring
        db.session.add(
            CodingDefault(dossier_id=dossier_id, integration_id=new_id, direction=Direction.SALE, due_days=45)
        )
        db.session.commit()
    setting = unescaped(browser.get(f"/dossiers/{dossier_id}/integrations/{new_id}").text)
    assert "Il reprend aussi 3 règles moyens de paiement, le codage par défaut." in setting

    report = run_transfer(job_app, browser, dossier_id, new_id)
    assert "Transfert terminé : 1 règle transférée entière" in report
    payment = report.split('id="report-payment-rules"')[1].split("</section>")[0]
    assert "1 transférée entière, 1 avec des champs vides, 1 non transférée." in payment
    assert 'Carte bancaire</a> <span class="muted">(achats)</span></li>' in payment
    assert (
        'Caisse</a> <span class="muted">(achats)</span> : compte vide (« Compte disparu » ignoré à la revue)'
        in (payment)
    )
    refused = 'Chèques Déjeuner <span class="muted">(ventes)</span> : non transférée.'
    assert f"{refused} Moyen de paiement ignoré à la revue." in payment
    defaults = report.split('id="report-defaults"')[1].split("</section>")[0]
    assert "Achats</a> : catégorie analytique vide (« Axe disparu » ignoré à la revue)" in defaults
    assert "Ventes : non transféré. Xero a déjà un codage par défaut des ventes." in defaults

    with job_app.app_context():
        office = new_item(new_id, ListKind.ACCOUNTS, code="606400")
        energy = new_item(new_id, ListKind.ACCOUNTS, code="606100")
        tva20 = new_item(new_id, ListKind.TAX_RATES, name="TVA 20 %")
        rules = {
            r.payment_method.name: r
            for r in db.session.scalars(select(PaymentRule).where(PaymentRule.integration_id == new_id))
        }
        assert set(rules) == {"Carte bancaire", "Caisse"}
        assert all(r.payment_method.integration_id == new_id for r in rules.values())
        assert (rules["Carte bancaire"].account_id, rules["Carte bancaire"].tax_rate_id) == (
            office.id,
            tva20.id,
        )
        assert rules["Carte bancaire"].paid is True
        assert (rules["Caisse"].account_id, rules["Caisse"].due_days) == (None, 0)
        purchases = db.session.scalars(
            select(CodingDefault).where(
                CodingDefault.integration_id == new_id, CodingDefault.direction == Direction.PURCHASE
            )
        ).one()
        assert (purchases.account_id, purchases.tax_rate_id, purchases.tracking_id) == (
            energy.id,
            tva20.id,
            None,
        )
        assert (purchases.due_days, purchases.description) == (30, "Achats courants")
        sales = db.session.scalars(
            select(CodingDefault).where(
                CodingDefault.integration_id == new_id, CodingDefault.direction == Direction.SALE
            )
        ).one()
        assert sales.due_days == 45  # the user's, untouched
    listed = unescaped(browser.get(f"/dossiers/{dossier_id}/regles/moyens-de-paiement").text)
    assert "Carte bancaire" in listed and "Caisse" in listed

    # What could not be carried stays, and a second transfer says so again without changing anything.
    state = documents_state(job_app)
    second = run_transfer(job_app, browser, dossier_id, new_id)
    assert "Ventes : non transféré. Xero a déjà un codage par défaut des ventes." in second
    assert "Chèques Déjeuner" in second
    assert documents_state(job_app) == state


def test_documents_page_says_where_a_dossier_without_software_keeps_its_invoices(app, client):
    """Disconnected, no software yet: the invoices stay readable and the page says how they will follow."""
    from tests.conftest import login
    from tests.factories import make_dossier, make_integration, make_organisation, make_user
    from webapp.models import IntegrationStatus

    with app.app_context():
        org = make_organisation()
        user = make_user(org)
        dossier = make_dossier(org)
        older = make_integration(dossier, status=IntegrationStatus.DISCONNECTED)
        latest = make_integration(dossier, software="xero", status=IntegrationStatus.DISCONNECTED)
        add_document(older.id, dossier.id, "F-ANCIENNE", DocumentStatus.READY)
        add_document(older.id, dossier.id, "F-PUBLIEE", DocumentStatus.PUBLISHED, upstream_id="INV-77")
        add_document(latest.id, dossier.id, "F-XERO", DocumentStatus.TO_REVIEW)
        email, dossier_id, older_id = user.email, dossier.id, older.id
    login(client, email, "mot-de-passe-solide")
    page = text_of(client.get(f"/dossiers/{dossier_id}/documents"))
    assert "F-XERO" in page and "F-ANCIENNE" not in page
    assert "1 facture en attente est encore codée sur les listes du logiciel précédent." in page
    assert "Connectez un logiciel comptable, puis « Transférer les règles » les y reprendra." in page
    previous = text_of(client.get(f"/dossiers/{dossier_id}/documents?precedent={older_id}&page=abc"))
    assert "F-PUBLIEE" in previous and "Réf. INV-77" in previous and "F-XERO" not in previous
    # A filter that is not one of the dossier's previous software shows the documents as usual.
    for wrong in ("999999", "-1", "x' OR 1=1", "9" * 40):
        other = client.get(f"/dossiers/{dossier_id}/documents", query_string={"precedent": wrong})
        assert other.status_code == 200 and "F-XERO" in text_of(other) and "F-PUBLIEE" not in text_of(other)


def switched(with_rules: bool = True):
    """A dossier moved from Compta Démo (disconnected) to Xero, both holding the same EDF, account, tax
    rate and card; on Compta Démo a supplier rule, a payment-method rule and a default:
    (dossier, old, new, ids)."""
    from tests.factories import make_dossier, make_integration, make_item, make_organisation
    from webapp.models import IntegrationStatus, PartyKind

    dossier = make_dossier(make_organisation())
    old = make_integration(dossier, status=IntegrationStatus.DISCONNECTED)
    new = make_integration(dossier, software="xero")
    ids: dict[str, dict[str, int]] = {}
    for name, integration in (("old", old), ("new", new)):
        ids[name] = {
            "edf": make_item(
                integration, ListKind.SUPPLIERS, "EDF Entreprises", vat_number="FR03552081317"
            ).id,
            "energy": make_item(integration, ListKind.ACCOUNTS, "Énergie", code="606100").id,
            "tva20": make_item(integration, ListKind.TAX_RATES, "TVA 20 %", rate="20").id,
            "card": make_item(integration, ListKind.PAYMENT_METHODS, "Carte bancaire").id,
        }
    if with_rules:
        o = ids["old"]
        db.session.add_all(
            [
                Rule(
                    dossier_id=dossier.id,
                    integration_id=old.id,
                    party_kind=PartyKind.SUPPLIER,
                    party_id=o["edf"],
                    account_id=o["energy"],
                ),
                PaymentRule(
                    dossier_id=dossier.id,
                    integration_id=old.id,
                    direction=Direction.PURCHASE,
                    payment_method_id=o["card"],
                    tax_rate_id=o["tva20"],
                ),
                CodingDefault(
                    dossier_id=dossier.id, integration_id=old.id, direction=Direction.PURCHASE, due_days=30
                ),
            ]
        )
        db.session.commit()
    return dossier, old, new, ids


def coded(integration_id: int, dossier_id: int, items: dict, number: str, status: DocumentStatus, **extra):
    return add_document(
        integration_id,
        dossier_id,
        number,
        status,
        party_id=items["edf"],
        account_id=items["energy"],
        tax_rate_id=items["tva20"],
        **extra,
    )


def where_they_are(document_ids: list[int]) -> list[tuple]:
    db.session.expire_all()
    return [
        (d.integration_id, d.status, d.account_id, d.failure_reason)
        for d in (db.session.get(Document, i) for i in document_ids)
    ]


def test_a_transfer_that_fails_midway_has_moved_and_written_nothing(app_ctx, monkeypatch):
    from webapp.services import transfer_documents
    from webapp.services.transfer import PendingCounts, pending_summary, prepare, transfer

    dossier, old, new, ids = switched()
    documents = [
        coded(old.id, dossier.id, ids["old"], "F-1", DocumentStatus.READY),
        coded(
            old.id, dossier.id, ids["old"], "F-2", DocumentStatus.FAILED, failure_reason="Intégration expirée"
        ),
        coded(old.id, dossier.id, ids["old"], "F-3", DocumentStatus.TO_REVIEW),
    ]
    before = where_they_are(documents)
    run = prepare(dossier, new, None)
    assert run.status == "ready"
    real, calls = transfer_documents._recoded, []

    def fails_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("le serveur s'est arrêté")
        return real(*args, **kwargs)

    monkeypatch.setattr(transfer_documents, "_recoded", fails_on_the_second)
    try:
        transfer(run.id)
    except RuntimeError:
        db.session.rollback()  # what the job's wrapper does
    else:
        raise AssertionError("the transfer should have failed")
    # Rules were written and a document recoded before the failure: none of it stays.
    assert where_they_are(documents) == before
    for model in (Rule, PaymentRule, CodingDefault, Document):
        assert db.session.scalar(select(func.count()).where(model.integration_id == new.id)) == 0
    assert db.session.get(RuleTransfer, run.id).status == "ready"
    assert pending_summary(dossier, new) == PendingCounts(rules=1, payment_rules=1, defaults=1, documents=3)

    monkeypatch.undo()
    report = transfer(run.id)  # started again: everything, once
    assert (report["documents"]["moved"], len(report["whole"])) == (3, 1)
    assert len(report["payment_rules"]["whole"]) == len(report["defaults"]["whole"]) == 1
    assert {i for i, *_ in where_they_are(documents)} == {new.id}
    assert [s for _, s, *_ in where_they_are(documents)] == [DocumentStatus.READY] * 3
    assert not pending_summary(dossier, new)


def test_a_document_being_published_waits_and_a_later_transfer_carries_it(app_ctx):
    from webapp.models import JobStatus
    from webapp.services.transfer import pending_summary, prepare, transfer

    dossier, old, new, ids = switched(with_rules=False)
    crashed = JobRun(
        rq_job_id="crashed-job", kind="publish", status=JobStatus.FAILED, message="Tâche interrompue"
    )
    db.session.add(crashed)
    db.session.commit()
    sending = coded(old.id, dossier.id, ids["old"], "F-ENVOI", DocumentStatus.IN_PROGRESS)
    dead = coded(old.id, dossier.id, ids["old"], "F-MORTE", DocumentStatus.IN_PROGRESS, job_run_id=crashed.id)
    published = coded(old.id, dossier.id, ids["old"], "F-PUB", DocumentStatus.PUBLISHED, upstream_id="CD-1")

    report = transfer(prepare(dossier, new, None).id)["documents"]
    assert (report["moved"], report["ready"]) == (
        1,
        1,
    )  # the publication whose worker died: released, carried
    assert report["left"] == [
        {"document_id": sending, "number": "F-ENVOI", "why": "sa publication dans Compta Démo est en cours"}
    ]
    assert [i for i, *_ in where_they_are([sending, dead, published])] == [old.id, new.id, old.id]
    assert pending_summary(dossier, new).documents == 1

    # Its publication fails (Compta Démo is disconnected), and an invoice is added to Compta Démo meanwhile.
    db.session.get(Document, sending).status = DocumentStatus.FAILED
    late = coded(old.id, dossier.id, ids["old"], "F-TARD", DocumentStatus.TO_REVIEW)
    report = transfer(prepare(dossier, new, None).id)["documents"]
    assert (report["moved"], report["left"]) == (2, [])
    assert [i for i, *_ in where_they_are([sending, late, published])] == [new.id, new.id, old.id]
    assert not pending_summary(dossier, new)
