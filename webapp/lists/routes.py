"""List pages: server-side paging and active search, and 'Recharger la liste'."""

from __future__ import annotations

from flask import abort, current_app, g, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from htmx_flask import make_response

from webapp.dossier_scope import scope_to_dossier
from webapp.extensions import db
from webapp.fragments import cached_html
from webapp.ids import parse_page
from webapp.lists import bp
from webapp.live import changed
from webapp.models import ListItem, ListKind
from webapp.services.integrations import current_integration_for, latest_integration_for
from webapp.services.lists import refresh_outcome_toast, request_refresh, search_items, sync_views

scope_to_dossier(bp)

STATUSES = {"actifs": "Actifs", "inactifs": "Inactifs", "tous": "Tous"}


def _kind(slug: str) -> ListKind:
    try:
        return ListKind(slug)
    except ValueError:
        abort(404)


def _status_fragment(kind: ListKind, view, *, watching: bool) -> str:
    return render_template(
        "lists/_sync_status.html",
        dossier=g.dossier,
        kind=kind,
        view=view,
        watching=watching,
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
    )


@bp.get("/<kind>")
def show(kind: str):
    list_kind = _kind(kind)
    integration = latest_integration_for(g.dossier)
    status = request.args.get("statut", "actifs")
    if status not in STATUSES:
        status = "actifs"
    page_number = parse_page(request.args.get("page"))
    query = (request.args.get("q") or "")[:100]
    context = {
        "dossier": g.dossier,
        "integration": integration,
        "kind": list_kind,
        "query": query,
        "status": status,
        "statuses": STATUSES,
        "view": sync_views(integration, [list_kind])[0] if integration else None,
        "poll_seconds": current_app.config["JOB_POLL_SECONDS"],
    }
    results = ""
    if integration is not None:
        # The results are kept rendered under the dossier's version (webapp.fragments): a search
        # typed again, or the page opened again, reads them from Redis until the list changes.
        def render_results() -> str:
            page = search_items(integration, list_kind, query=query, status=status, page=page_number)
            return render_template("lists/_results.html", page=page, **context)

        results = cached_html(
            "list-results",
            g.dossier.id,
            (integration.id, list_kind.value, status, query, page_number),
            render_results,
        )
    if request.htmx and request.htmx.target == "list-results":
        return results
    return render_template("lists/page.html", results=results, **context)


@bp.post("/accounts/<bigid:item_id>/visible")
def toggle_visible(item_id: int):
    """Column 'Visible' of the plan comptable: a hidden account is not offered when coding."""
    integration = current_integration_for(g.dossier)
    item = db.session.get(ListItem, item_id)
    mine = integration is not None and item is not None and item.integration_id == integration.id
    if not mine or item.kind != ListKind.ACCOUNTS:
        abort(404)
    item.visible = request.form.get("visible") == "1"
    db.session.commit()
    if item.visible:
        said = _("Le compte %(code)s est visible dans les choix de codage.", code=item.code)
    else:
        said = _("Le compte %(code)s est masqué dans les choix de codage.", code=item.code)
    toast = {"message": said, "level": "success"}
    body = render_template("lists/_row.html", dossier=g.dossier, kind=ListKind.ACCOUNTS, item=item)
    return make_response(body, trigger={"raccord:toast": toast})


@bp.post("/<kind>/recharger")
def reload(kind: str):
    list_kind = _kind(kind)
    integration = current_integration_for(g.dossier)
    if integration is None:
        abort(404)
    toast = request_refresh(integration, list_kind, current_user)
    view = sync_views(integration, [list_kind])[0]
    return make_response(_status_fragment(list_kind, view, watching=True), trigger={"raccord:toast": toast})


@bp.get("/<kind>/etat")
def status(kind: str):
    list_kind = _kind(kind)
    integration = latest_integration_for(g.dossier)
    if integration is None:
        abort(404)
    view = sync_views(integration, [list_kind])[0]
    watching = request.args.get("suivi") == "1"
    body = _status_fragment(list_kind, view, watching=watching)
    if watching and not view.running:
        # The refresh being watched has ended: the results change, so reload them, and say so.
        return make_response(
            body, trigger=changed({"raccord:toast": refresh_outcome_toast([view]), "raccord:list-loaded": ""})
        )
    return make_response(body)
