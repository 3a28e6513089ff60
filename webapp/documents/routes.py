"""'Documents': the list filtered by status, and the invoice form."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from webapp.documents import bp
from webapp.documents.forms import DocumentForm
from webapp.dossier_scope import scope_to_dossier
from webapp.extensions import db
from webapp.models import Direction, Document, DocumentStatus, ListItem
from webapp.models.base import utcnow
from webapp.services.documents import (
    DocumentError,
    DocumentInput,
    counts_by_status,
    create_document,
    documents_for,
)
from webapp.services.integrations import current_integration_for

scope_to_dossier(bp)

STATUS_SLUGS = {
    "a-reviser": DocumentStatus.TO_REVIEW,
    "pret": DocumentStatus.READY,
    "en-cours": DocumentStatus.IN_PROGRESS,
    "publie": DocumentStatus.PUBLISHED,
    "echec": DocumentStatus.FAILED,
}
DIRECTIONS = {"achat": Direction.PURCHASE, "vente": Direction.SALE}


@bp.get("")
def index():
    integration = current_integration_for(g.dossier)
    slug = request.args.get("statut", "")
    status = STATUS_SLUGS.get(slug)
    return render_template(
        "documents/index.html",
        dossier=g.dossier,
        integration=integration,
        documents=documents_for(integration, status) if integration else [],
        counts=counts_by_status(integration) if integration else {},
        slugs=STATUS_SLUGS,
        current=slug if status else "",
    )


@bp.route("/nouvelle/<kind>", methods=["GET", "POST"])
def create(kind: str):
    if kind not in DIRECTIONS:
        abort(404)
    direction = DIRECTIONS[kind]
    integration = current_integration_for(g.dossier)
    if integration is None:
        abort(404)
    form = DocumentForm()
    form.party_id.label.text = "Fournisseur" if direction is Direction.PURCHASE else "Client"
    selected = db.session.get(ListItem, form.party_id.data) if form.party_id.data else None
    if form.validate_on_submit():
        upload = form.pdf.data
        pdf = upload.read(11 * 1024 * 1024) if upload else None
        data = DocumentInput(
            party_id=form.party_id.data,
            number=form.number.data or "",
            issue_date=form.issue_date.data,
            amount_ht=form.amount_ht.data or "",
            amount_tva=form.amount_tva.data or "",
            amount_ttc=form.amount_ttc.data or "",
            currency=form.currency.data or "",
            pdf_name=upload.filename if upload else None,
            pdf_data=pdf or None,
        )
        try:
            document = create_document(integration, direction, data, current_user, today=utcnow().date())
        except DocumentError as exc:
            for field, message in exc.errors.items():
                getattr(form, field).errors = [*getattr(form, field).errors, message]
        else:
            flash(
                f"Facture {document.number} ajoutée : {document.status.label}"
                + (f" (manque : {', '.join(document.missing_coding)})." if document.missing_coding else "."),
                "success",
            )
            return redirect(url_for("documents.index"))
    elif request.method == "POST" and form.issue_date.errors:
        form.issue_date.errors = ["La date de facture est obligatoire (jj/mm/aaaa)."]
    status = 400 if request.method == "POST" else 200
    party_slug = "fournisseurs" if direction is Direction.PURCHASE else "clients"
    return render_template(
        "documents/form.html",
        dossier=g.dossier,
        form=form,
        direction=direction,
        selected_party=selected,
        party_slug=party_slug,
    ), status


@bp.get("/<int:document_id>/pdf")
def pdf(document_id: int):
    document = db.session.get(Document, document_id)
    if document is None or document.dossier_id != g.dossier.id or not document.pdf_name:
        abort(404)
    from io import BytesIO

    return send_file(
        BytesIO(document.pdf_data or b""), mimetype="application/pdf", download_name=document.pdf_name
    )
