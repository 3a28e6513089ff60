"""'Mes dossiers' and a dossier's home page."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.dossier_scope import scope_to_dossier
from webapp.dossiers import bp
from webapp.extensions import db
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
