"""'Connecter' and 'Se reconnecter' start the OAuth flow; the callback checks `state` and finishes."""

from __future__ import annotations

import logging
import secrets
import time

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required

from webapp.connections import bp
from webapp.connectors.base import Company, ConnectorError
from webapp.connectors.catalogue import CATALOGUE, get_connector, software_name, software_status
from webapp.models import Dossier
from webapp.services import consents
from webapp.services.documents import waiting_on_previous_software
from webapp.services.dossiers import get_dossier_for, get_integration_for
from webapp.services.integrations import (
    REFUSED_RECONNECTION_KEY,
    CompanyMismatch,
    create_integration,
    current_integration_for,
    reconnect_integration,
    switch_software,
)
from webapp.services.jobs import JobBackendUnavailable, UserFacingJobError
from webapp.services.lists import start_refresh_all

log = logging.getLogger(__name__)

PENDING_KEY = "oauth_pending"
PENDING_TTL = 900  # seconds a user has to go through the software's consent page
CANCELLED = _l("La connexion a été annulée : rien n'a été modifié.")


def _callback_url() -> str:
    return url_for("connections.callback", _external=True)


def _start_flow(dossier: Dossier, software: str, **purpose: int) -> str:
    """Remember what this authorisation is for under a fresh `state`, and give the consent URL."""
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(64)
    pending = {
        k: v
        for k, v in (session.get(PENDING_KEY) or {}).items()
        if v.get("at", 0) > time.time() - PENDING_TTL
    }
    pending[state] = {
        "dossier_id": dossier.id,
        "software": software,
        "verifier": verifier,
        "at": time.time(),
        **purpose,
    }
    session[PENDING_KEY] = dict(list(pending.items())[-5:])
    return get_connector(software).authorization_url(
        redirect_uri=_callback_url(), state=state, code_verifier=verifier
    )


@bp.post("/dossiers/<int:dossier_id>/connexions/<software>/connecter")
@login_required
def connect(dossier_id: int, software: str):
    dossier = get_dossier_for(current_user, dossier_id)
    if software not in CATALOGUE:
        abort(404)
    status = software_status(software)
    if not status.available:
        flash(_("%(software)s : %(reason)s", software=status.name, reason=status.unavailable_reason), "error")
        return redirect(url_for("settings.connections", dossier_id=dossier.id))
    current = current_integration_for(dossier)
    if current is not None:
        flash(
            _(
                "Ce dossier est déjà relié à %(software)s. Utilisez « Se reconnecter » sur la page "
                "Intégration.",
                software=current.software_name,
            ),
            "error",
        )
        return redirect(url_for("settings.connections", dossier_id=dossier.id))
    return redirect(_start_flow(dossier, software))


@bp.post("/dossiers/<int:dossier_id>/integrations/<int:integration_id>/changer/<software>")
@login_required
def switch(dossier_id: int, integration_id: int, software: str):
    """'Changer de logiciel': the new software's consent; the current one stays until it succeeds."""
    dossier = get_dossier_for(current_user, dossier_id)
    integration = get_integration_for(dossier, integration_id)
    if software not in CATALOGUE or integration.status.value == "disconnected":
        abort(404)
    back = url_for("settings.switch_page", dossier_id=dossier.id, integration_id=integration.id)
    if software == integration.software:
        flash(
            _(
                "Ce dossier est déjà relié à %(software)s : utilisez « Se reconnecter ».",
                software=integration.software_name,
            ),
            "error",
        )
        return redirect(back)
    status = software_status(software)
    if not status.available:
        flash(_("%(software)s : %(reason)s", software=status.name, reason=status.unavailable_reason), "error")
        return redirect(back)
    return redirect(_start_flow(dossier, software, replace=integration.id))


@bp.post("/dossiers/<int:dossier_id>/integrations/<int:integration_id>/reconnecter")
@login_required
def reconnect(dossier_id: int, integration_id: int):
    """'Se reconnecter': the same software's consent again, for an expired or a still valid connection."""
    dossier = get_dossier_for(current_user, dossier_id)
    integration = get_integration_for(dossier, integration_id)
    if integration.status.value == "disconnected":
        abort(404)
    return redirect(_start_flow(dossier, integration.software, reconnect=integration.id))


def reconnect_url(dossier: Dossier, integration) -> str:
    """The consent URL of 'Se reconnecter' for this integration, as its button starts it (used by the
    queue of reconnections of 'Mes dossiers')."""
    return _start_flow(dossier, integration.software, reconnect=integration.id)


