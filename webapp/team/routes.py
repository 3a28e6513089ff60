"""The pages of « Équipe », for the cabinet's admins only."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from htmx_flask import make_response

from webapp.errors import render_error
from webapp.ids import parse_id, parse_page
from webapp.models import User
from webapp.services.team import (
    TeamRefused,
    access_page,
    change_role,
    member_of,
    set_active,
    set_restricted,
    team_of,
    update_access,
)
from webapp.team import bp


@bp.before_request
def admins_only():
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if not current_user.is_admin:
        return render_error(403, _("La page « Équipe » est réservée aux administrateurs du cabinet."))
    return None


def _member(user_id: int) -> User:
    user = member_of(current_user.organisation_id, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("")
def index():
    return render_template("team/index.html", members=team_of(current_user.organisation_id))


@bp.post("/membres/<int:user_id>/role")
def role(user_id: int):
    user = _member(user_id)
    try:
        change_role(user, request.form.get("role", ""))
    except TeamRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for("team.index"))
    flash(
        _("%(name)s est maintenant %(role)s.", name=user.display_name, role=user.role.label.lower()),
        "success",
    )
    if not current_user.is_admin:  # an admin who made themselves a member leaves the page
        return redirect(url_for("dossiers.index"))
    return redirect(url_for("team.index"))


@bp.post("/membres/<int:user_id>/desactiver")
def deactivate(user_id: int):
    user = _member(user_id)
    try:
        set_active(current_user, user, False)
    except TeamRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for("team.index"))
    flash(
        _("Le compte de %(name)s est désactivé : ses sessions sont fermées.", name=user.display_name),
        "success",
    )
    return redirect(url_for("team.index"))


@bp.post("/membres/<int:user_id>/reactiver")
def reactivate(user_id: int):
    user = _member(user_id)
    set_active(current_user, user, True)
    flash(_("Le compte de %(name)s est de nouveau actif.", name=user.display_name), "success")
    return redirect(url_for("team.index"))


# --- the dossiers a member is restricted to ------------------------------------------------


def _access_context(user: User) -> dict:
    query = (request.values.get("q") or "").strip()[:100]
    only_ticked = request.values.get("coches") == "1"
    page = access_page(
        user, query=query, only_ticked=only_ticked, page=parse_page(request.values.get("page"))
    )
    return {"member": user, "page": page, "query": query, "only_ticked": only_ticked}


@bp.get("/membres/<int:user_id>/dossiers")
def access(user_id: int):
    user = _member(user_id)
    context = _access_context(user)
    if request.htmx and request.htmx.target == "access-list":
        return render_template("team/_access_list.html", **context)
    return render_template("team/access.html", **context)


@bp.post("/membres/<int:user_id>/dossiers/mode")
def access_mode(user_id: int):
    user = _member(user_id)
    mode = request.form.get("mode")
    if mode not in ("all", "chosen"):
        flash(_("Choisissez « Tous les dossiers du cabinet » ou « Seulement les dossiers cochés »."), "error")
        return redirect(url_for("team.access", user_id=user.id))
    set_restricted(user, mode == "chosen")
    if mode == "chosen":
        flash(_("%(name)s ne voit plus que les dossiers cochés.", name=user.display_name), "success")
    else:
        flash(_("%(name)s voit tous les dossiers du cabinet.", name=user.display_name), "success")
    return redirect(url_for("team.access", user_id=user.id))


def _ids(name: str) -> list[int]:
    return [number for value in request.form.getlist(name)[:500] if (number := parse_id(value)) is not None]


@bp.post("/membres/<int:user_id>/dossiers")
def save_access(user_id: int):
    """The ticks of one page of the list: sent whole at each change (htmx) or with the button."""
    user = _member(user_id)
    given, taken = update_access(user, _ids("shown"), _ids("dossier"))
    if given and not taken:
        message = ngettext("%(num)d dossier ajouté.", "%(num)d dossiers ajoutés.", given)
    elif taken and not given:
        message = ngettext("%(num)d dossier retiré.", "%(num)d dossiers retirés.", taken)
    elif given or taken:
        message = _("Accès enregistrés : %(given)d ajouté(s), %(taken)d retiré(s).", given=given, taken=taken)
    else:
        message = _("Aucun changement.")
    if request.htmx:
        return make_response("", 200, trigger={"raccord:toast": {"message": message, "level": "success"}})
    flash(message, "success")
    back = {"q": request.form.get("q") or None, "coches": request.form.get("coches") or None}
    page = parse_page(request.form.get("page"))
    return redirect(url_for("team.access", user_id=user.id, page=page if page > 1 else None, **back))
