"""The pages of « Équipe », for the cabinet's admins only."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from htmx_flask import make_response

from webapp.errors import render_error
from webapp.ids import parse_id, parse_page
from webapp.models import Invitation, User
from webapp.models.base import utcnow
from webapp.services import invitations
from webapp.services.invitations import invitation_of, pending_invitations
from webapp.services.team import (
    TeamRefused,
    change_role,
    member_of,
    set_active,
    set_restricted,
    team_of,
    update_access,
    user_access_page,
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
    return render_template(
        "team/index.html",
        members=team_of(current_user.organisation_id),
        invitations=pending_invitations(current_user.organisation_id),
        now=utcnow(),
    )


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


def _list_options() -> dict:
    return {
        "query": (request.values.get("q") or "").strip()[:100],
        "only_ticked": request.values.get("coches") == "1",
        "page": parse_page(request.values.get("page")),
    }


def _access_page(context: dict):
    if request.htmx and request.htmx.target == "access-list":
        return render_template("team/_access_list.html", **context)
    return render_template("team/access.html", **context)


def _access_context(
    name: str, *, member: User | None, invitation: Invitation | None, restricted: bool, page, endpoints, args
) -> dict:
    """What the page of a member's or an invitation's dossiers shows: `endpoints` are its list, save and
    mode endpoints, `args` their URL values, `page` the function giving the page of dossiers."""
    options = _list_options()
    list_endpoint, save_endpoint, mode_endpoint = endpoints
    return {
        "title": _("Dossiers de %(name)s", name=name),
        "member": member,
        "invitation": invitation,
        "restricted": restricted,
        "page": page(**options),
        "query": options["query"],
        "only_ticked": options["only_ticked"],
        "list_endpoint": list_endpoint,
        "list_args": args,
        "list_url": url_for(list_endpoint, **args),
        "save_url": url_for(save_endpoint, **args),
        "mode_url": url_for(mode_endpoint, **args),
    }


def _member_access_context(user: User) -> dict:
    return _access_context(
        user.display_name,
        member=user,
        invitation=None,
        restricted=user.dossiers_restricted,
        page=lambda **options: user_access_page(user, **options),
        endpoints=("team.access", "team.save_access", "team.access_mode"),
        args={"user_id": user.id},
    )


@bp.get("/membres/<int:user_id>/dossiers")
def access(user_id: int):
    return _access_page(_member_access_context(_member(user_id)))


def _mode() -> str | None:
    mode = request.form.get("mode")
    if mode not in ("all", "chosen"):
        flash(_("Choisissez « Tous les dossiers du cabinet » ou « Seulement les dossiers cochés »."), "error")
        return None
    return mode


@bp.post("/membres/<int:user_id>/dossiers/mode")
def access_mode(user_id: int):
    user = _member(user_id)
    mode = _mode()
    if mode is None:
        return redirect(url_for("team.access", user_id=user.id))
    set_restricted(user, mode == "chosen")
    if mode == "chosen":
        flash(_("%(name)s ne voit plus que les dossiers cochés.", name=user.display_name), "success")
    else:
        flash(_("%(name)s voit tous les dossiers du cabinet.", name=user.display_name), "success")
    return redirect(url_for("team.access", user_id=user.id))


def _ids(name: str) -> list[int]:
    return [number for value in request.form.getlist(name)[:500] if (number := parse_id(value)) is not None]


def _saved(given: int, taken: int, back: str):
    """The answer to the ticks of one page: a toast for htmx, else the page again with a message."""
    if given and not taken:
        message = ngettext("%(num)d dossier ajouté.", "%(num)d dossiers ajoutés.", given)
    elif taken and not given:
        message = ngettext("%(num)d dossier retiré.", "%(num)d dossiers retirés.", taken)
    elif given or taken:
        message = " ".join(
            (
                ngettext("%(num)d dossier ajouté.", "%(num)d dossiers ajoutés.", given),
                ngettext("%(num)d dossier retiré.", "%(num)d dossiers retirés.", taken),
            )
        )
    else:
        message = _("Aucun changement.")
    if request.htmx:
        return make_response("", 200, trigger={"raccord:toast": {"message": message, "level": "success"}})
    flash(message, "success")
    page = parse_page(request.form.get("page"))
    args = {"q": request.form.get("q") or None, "coches": request.form.get("coches") or None}
    return redirect(
        back + "?" + urlencode({k: v for k, v in {**args, "page": page if page > 1 else None}.items() if v})
    )


@bp.post("/membres/<int:user_id>/dossiers")
def save_access(user_id: int):
    """The ticks of one page of the list: sent whole at each change (htmx) or with the button."""
    user = _member(user_id)
    given, taken = update_access(user, _ids("shown"), _ids("dossier"))
    return _saved(given, taken, url_for("team.access", user_id=user.id))


# --- invitations -----------------------------------------------------------------------------


def _invitation(invitation_id: int) -> Invitation:
    invitation = invitation_of(current_user.organisation_id, invitation_id)
    if invitation is None:
        abort(404)
    return invitation


@bp.post("/invitations")
def invite():
    try:
        invitation = invitations.invite(
            current_user,
            (request.form.get("email") or "")[:400],
            request.form.get("role") or "",
            request.form.get("acces") == "chosen",
        )
    except TeamRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for("team.index") + "#inviter")
    flash(_("Invitation envoyée à %(email)s.", email=invitation.email), "success")
    if invitation.dossier_ids is not None:
        return redirect(url_for("team.invitation_access", invitation_id=invitation.id))
    return redirect(url_for("team.index") + "#invitations")


@bp.post("/invitations/<int:invitation_id>/renvoyer")
def resend_invitation(invitation_id: int):
    invitation = _invitation(invitation_id)
    invitations.resend(invitation, current_user)
    flash(
        _("Invitation renvoyée à %(email)s : le lien précédent ne sert plus.", email=invitation.email),
        "success",
    )
    return redirect(url_for("team.index") + "#invitations")


@bp.post("/invitations/<int:invitation_id>/annuler")
def revoke_invitation(invitation_id: int):
    invitation = _invitation(invitation_id)
    invitations.revoke(invitation)
    flash(
        _("L'invitation de %(email)s est annulée : son lien ne sert plus.", email=invitation.email), "success"
    )
    return redirect(url_for("team.index") + "#invitations")


def _invitation_access_context(invitation: Invitation) -> dict:
    return _access_context(
        invitation.email,
        member=None,
        invitation=invitation,
        restricted=invitation.dossier_ids is not None,
        page=lambda **options: invitations.invitation_access_page(invitation, **options),
        endpoints=(
            "team.invitation_access",
            "team.save_invitation_access",
            "team.invitation_access_mode",
        ),
        args={"invitation_id": invitation.id},
    )


@bp.get("/invitations/<int:invitation_id>/dossiers")
def invitation_access(invitation_id: int):
    return _access_page(_invitation_access_context(_invitation(invitation_id)))


@bp.post("/invitations/<int:invitation_id>/dossiers/mode")
def invitation_access_mode(invitation_id: int):
    invitation = _invitation(invitation_id)
    mode = _mode()
    if mode is not None:
        invitations.set_invitation_restricted(invitation, mode == "chosen")
        flash(_("Accès de l'invitation enregistré."), "success")
    return redirect(url_for("team.invitation_access", invitation_id=invitation.id))


@bp.post("/invitations/<int:invitation_id>/dossiers")
def save_invitation_access(invitation_id: int):
    invitation = _invitation(invitation_id)
    given, taken = invitations.set_invitation_dossiers(invitation, _ids("shown"), _ids("dossier"))
    return _saved(given, taken, url_for("team.invitation_access", invitation_id=invitation.id))
