"""'Documents': the list filtered by status, and the invoice form."""

from __future__ import annotations

from urllib.parse import quote

from flask import abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from htmx_flask import make_response
from wtforms import SelectChoice

from webapp.documents import bp
from webapp.documents.forms import DocumentCodingForm, DocumentForm
from webapp.dossier_scope import scope_to_dossier
from webapp.extensions import db
from webapp.fragments import (
    cached_html,
    conditional,
    dossier_state,
    not_modified,
    render_dossier_page,
    validator,
)
from webapp.ids import parse_id, parse_page
from webapp.live import changed
from webapp.models import Direction, Document, DocumentStatus, Integration, ListItem, ListKind, PartyKind
from webapp.models.base import utcnow
from webapp.services.documents import (
    WAITING,
    CodingChange,
    DocumentError,
    DocumentInput,
    approve_party_creation,
    attachment_name,
    awaiting_a_job,
    counts_by_status,
    create_document,
    documents_page,
    previous_software,
    update_coding,
    waiting_on_previous_software,
)
from webapp.services.integrations import current_integration_for, latest_integration_for
from webapp.services.jobs import JobBackendUnavailable
from webapp.services.parties import PartyIdentity
from webapp.services.publishing import release_if_crashed, request_publication
from webapp.services.rules import choices, usual_accounts

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
    slug = request.args.get("statut", "")
    # Any number of digits is a page (clamped to the last); anything else is the first.
    number = parse_page(request.args.get("page"))
    wanted = parse_id(request.args.get("precedent"))
    state = dossier_state(g.dossier.id)
    # The integration shown is the one the dossier's line names (read with the dossier).
    integration_id = state.integration_id if state else None
    if state is None:
        integration = latest_integration_for(g.dossier)
        integration_id = integration.id if integration else None
    # A publication whose worker died becomes Échec (a write: the version is read again after). Looked
    # for only when the dossier's line counts invoices 'En cours' (most visits: none, no query).
    if integration_id is not None and (state is None or state.publications_running):
        release_if_crashed(awaiting_a_job(integration_id))
    # Everything below the title bar is kept rendered under the dossier's version (webapp.fragments).
    body = cached_html(
        "documents",
        g.dossier.id,
        (integration_id, slug, number, wanted, current_app.config["JOB_POLL_SECONDS"]),
        lambda: _documents_body(latest_integration_for(g.dossier), slug, number, wanted),
    )
    return render_dossier_page("documents/index.html", g.dossier, body)


def _documents_body(integration: Integration | None, slug: str, number: int, wanted: int | None) -> str:
    status = STATUS_SLUGS.get(slug)
    page = counts = shown_previous = None
    previous: list = []
    waiting_elsewhere = 0
    if integration is not None:
        counts = counts_by_status(integration)
        previous = previous_software(g.dossier.id, integration)
        waiting_elsewhere = waiting_on_previous_software(g.dossier.id, integration)
        # 'Publié dans …': the invoices published to a previous software, where they stay. An id
        # that is not one of those filters is ignored, like an unknown status.
        shown_previous = next((p for p in previous if p.integration.id == wanted), None)
        if shown_previous is not None:
            status, slug = DocumentStatus.PUBLISHED, ""
            page = documents_page(shown_previous.integration, status, number, shown_previous.published)
        else:
            total = counts.get(status, 0) if status else sum(counts.values())
            page = documents_page(integration, status, number, total)
    return render_template(
        "documents/_body.html",
        dossier=g.dossier,
        integration=integration,
        documents=page.items if page else [],
        page=page,
        counts=counts or {},
        slugs=STATUS_SLUGS,
        current=slug if status else "",
        previous=previous,
        shown_previous=shown_previous,
        waiting_elsewhere=waiting_elsewhere,
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
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
    form.party_id.label.text = _("Fournisseur") if direction is Direction.PURCHASE else _("Client")
    form.payment_method_id.choices = [SelectChoice("", "—")] + [
        SelectChoice(str(i.id), i.name) for i in choices(integration, ListKind.PAYMENT_METHODS)
    ]
    selected = db.session.get(ListItem, form.party_id.data) if form.party_id.data else None
    if selected is not None and selected.integration_id != integration.id:
        selected = None
    if form.validate_on_submit():
        upload = form.pdf.data
        pdf = upload.read(11 * 1024 * 1024) if upload else None
        typed_party = (form.party_name.data or "").strip()
        new_party = None
        if not form.party_id.data and (typed_party or form.party_vat_number.data or form.party_siren.data):
            new_party = PartyIdentity(
                name=typed_party,
                vat_number=(form.party_vat_number.data or "").strip() or None,
                siren=(form.party_siren.data or "").strip() or None,
            )
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
            payment_method_id=form.payment_method_id.data,
            new_party=new_party,
        )
        try:
            document = create_document(integration, direction, data, current_user, today=utcnow().date())
        except DocumentError as exc:
            for field, message in exc.errors.items():
                getattr(form, field).errors = [*getattr(form, field).errors, message]
        else:
            if document.status is DocumentStatus.IN_PROGRESS:
                message = _(
                    "Facture %(number)s ajoutée : Prêt. La règle demande la publication automatique, "
                    "elle est en cours.",
                    number=document.number,
                )
            elif document.missing_coding:
                message = _(
                    "Facture %(number)s ajoutée : %(status)s (manque : %(missing)s).",
                    number=document.number,
                    status=document.status.label,
                    missing=", ".join(document.missing_coding),
                )
            else:
                message = _(
                    "Facture %(number)s ajoutée : %(status)s.",
                    number=document.number,
                    status=document.status.label,
                )
            if document.status is not DocumentStatus.IN_PROGRESS and document.party_is_new:
                message += " " + _(
                    "« %(name)s » n'est pas dans la liste : il sera cherché dans le logiciel comptable à la "
                    "publication, et créé s'il n'y est pas.",
                    name=document.party_name,
                )
            flash(message, "success")
            return redirect(url_for("documents.index"))
    elif request.method == "POST" and form.issue_date.errors:
        form.issue_date.errors = [_("La date de facture est obligatoire (jj/mm/aaaa).")]
    new_party_open = bool(form.party_name.data or form.party_vat_number.data or form.party_siren.data) or any(
        getattr(form, f).errors for f in ("party_name", "party_vat_number", "party_siren")
    )
    status = 400 if request.method == "POST" else 200
    party_slug = "fournisseurs" if direction is Direction.PURCHASE else "clients"
    return render_template(
        "documents/form.html",
        dossier=g.dossier,
        form=form,
        direction=direction,
        selected_party=selected,
        party_slug=party_slug,
        new_party_open=new_party_open,
    ), status