@bp.get("/oauth/callback")
@login_required
def callback():
    state = request.args.get("state", "")
    remaining = dict(session.get(PENDING_KEY) or {})
    pending = remaining.pop(state, None) if state else None
    session[PENDING_KEY] = remaining
    if pending is None or pending.get("at", 0) < time.time() - PENDING_TTL:
        flash(
            _("Ce retour de connexion n'est pas valide ou a expiré. Recommencez depuis « Connecter »."),
            "error",
        )
        return redirect(url_for("dossiers.index"))
    dossier = get_dossier_for(current_user, pending["dossier_id"])
    software = pending["software"]
    reconnecting = pending.get("reconnect")
    purpose = {k: pending[k] for k in ("reconnect", "replace") if pending.get(k)}
    back = _back_to(dossier, purpose)

    code = request.args.get("code")
    if request.args.get("error") or not code:
        flash(str(CANCELLED), "info")
        return redirect(back)
    stale = _stale(dossier, purpose)  # before the code is spent
    if stale:
        flash(stale, "error")
        return redirect(back)

    connector = get_connector(software)
    try:
        tokens = connector.exchange_code(
            code=code,
            redirect_uri=_callback_url(),
            code_verifier=pending["verifier"],
            callback={k: v for k, v in request.args.items() if k not in ("code", "state")},
        )
        companies = connector.companies(tokens)
    except ConnectorError as exc:
        log.warning(
            "OAuth callback for %s failed on dossier %s: %s", software, dossier.id, type(exc).__name__
        )
        flash(
            _(
                "La connexion à %(software)s a échoué : %(reason)s Rien n'a été modifié.",
                software=software_name(software),
                reason=exc.message,
            ),
            "error",
        )
        return redirect(back)

    if reconnecting:
        # 'Se reconnecter' is for the dossier's own company: taken from the consent if it is there
        # (whatever else the consent covers); another one alone is refused below.
        integration = get_integration_for(dossier, reconnecting)
        own = next((c for c in companies if c.id == integration.company_id), None)
        return _finish(dossier, software, purpose, tokens, own or companies[0], authorised=companies)
    elsewhere = consents.connected_elsewhere(dossier, software, [c.id for c in companies])
    if len(companies) == 1 and not elsewhere:
        return _finish(dossier, software, purpose, tokens, companies[0])
    held = consents.hold(
        user=current_user,
        dossier=dossier,
        software=software,
        purpose=purpose,
        tokens=tokens,
        companies=companies,
    )
    return redirect(url_for("connections.choose", dossier_id=dossier.id, key=held.key))


def _back_to(dossier: Dossier, purpose: dict[str, int]) -> str:
    existing = purpose.get("reconnect") or purpose.get("replace")
    if existing:
        return url_for("settings.integration", dossier_id=dossier.id, integration_id=existing)
    return url_for("settings.connections", dossier_id=dossier.id)


def _stale(dossier: Dossier, purpose: dict[str, int]) -> str:
    """Why the connection asked for can no longer be made (the dossier changed meanwhile), or ""."""
    current = current_integration_for(dossier)
    if purpose.get("replace") and (current is None or current.id != purpose["replace"]):
        return _("Le logiciel du dossier a changé entre-temps : rien n'a été modifié.")
    if purpose.get("reconnect") and (current is None or current.id != purpose["reconnect"]):
        return _("Cette intégration n'est plus celle du dossier : rien n'a été modifié.")
    if not purpose and current is not None:
        return _("Ce dossier est déjà relié à un logiciel comptable : rien n'a été modifié.")
    return ""


