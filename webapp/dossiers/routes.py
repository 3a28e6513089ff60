"""'Mes dossiers' and a dossier's home page."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import flash, g, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from htmx_flask import make_response as make_htmx_response

from webapp.connections.routes import reconnect_url
from webapp.connectors.catalogue import CATALOGUE
from webapp.dossier_scope import scope_to_dossier
from webapp.dossiers import bp
from webapp.ids import parse_id
from webapp.live import INTEGRATION_CHANGED, dossier_version
from webapp.models import Dossier, IntegrationStatus
from webapp.services.integrations import current_integration_for
from webapp.services.portfolio import (
    PAGE_SIZE,
    STATUS_LABELS,
    Filters,
    portfolio_page,
    refresh_selected,
    visible_among,
)

#: The queue of « Se reconnecter » on several dossiers, in the session: {"ids", "at", "back"}.
QUEUE_KEY = "reconnect_queue"
#: At most this many ticked dossiers are read from one action (a page holds PAGE_SIZE).
MAX_SELECTED = 200

scope_to_dossier(bp)


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("dossiers.index"))


#: The element of the list that asks for it again while some of its dossiers' lists are loading.
LIST_POLLER = "suivi-liste"


def _render_list(filters: Filters, *, status: int = 200, trigger: dict | None = None):
    """The page, or only its list region for htmx (the search box, the filters, the column headers,
    the pages, the bulk actions and the list's own follow-up while lists load all swap #dossier-list),
    with the counts at the top sent beside it, out of band, so they never lag behind the rows."""
    fragment = bool(request.htmx and request.htmx.target == "dossier-list")
    page = portfolio_page(current_user, filters)
    polled = fragment and request.htmx.trigger == LIST_POLLER
    context = {
        "page": page,
        "filters": page.filters,
        "search": page.filters.q,
        "statuses": STATUS_LABELS,
        "software_choices": [(key, software.name) for key, software in CATALOGUE.items()],
        "page_size": PAGE_SIZE,
        "integration_statuses": list(IntegrationStatus),
        # Each row's checkbox label, translated once for the page (formatted with its name there).
        "select_label": _("Sélectionner %(name)s"),
        # The boxes ticked when the list asked for itself again stay ticked.
        "ticked": set(_ticked_ids()) if polled else set(),
        "polled": polled,
        "poller_id": LIST_POLLER,
    }
    if fragment:
        body = render_template("dossiers/_list.html", **context) + render_template(
            "dossiers/_counts.html", oob=True, **context
        )
    else:
        body = render_template("dossiers/index.html", **context)
    response = make_htmx_response(body, status, trigger=trigger) if trigger else make_response(body, status)
    return response


def _ticked_ids() -> list[int]:
    ids = (parse_id(value) for value in request.args.getlist("dossier_id")[:MAX_SELECTED])
    return [number for number in ids if number is not None]


@bp.get("/dossiers")
@login_required
def index():
    return _render_list(Filters.from_args(request.args))


def _posted_ids() -> list[int]:
    """The dossiers ticked, as posted: ids only, each once, in the order of the page, at most a few pages."""
    ids: list[int] = []
    for value in request.form.getlist("dossier_id")[:MAX_SELECTED]:
        parsed = parse_id(value)
        if parsed is not None and parsed not in ids:
            ids.append(parsed)
    return ids


def _filters_posted() -> Filters:
    """The list the form was on (its query string, sent back as `retour`): shown again after the action."""
    return Filters.from_args(dict(parse_qsl((request.form.get("retour") or "")[:2000])))


def _back_to_list(filters: Filters):
    query = filters.query_string()
    return redirect(url_for("dossiers.index") + (f"?{query}" if query else ""))


@bp.post("/dossiers/actualiser")
@login_required
def bulk_refresh():
    """« Actualiser les données de l'intégration » on the ticked dossiers: for each one connected, the
    Intégration page's own refresh (every list, in jobs); the others are said, not touched."""
    filters = _filters_posted()
    dossiers = visible_among(current_user, _posted_ids())
    if not dossiers:
        toast = {"message": _("Cochez au moins un dossier."), "level": "error"}
    else:
        toast = refresh_selected(dossiers, current_user)
    if request.htmx:
        return _render_list(filters, trigger={"raccord:toast": toast})
    flash(toast["message"], toast["level"])
    return _back_to_list(filters)


@bp.post("/dossiers/reconnexions")
@login_required
def reconnect_queue_start():
    """« Se reconnecter » on the ticked dossiers: the expired ones, one after the other, through the
    'Se reconnecter' of each (the queue of their ids is kept in the session)."""
    filters = _filters_posted()
    dossiers = visible_among(current_user, _posted_ids())
    expired = [d.id for d in dossiers if _expired_integration(d) is not None]
    if not expired:
        flash(
            _("Aucun des dossiers cochés n'a d'intégration expirée : il n'y a rien à reconnecter."), "error"
        )
        return _back_to_list(filters)
    session[QUEUE_KEY] = {"ids": expired, "at": 0, "back": filters.query_string()}
    return _walk_queue(0)


@bp.post("/dossiers/reconnexions/suivant")
@login_required
def reconnect_queue_next():
    queue = session.get(QUEUE_KEY)
    if not queue:
        flash(_("Aucune série de reconnexions n'est en cours."), "error")
        return redirect(url_for("dossiers.index"))
    return _walk_queue(int(queue.get("at", 0)) + 1)


@bp.post("/dossiers/reconnexions/arreter")
@login_required
def reconnect_queue_stop():
    queue = session.pop(QUEUE_KEY, None) or {}
    flash(_("Série de reconnexions terminée."), "info")
    back = queue.get("back") or ""
    return redirect(url_for("dossiers.index") + (f"?{back}" if back else ""))


def _expired_integration(dossier: Dossier):
    integration = current_integration_for(dossier)
    if integration is not None and integration.status is IntegrationStatus.EXPIRED:
        return integration
    return None


def _walk_queue(position: int):
    """Into 'Se reconnecter' of the queue's dossier at `position`, or of the next one still to
    reconnect: each is checked again when reached (still the user's, still expired)."""
    queue = dict(session.get(QUEUE_KEY) or {})
    ids = list(queue.get("ids") or [])
    while position < len(ids):
        dossier = next(iter(visible_among(current_user, [ids[position]])), None)
        integration = _expired_integration(dossier) if dossier is not None else None
        if integration is not None:
            session[QUEUE_KEY] = {**queue, "at": position}
            return redirect(reconnect_url(dossier, integration))
        if dossier is not None:
            flash(
                _("« %(name)s » n'a plus d'intégration expirée : dossier passé.", name=dossier.name),
                "info",
            )
        position += 1
    session.pop(QUEUE_KEY, None)
    flash(_("Série de reconnexions terminée."), "info")
    back = queue.get("back") or ""
    return redirect(url_for("dossiers.index") + (f"?{back}" if back else ""))


@bp.app_context_processor
def reconnect_queue_banner():
    """« Dossier 2 sur 5 : … » on the pages a reconnection of the queue ends on, with what comes next."""
    queue = session.get(QUEUE_KEY) if current_user and current_user.is_authenticated else None
    if not queue or request.endpoint in ("connections.choose", "static"):
        return {"reconnect_queue": None}
    ids, position = list(queue.get("ids") or []), int(queue.get("at", 0))
    if not 0 <= position < len(ids):
        return {"reconnect_queue": None}
    names = {d.id: d.name for d in visible_among(current_user, ids[position : position + 2])}
    current = names.get(ids[position])
    if current is None:
        return {"reconnect_queue": None}
    return {
        "reconnect_queue": {
            "position": position + 1,
            "total": len(ids),
            "name": current,
            "next": names.get(ids[position + 1]) if position + 1 < len(ids) else None,
            "more": position + 1 < len(ids),
        }
    }


@bp.get("/dossiers/<int:dossier_id>")
def show():
    return render_template("dossiers/home.html", dossier=g.dossier, integration=g.dossier.current_integration)


@bp.get("/dossiers/<int:dossier_id>/changements")
def changes():
    """Whether the dossier changed since the page was rendered (If-None-Match: its version): 204 if
    not; else 200 with the new version (ETag) and the event that brings the page's live regions up to
    date (webapp.live). Not counted as activity: a tab left open does not keep a session alive."""
    version = dossier_version(g.dossier.id)
    asked = (request.headers.get("If-None-Match") or "").strip().strip('"')
    if asked == version:
        response = make_response("", 204)
    else:
        response = make_response("", 200)
        response.headers["HX-Trigger"] = INTEGRATION_CHANGED
    response.headers["ETag"] = f'"{version}"'
    response.headers["Cache-Control"] = "no-store"
    return response
