"""List pages: server-side paging and active search, and 'Recharger la liste'."""

from __future__ import annotations

from flask import abort, current_app, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from htmx_flask import make_response
from markupsafe import Markup

from webapp.dossier_scope import scope_to_dossier
from webapp.extensions import db
from webapp.fragments import cached_html, dossier_state, render_dossier_page
from webapp.ids import parse_page
from webapp.lists import bp
from webapp.live import changed
from webapp.models import ListItem, ListKind
from webapp.services.integrations import current_integration_for, latest_integration_for
from webapp.services.lists import refresh_outcome_toast, request_refresh, search_items, sync_views

scope_to_dossier(bp)

STATUSES = {"actifs": _l("Actifs"), "inactifs": _l("Inactifs"), "tous": _l("Tous")}


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
    status = request.args.get("statut", "actifs")
    if status not in STATUSES:
        status = "actifs"
    page_number = parse_page(request.args.get("page"))
    query = (request.args.get("q") or "")[:100]
    poll = current_app.config["JOB_POLL_SECONDS"]
    results_only = bool(request.htmx and request.htmx.target == "list-results")
    state = dossier_state(g.dossier.id)
    if state is not None and state.lists_running == 0:
        # None of the lists loads: the page is what its version says, kept whole (webapp.fragments);
        # its integration is the one the dossier's line names.
        parts = (state.integration_id, list_kind.value, status, query, page_number, poll)
        if results_only:
            return cached_html(
                "list-results",
                g.dossier.id,
                parts,
                lambda: _results(*_integration_and_view(list_kind), list_kind, status, query, page_number),
            )
        body = cached_html(
            "list-page", g.dossier.id, parts, lambda: _page_body(list_kind, status, query, page_number)
        )
    elif results_only:
        return Markup(_results(*_integration_and_view(list_kind), list_kind, status, query, page_number))  # noqa: S704
    else:
        body = Markup(_page_body(list_kind, status, query, page_number))  # noqa: S704 - autoescaped template
    return render_dossier_page("lists/page.html", g.dossier, body, kind=list_kind)


def _integration_and_view(list_kind: ListKind) -> tuple:
    integration = latest_integration_for(g.dossier)
    return integration, sync_views(integration, [list_kind])[0] if integration else None


def _context(integration, view, list_kind: ListKind, status: str, query: str) -> dict:
    return {
        "dossier": g.dossier,
        "integration": integration,
        "kind": list_kind,
        "query": query,
        "status": status,
        "statuses": STATUSES,
        "view": view,
        "poll_seconds": current_app.config["JOB_POLL_SECONDS"],
    }


def _results(integration, view, list_kind: ListKind, status: str, query: str, page_number: int) -> str:
    page = search_items(integration, list_kind, query=query, status=status, page=page_number)
    return render_template(
        "lists/_results.html", page=page, **_context(integration, view, list_kind, status, query)
    )


def _page_body(list_kind: ListKind, status: str, query: str, page_number: int) -> str:
    integration, view = _integration_and_view(list_kind)
    results = ""
    if integration is not None:
        results = Markup(_results(integration, view, list_kind, status, query, page_number))  # noqa: S704
    return render_template(
        "lists/_page_body.html", results=results, **_context(integration, view, list_kind, status, query)
    )


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