def _document(document_id: int) -> Document:
    document = db.session.get(Document, document_id)
    if document is None or document.dossier_id != g.dossier.id:
        abort(404)
    return document


def _row(document: Document) -> str:
    return render_template(
        "documents/_row.html",
        dossier=g.dossier,
        document=document,
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
    )


def _header(document: Document) -> str:
    return render_template(
        "documents/_header.html",
        dossier=g.dossier,
        document=document,
        integration=db.session.get(Integration, document.integration_id),
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
    )


def _publication_toast(document: Document) -> dict:
    if document.status is DocumentStatus.PUBLISHED:
        return {"message": _("Facture %(number)s publiée.", number=document.number), "level": "success"}
    return {
        "message": _(
            "Échec de la publication de la facture %(number)s : %(reason)s",
            number=document.number,
            reason=document.failure_reason,
        ),
        "level": "error",
    }


@bp.post("/<int:document_id>/publier")
def publish_one(document_id: int):
    """'Publier' on one row, or 'Publier' / 'Republier' on the invoice's page: 'En cours' at once,
    then the row or the page's header updates itself; the rest of the page follows (counts, banner)."""
    document = _document(document_id)
    try:
        request_publication([document], current_user)
        toast = None
    except JobBackendUnavailable as exc:
        toast = {"message": str(exc), "level": "error"}
    db.session.expire_all()
    document = _document(document_id)
    if not request.htmx:
        if toast:
            flash(toast["message"], "error")
        return redirect(url_for("documents.show", document_id=document.id))
    on_its_page = request.form.get("vue") == "facture"
    body = _header(document) if on_its_page else _row(document)
    trigger = {"raccord:toast": toast} if toast else {}
    if document.status is DocumentStatus.FAILED and not toast:
        # Refused at once (the connection has expired, say): said now, and shown everywhere.
        trigger["raccord:toast"] = _publication_toast(document)
    elif on_its_page:
        # Its header follows the publication and tells the page when it ends: nothing else changed yet.
        return make_response(body, trigger=trigger or None)
    return make_response(body, trigger=changed(trigger))


@bp.post("/publier")
def publish_selected():
    """'Publier la sélection': one job per selected document."""
    ids = [i for i in map(parse_id, request.form.getlist("document_id")) if i is not None]
    documents = [
        d
        for d in (db.session.get(Document, i) for i in ids)
        if d is not None and d.dossier_id == g.dossier.id
    ]
    if not documents:
        flash(_("Sélectionnez au moins une facture à publier."), "error")
        return redirect(url_for("documents.index"))
    try:
        runs = request_publication(documents, current_user)
        flash(
            ngettext(
                "Publication lancée pour %(num)d facture.",
                "Publication lancée pour %(num)d factures.",
                len(runs),
            ),
            "info",
        )
    except JobBackendUnavailable as exc:
        flash(str(exc), "error")
    return redirect(url_for("documents.index", statut=request.form.get("statut") or None))


