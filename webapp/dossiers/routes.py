"""'Mes dossiers' and a dossier's home page."""

from __future__ import annotations

from flask import g, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.dossier_scope import scope_to_dossier
from webapp.dossiers import bp
from webapp.extensions import db
from webapp.live import INTEGRATION_CHANGED, dossier_version
from webapp.models import Dossier
from webapp.search import matching_all, query_words
from webapp.services.dossiers import visible_dossiers

scope_to_dossier(bp)


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("dossiers.index"))


@bp.get("/dossiers")
@login_required
def index():
    query = visible_dossiers(current_user)
    search = (request.args.get("q") or "").strip()[:100]
    # Every word, in any order, case and accents ignored, in the name or the SIREN.
    query = query.where(*matching_all(Dossier.search_text, query_words(search)))
    dossiers = db.session.scalars(query).all()
    template = (
        "dossiers/_list.html"
        if request.htmx and request.htmx.target == "dossier-list"
        else "dossiers/index.html"
    )
    return render_template(template, dossiers=dossiers, search=search)


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