def _finish(
    dossier: Dossier,
    software: str,
    purpose: dict[str, int],
    tokens,
    company: Company,
    *,
    authorised: list[Company] | None = None,
):
    """Connect the dossier to the company the user chose (or the consent's only one)."""
    connector = get_connector(software)
    connector.use_company(tokens, company)
    back = _back_to(dossier, purpose)
    reconnecting, replacing = purpose.get("reconnect"), purpose.get("replace")
    stale = _stale(dossier, purpose)
    if stale:
        flash(stale, "error")
        return redirect(url_for("settings.connections", dossier_id=dossier.id))

    if reconnecting:
        integration = get_integration_for(dossier, reconnecting)
        try:
            reconnect_integration(integration, company, tokens, current_user, authorised=authorised)
        except CompanyMismatch as exc:
            # The explanation is long: the integration page shows it as a notice; the toast points there.
            session[REFUSED_RECONNECTION_KEY] = {"integration": integration.id, "message": str(exc)}
            flash(_("Reconnexion refusée : rien n'a été modifié. L'explication est sur la page."), "error")
            return redirect(back)
        flash(
            _(
                "L'intégration avec %(software)s est de nouveau connectée.",
                software=integration.software_name,
            ),
            "success",
        )
        _catch_up(integration)
        return redirect(back)

    if replacing:
        old = get_integration_for(dossier, replacing)
        old_name = old.software_name
        integration, outcome = switch_software(old, software, company, tokens, current_user)
        waiting = waiting_on_previous_software(dossier.id, integration)
        _start_lists(
            integration,
            _(
                "%(new)s remplace %(old)s : le dossier est relié à « %(company)s » dans %(new)s, et le "
                "chargement des listes a commencé. Les règles de %(old)s sont conservées, à transférer.",
                new=software_name(software),
                old=old_name,
                company=company.name,
            )
            + (
                " "
                + ngettext(
                    "La facture en attente suivra avec « Transférer les règles ».",
                    "Les %(num)d factures en attente suivront avec « Transférer les règles ».",
                    waiting,
                )
                if waiting
                else ""
            ),
        )
        if not outcome["revoked"]:
            flash(
                _(
                    "%(software)s n'a pas confirmé la révocation de l'ancien accès ; "
                    "ses jetons sont supprimés ici.",
                    software=old_name,
                ),
                "info",
            )
        return redirect(url_for("settings.integration", dossier_id=dossier.id, integration_id=integration.id))

    integration = create_integration(dossier, software, company, tokens, current_user)
    _start_lists(
        integration,
        _(
            "%(software)s est connecté à la société « %(company)s ». Le chargement des listes a commencé.",
            software=software_name(software),
            company=company.name,
        ),
    )
    return redirect(url_for("settings.integration", dossier_id=dossier.id, integration_id=integration.id))


def _catch_up(integration) -> None:
    """After 'Se reconnecter': what changed in the software while the access was cut (no webhook
    comes then) is asked for at once, list by list, changes only. The reconnection stands whatever
    happens here; a list already loading is joined."""
    from webapp.services.lists import ALL_KINDS, start_refresh

    for kind in ALL_KINDS:
        try:
            start_refresh(integration, kind, current_user, changes_only=True)
        except (JobBackendUnavailable, UserFacingJobError):
            log.info("No catch-up of %s after reconnecting integration %s", kind.value, integration.id)
            return


def _start_lists(integration, success: str) -> None:
    """The first load of every list of a new connection, and what the user is told of it."""
    try:
        start_refresh_all(integration, current_user)
        flash(success, "success")
    except (JobBackendUnavailable, UserFacingJobError) as exc:
        flash(
            _(
                "%(software)s est connecté, mais le chargement des listes n'a pas commencé : %(reason)s",
                software=integration.software_name,
                reason=str(exc),
            ),
            "error",
        )


#: How each software names a company, for the choice page (all feminine in French), and the short
#: name its users call it by.
COMPANY_WORDS = {"xero": "organisation", "sage": "entreprise", "quickbooks": "entreprise"}
SHORT_NAMES = {"sage": "Sage", "quickbooks": "QuickBooks"}
#: The word as the page says it, and the choice page's title for each word (whole sentences, each
#: with its own article, so that each is translated as a whole).
COMPANY_WORD_LABELS = {
    "organisation": _l("organisation"),
    "entreprise": _l("entreprise"),
    "societe": _l("société"),
}
CHOICE_TITLES = {
    ("organisation", False): _l("Choisissez l'organisation %(software)s de ce dossier"),
    ("organisation", True): _l("Confirmez l'organisation %(software)s de ce dossier"),
    ("entreprise", False): _l("Choisissez l'entreprise %(software)s de ce dossier"),
    ("entreprise", True): _l("Confirmez l'entreprise %(software)s de ce dossier"),
    ("societe", False): _l("Choisissez la société %(software)s de ce dossier"),
    ("societe", True): _l("Confirmez la société %(software)s de ce dossier"),
}