def _following(document_id: int, render) -> object:
    """A fragment that asks again while its invoice is being published (`suivi=1`), then, answered
    with the outcome, says it in a toast and tells the page's other regions."""
    document = _document(document_id)
    release_if_crashed([document])
    # The fragment is what the dossier's version says: asked again unchanged, a 304 (the browser
    # revalidates what it holds; htmx swaps the same row and it asks again).
    following = request.args.get("suivi") == "1"
    etag = validator(
        render.__name__, g.dossier.id, (document.id, following, current_app.config["JOB_POLL_SECONDS"])
    )
    unchanged = not_modified(etag)
    if unchanged is not None:
        return unchanged
    body = render(document)
    if following and document.status is not DocumentStatus.IN_PROGRESS:
        return make_response(body, trigger=changed({"raccord:toast": _publication_toast(document)}))
    return conditional(make_response(body), etag)


@bp.get("/<int:document_id>/ligne")
def row(document_id: int):
    """One row of 'Documents'."""
    return _following(document_id, _row)


@bp.get("/<int:document_id>/entete")
def header(document_id: int):
    """The header of the invoice's page (title, status, 'Publier' / 'Republier')."""
    return _following(document_id, _header)


@bp.get("/<int:document_id>/pdf")
def pdf(document_id: int):
    document = db.session.get(Document, document_id)
    if document is None or document.dossier_id != g.dossier.id or not document.pdf_name:
        abort(404)
    from io import BytesIO

    name = document.pdf_filename or attachment_name(document.pdf_name)
    response = send_file(BytesIO(document.pdf_data or b""), mimetype="application/pdf", max_age=0)
    # Shown in the browser under a name that cannot break the header; never kept by a cache.
    response.headers["Content-Disposition"] = f"inline; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:document_id>", methods=["GET", "POST"])
def show(document_id: int):
    """One document: what it says, its coding (editable while it waits), why it waits or failed."""
    document = _document(document_id)
    integration = db.session.get(Integration, document.integration_id)
    form = DocumentCodingForm()
    if request.method == "GET":
        form.load(document)
        form.due_date.data = document.due_date
        form.party_id.data = document.party_id
    purchase = document.direction is Direction.PURCHASE
    party_kind = PartyKind.SUPPLIER if purchase else PartyKind.CUSTOMER
    form.fill_choices(
        integration,
        account_label=_("Compte de charge") if purchase else _("Compte de produit"),
        direction=document.direction,
        usual=usual_accounts(integration, party_kind, document.party_id),
        party_kind=party_kind,
    )
    editable = document.status in WAITING
    if request.method == "POST":
        if not editable:
            status = document.status.label
            flash(
                _("La facture a le statut « %(status)s » : son codage ne peut plus changer.", status=status),
                "error",
            )
            return redirect(url_for("documents.show", document_id=document.id))
        if form.validate_on_submit():
            data = form.coding_input(CodingChange, due_date=form.due_date.data, party_id=form.party_id.data)
            try:
                update_coding(document, data, current_user)
            except DocumentError as exc:
                for field, message in exc.errors.items():
                    target = getattr(form, field, None)
                    if target is not None:
                        target.errors = [*target.errors, message]
            else:
                flash(
                    _(
                        "Codage de la facture %(number)s enregistré : %(status)s.",
                        number=document.number,
                        status=document.status.label,
                    ),
                    "success",
                )
                return redirect(url_for("documents.show", document_id=document.id))
        elif form.due_date.errors:
            form.due_date.errors = [_("Saisissez la date d'échéance au format jj/mm/aaaa.")]
    party_selected = None
    if form.party_id.data:
        party_selected = db.session.get(ListItem, form.party_id.data)
        if party_selected is not None and party_selected.integration_id != integration.id:
            party_selected = None
    return render_template(
        "documents/show.html",
        dossier=g.dossier,
        document=document,
        integration=integration,
        form=form,
        editable=editable,
        party_selected=party_selected,
        party_slug="fournisseurs" if document.direction is Direction.PURCHASE else "clients",
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
        moved_from=db.session.get(Integration, document.moved_from_integration_id)
        if document.moved_from_integration_id
        else None,
    ), (400 if request.method == "POST" else 200)


@bp.post("/<int:document_id>/creer-le-tiers")
def approve_party(document_id: int):
    """'Créer le fournisseur et publier': the user agrees to create the supplier the invoice names."""
    document = _document(document_id)
    if not document.party_is_new or document.status not in WAITING:
        flash(_("Cette facture n'attend pas la création d'un tiers."), "error")
        return redirect(url_for("documents.show", document_id=document.id))
    approve_party_creation(document, current_user)
    if document.status is DocumentStatus.READY:
        try:
            request_publication([document], current_user)
            flash(
                _(
                    "« %(name)s » sera créé dans le logiciel comptable, puis la facture %(number)s publiée.",
                    name=document.party_name,
                    number=document.number,
                ),
                "success",
            )
        except JobBackendUnavailable as exc:
            flash(str(exc), "error")
    else:
        flash(
            _(
                "Création de « %(name)s » acceptée ; complétez le codage (%(missing)s) avant de publier.",
                name=document.party_name,
                missing=", ".join(document.missing_coding),
            ),
            "info",
        )
    return redirect(url_for("documents.index"))