def choice_title(software: str, *, confirm: bool = False) -> str:
    """'Choisissez l'organisation Xero de ce dossier', 'Confirmez la société Compta Démo de ce dossier'."""
    word = COMPANY_WORDS.get(software, "societe")
    return str(CHOICE_TITLES[word, confirm]) % {
        "software": SHORT_NAMES.get(software, software_name(software))
    }


def _choice_page(
    dossier: Dossier, pending, *, chosen: str = "", confirm: Company | None = None, error: str = ""
):
    companies = sorted(consents.companies_of(pending), key=lambda c: (c.name.casefold(), c.id))
    elsewhere = consents.connected_elsewhere(dossier, pending.software, [c.id for c in companies])
    if confirm is None and not error and len(companies) == 1 and companies[0].id in elsewhere:
        confirm = companies[0]  # nothing to choose: the page asks to confirm it
    name = software_name(pending.software)
    word = str(COMPANY_WORD_LABELS[COMPANY_WORDS.get(pending.software, "societe")])
    return render_template(
        "settings/choose_company.html",
        dossier=dossier,
        section="connections",
        pending=pending,
        companies=companies,
        elsewhere=elsewhere,
        software=name,
        word=word,
        title=choice_title(pending.software, confirm=confirm is not None),
        chosen=chosen or (companies[0].id if len(companies) == 1 else ""),
        confirm=confirm,
        error=error,
        replacing=current_integration_for(dossier) if (pending.purpose or {}).get("replace") else None,
    ), (400 if error else 200)


@bp.route("/dossiers/<int:dossier_id>/connexions/choix/<key>", methods=["GET", "POST"])
@login_required
def choose(dossier_id: int, key: str):
    """The consent covered several companies, or one already connected to another dossier of the
    organisation: the user says which one is this dossier's, and confirms such a one knowingly."""
    dossier = get_dossier_for(current_user, dossier_id)
    pending = consents.find(key, user=current_user, dossier=dossier)
    if pending is None:
        flash(
            _(
                "Ce choix de société n'est plus valable (plus de 15 minutes, ou déjà fait). "
                "Recommencez depuis « Connecter »."
            ),
            "error",
        )
        return redirect(url_for("settings.connections", dossier_id=dossier.id))
    stale = _stale(dossier, pending.purpose or {})
    if stale:
        consents.forget(pending)
        flash(stale, "error")
        return redirect(url_for("settings.connections", dossier_id=dossier.id))
    companies = consents.companies_of(pending)
    if request.method == "GET":
        return _choice_page(dossier, pending)
    wanted = request.form.get("company_id", "")
    company = next((c for c in companies if c.id == wanted), None)
    if company is None:
        return _choice_page(dossier, pending, error=_("Choisissez une des sociétés proposées."))
    others = consents.connected_elsewhere(dossier, pending.software, [company.id]).get(company.id)
    if others and request.form.get("confirm") != company.id:
        return _choice_page(dossier, pending, chosen=company.id, confirm=company)
    tokens = consents.tokens_of(pending)
    purpose = dict(pending.purpose or {})
    software = pending.software
    consents.forget(pending)
    # Time has passed since the consent: the company may have been disconnected at the software
    # meanwhile. Asked again now, so that nothing changes here (the current software stays) if so.
    try:
        still = {c.id: c for c in get_connector(software).companies(tokens)}
    except ConnectorError as exc:
        flash(
            _(
                "La connexion à %(software)s a échoué : %(reason)s Rien n'a été modifié.",
                software=software_name(software),
                reason=exc.message,
            ),
            "error",
        )
        return redirect(_back_to(dossier, purpose))
    if company.id not in still:
        flash(
            _(
                "« %(company)s » n'est plus autorisée dans %(software)s : rien n'a été modifié. "
                "Recommencez la connexion.",
                company=company.name,
                software=software_name(software),
            ),
            "error",
        )
        return redirect(_back_to(dossier, purpose))
    return _finish(dossier, software, purpose, tokens, still[company.id])


@bp.post("/dossiers/<int:dossier_id>/connexions/choix/<key>/annuler")
@login_required
def cancel_choice(dossier_id: int, key: str):
    dossier = get_dossier_for(current_user, dossier_id)
    pending = consents.find(key, user=current_user, dossier=dossier)
    back = url_for("settings.connections", dossier_id=dossier.id)
    if pending is not None:
        back = _back_to(dossier, pending.purpose or {})
        consents.forget(pending)
    flash(str(CANCELLED), "info")
    return redirect(back)
