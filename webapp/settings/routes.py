"""'Paramètres du dossier' → 'Général' and 'Connexions' (card 'Logiciels disponibles'), and 'Intégration'."""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from htmx_flask import make_response
from markupsafe import Markup

from webapp.connectors.catalogue import available_software
from webapp.dossier_scope import scope_to_dossier
from webapp.extensions import db
from webapp.fragments import cached_html, dossier_state, render_dossier_page
from webapp.ids import parse_id
from webapp.live import changed
from webapp.models import Direction, IntegrationStatus, ListKind, PartyKind, RuleTransfer
from webapp.models.integration import REFRESH_FREQUENCIES, SOFTWARE_WITH_WEBHOOKS
from webapp.rules.forms import CodingForm
from webapp.services.coding import default_for, save_default
from webapp.services.dossiers import get_integration_for, update_dossier
from webapp.services.events import record_event
from webapp.services.integrations import (
    REFUSED_RECONNECTION_KEY,
    current_integration_for,
    disconnect_integration,
)
from webapp.services.jobs import JobBackendUnavailable, launch_job
from webapp.services.lists import refresh_outcome_toast, request_refresh, sync_views
from webapp.services.publishing import failed_for_expiry, request_publication
from webapp.services.rules import RuleError, choices, rule_count, search_parties
from webapp.services.timeline import recent_for_user
from webapp.services.transfer import (
    lists_ready,
    pending_summary,
    prepare,
    save_choices,
    transfer_failure,
)
from webapp.settings import bp
from webapp.settings.forms import DossierForm

scope_to_dossier(bp)


@bp.route("/parametres", methods=["GET", "POST"])
def general():
    form = DossierForm(obj=g.dossier)
    if form.validate_on_submit():
        update_dossier(
            g.dossier,
            name=form.name.data or "",
            siren=form.siren.data,
            warn_before_creating_supplier=bool(form.warn_before_creating_supplier.data),
        )
        flash(_("Les paramètres du dossier sont enregistrés."), "success")
        return redirect(url_for("settings.general"))
    return render_template("settings/general.html", dossier=g.dossier, form=form, section="general")


@bp.get("/parametres/connexions")
def connections():
    current = g.dossier.current_integration
    return render_template(
        "settings/connections.html",
        dossier=g.dossier,
        integration=current,
        history=[i for i in g.dossier.integrations if current is None or i.id != current.id],
        software_list=available_software(),
        section="connections",
    )


def _lists_block(integration, *, watching: bool) -> str:
    return render_template(
        "settings/_lists.html",
        dossier=g.dossier,
        integration=integration,
        views=sync_views(integration),
        watching=watching,
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
    )


@bp.get("/integrations/<int:integration_id>")
def integration(integration_id: int):
    refused = session.pop(REFUSED_RECONNECTION_KEY, None)
    refused_message = refused["message"] if refused and refused.get("integration") == integration_id else ""
    state = dossier_state(g.dossier.id)
    notice_days = current_app.config["CONSENT_NOTICE_DAYS"]
    if state is not None and state.lists_running == 0 and not refused_message:
        # Kept whole under the dossier's version (webapp.fragments), and whether the access ends
        # soon (« Se reconnecter » then stands out): the only part of it that moves with the clock.
        # A part is only ever made for an integration of this dossier (get_integration_for, 404).
        body = cached_html(
            "integration",
            g.dossier.id,
            (
                integration_id,
                state.consent_ends_within(integration_id, notice_days),
                current_app.config["JOB_POLL_SECONDS"],
            ),
            lambda: _integration_body(integration_id, ""),
        )
    else:
        # A refusal said once, or a list loading (its progress is not in the dossier's version).
        body = Markup(_integration_body(integration_id, refused_message))  # noqa: S704 - autoescaped template
    return render_dossier_page("settings/integration.html", g.dossier, body, section="connections")


def _integration_body(integration_id: int, refused_message: str) -> str:
    integration = get_integration_for(g.dossier, integration_id)
    views = sync_views(integration)
    pending = pending_summary(g.dossier, integration) if integration.is_connected else None
    return render_template(
        "settings/_integration_body.html",
        refused_reconnection=refused_message,
        pending_transfer=pending.rules if pending else 0,
        pending=pending,
        transfer_wait=lists_ready(integration) if pending else "",
        failed_for_expiry=failed_for_expiry(integration) if integration.is_connected else [],
        events=recent_for_user(g.dossier.id),
        dossier=g.dossier,
        integration=integration,
        views=views,
        watching=any(v.running for v in views),
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
        pushes_changes=integration.software in SOFTWARE_WITH_WEBHOOKS,
    )


@bp.post("/integrations/<int:integration_id>/actualisation-automatique")
def save_refresh_frequency(integration_id: int):
    """« Actualisation automatique des listes » : chaque nuit or chaque heure (software without webhooks)."""
    integration = get_integration_for(g.dossier, integration_id)
    target = url_for("settings.integration", integration_id=integration.id) + "#actualisation"
    frequency = request.form.get("frequence", "")
    if integration.software in SOFTWARE_WITH_WEBHOOKS:
        flash(
            _(
                "Les changements faits dans %(software)s arrivent déjà dans Raccord en quelques secondes.",
                software=integration.software_name,
            ),
            "error",
        )
        return redirect(target)
    if integration.status is IntegrationStatus.DISCONNECTED:
        flash(_("Cette intégration est déconnectée : ses listes ne sont plus actualisées."), "error")
        return redirect(target)
    if frequency not in REFRESH_FREQUENCIES:
        flash(_("Choisissez « Chaque nuit » ou « Chaque heure »."), "error")
        return redirect(target)
    if frequency != integration.refresh_frequency:
        integration.refresh_frequency = frequency
        record_event(
            dossier_id=integration.dossier_id,
            integration_id=integration.id,
            actor_id=current_user.id,
            kind="integration.refresh_frequency",
            message=_("Actualisation automatique des listes : chaque heure.")
            if frequency == "hourly"
            else _("Actualisation automatique des listes : chaque nuit."),
            details={"refresh_frequency": frequency},
        )
    db.session.commit()
    flash(
        _("Les listes seront actualisées chaque heure.")
        if frequency == "hourly"
        else _("Les listes seront actualisées chaque nuit."),
        "success",
    )
    return redirect(target)


@bp.post("/integrations/<int:integration_id>/republier")
def republish(integration_id: int):
    """'Republier les factures en échec (N)': after a reconnection, publish again in one action."""
    integration = get_integration_for(g.dossier, integration_id)
    documents = failed_for_expiry(integration)
    try:
        runs = request_publication(documents, current_user)
        flash(
            ngettext(
                "Publication relancée pour %(num)d facture.",
                "Publication relancée pour %(num)d factures.",
                len(runs),
            ),
            "success",
        )
    except JobBackendUnavailable as exc:
        flash(str(exc), "error")
    return redirect(url_for("documents.index"))


@bp.post("/integrations/<int:integration_id>/actualiser")
def refresh_all(integration_id: int):
    """'Actualiser les données de l'intégration': answers at once; the lists load in jobs."""
    integration = get_integration_for(g.dossier, integration_id)
    toast = request_refresh(integration, None, current_user)
    # What the click found (an access that expired meanwhile, say) is shown everywhere on the page.
    return make_response(_lists_block(integration, watching=True), trigger=changed({"raccord:toast": toast}))


@bp.post("/integrations/<int:integration_id>/listes/<kind>/recharger")
def refresh_one(integration_id: int, kind: str):
    """'Réessayer' on one list of the page 'Intégration'."""
    integration = get_integration_for(g.dossier, integration_id)
    try:
        list_kind = ListKind(kind)
    except ValueError:
        abort(404)
    toast = request_refresh(integration, list_kind, current_user)
    # What the click found (an access that expired meanwhile, say) is shown everywhere on the page.
    return make_response(_lists_block(integration, watching=True), trigger=changed({"raccord:toast": toast}))


@bp.get("/integrations/<int:integration_id>/listes")
def lists_state(integration_id: int):
    integration = get_integration_for(g.dossier, integration_id)
    watching = request.args.get("suivi") == "1"
    body = _lists_block(integration, watching=watching)
    views = sync_views(integration)
    if watching and not any(v.running for v in views):
        return make_response(body, trigger=changed({"raccord:toast": refresh_outcome_toast(views)}))
    return make_response(body)


DEFAULT_SLUGS = {"achats": Direction.PURCHASE, "ventes": Direction.SALE}
ACCOUNT_LABELS = {Direction.PURCHASE: _l("Compte de charge"), Direction.SALE: _l("Compte de produit")}


def _default_forms(integration, posted: str | None = None) -> dict[str, CodingForm]:
    forms = {}
    for slug, direction in DEFAULT_SLUGS.items():
        form = CodingForm(prefix=slug) if slug == posted else CodingForm(prefix=slug, formdata=None)
        if slug != posted:
            stored = default_for(integration, direction)
            if stored is not None:
                form.load(stored)
        form.fill_choices(integration, account_label=ACCOUNT_LABELS[direction])
        forms[slug] = form
    return forms


def _render_defaults(integration, forms, status=200):
    return render_template(
        "settings/defaults.html",
        dossier=g.dossier,
        integration=integration,
        forms=forms,
        directions=DEFAULT_SLUGS,
        section="defaults",
    ), status


@bp.get("/parametres/codage")
def defaults():
    """'Codage par défaut': the first layer of every document's coding, for purchases and for sales."""
    integration = current_integration_for(g.dossier)
    return _render_defaults(integration, _default_forms(integration) if integration else {})


@bp.post("/parametres/codage/<slug>")
def save_defaults(slug: str):
    if slug not in DEFAULT_SLUGS:
        abort(404)
    integration = current_integration_for(g.dossier)
    if integration is None:
        abort(404)
    forms = _default_forms(integration, posted=slug)
    form = forms[slug]
    if form.validate():
        try:
            save_default(integration, DEFAULT_SLUGS[slug], form.coding_input(), current_user)
        except RuleError as exc:
            for field, message in exc.errors.items():
                getattr(form, field).errors = [*getattr(form, field).errors, message]
        else:
            flash(
                _(
                    "Le codage par défaut des %(direction)s est enregistré.",
                    direction=DEFAULT_SLUGS[slug].short_label.lower(),
                ),
                "success",
            )
            return redirect(url_for("settings.defaults"))
    return _render_defaults(integration, forms, 400)


@bp.get("/integrations/<int:integration_id>/deconnecter")
def disconnect_dialog(integration_id: int):
    """'Gérer' → 'Déconnecter': the confirmation, as a dialog (htmx) or a page of its own."""
    integration = get_integration_for(g.dossier, integration_id)
    if integration.status is IntegrationStatus.DISCONNECTED:
        abort(404)
    context = {"dossier": g.dossier, "integration": integration, "rule_count": rule_count(integration)}
    if request.headers.get("HX-Request"):
        return render_template("settings/_disconnect_dialog.html", **context)
    return render_template("settings/disconnect.html", section="connections", **context)


@bp.post("/integrations/<int:integration_id>/deconnecter")
def disconnect(integration_id: int):
    integration = get_integration_for(g.dossier, integration_id)
    if integration.status is IntegrationStatus.DISCONNECTED:
        flash(_("Cette intégration est déjà déconnectée."), "info")
        return redirect(url_for("settings.connections"))
    choice = request.form.get("regles")
    if choice not in ("conserver", "supprimer"):
        flash(_("Choisissez de conserver ou de supprimer les règles actuelles."), "error")
        return redirect(url_for("settings.integration", integration_id=integration.id))
    name = integration.software_name
    outcome = disconnect_integration(integration, current_user, keep_rules=choice == "conserver")
    deleted = outcome["rules_deleted"]
    if outcome["keep_rules"]:
        rules = _("Les règles sont conservées.")
    elif deleted == 0:
        rules = _("Aucune règle supprimée.")
    else:
        rules = ngettext("%(num)d règle supprimée.", "%(num)d règles supprimées.", deleted)
    flash(
        _("L'intégration avec %(software)s est déconnectée. %(rules)s", software=name, rules=rules), "success"
    )
    if not outcome["revoked"]:
        flash(
            _(
                "%(software)s n'a pas confirmé la révocation de l'accès : les jetons sont supprimés ici ; "
                "vous pouvez aussi retirer Raccord des applications autorisées dans %(software)s.",
                software=name,
            ),
            "info",
        )
    return redirect(url_for("settings.connections"))


@bp.get("/integrations/<int:integration_id>/changer")
def switch_page(integration_id: int):
    """'Gérer' → 'Changer de logiciel': the other software, each with its 'guide de démarrage'."""
    integration = get_integration_for(g.dossier, integration_id)
    if integration.status is IntegrationStatus.DISCONNECTED:
        abort(404)
    return render_template(
        "settings/switch.html",
        dossier=g.dossier,
        integration=integration,
        software_list=[s for s in available_software() if s.key != integration.software],
        section="connections",
    )


# --- 'Transférer les règles' ----------------------------------------------------------------


def _transfer_or_404(integration, run_id: int):
    run = db.session.get(RuleTransfer, run_id)
    if run is None or run.dossier_id != g.dossier.id or run.target_integration_id != integration.id:
        abort(404)
    return run


def _launch_transfer(integration, run) -> None:
    job = launch_job(
        "jobs.transfer.transfer_rules",
        run.id,
        current_user.id,
        kind="rule_transfer",
        description=_("Transfert des règles vers %(software)s", software=integration.software_name),
        owner=current_user,
        dossier=g.dossier,
    )
    run.job_run_id = job.id
    db.session.commit()


@bp.post("/integrations/<int:integration_id>/transfert")
def start_transfer(integration_id: int):
    integration = get_integration_for(g.dossier, integration_id)
    back = url_for("settings.integration", integration_id=integration.id)
    if not integration.is_connected:
        flash(_("Les règles se transfèrent vers un logiciel connecté."), "error")
        return redirect(back)
    waiting = lists_ready(integration)
    if waiting:
        flash(waiting, "error")
        return redirect(back)
    if not pending_summary(g.dossier, integration):
        flash(_("Aucune règle à transférer : toutes l'ont été, ou aucune n'a été conservée."), "info")
        return redirect(back)
    run = prepare(g.dossier, integration, current_user)
    if run.status == "review":
        return redirect(url_for("settings.transfer_review", integration_id=integration.id, run_id=run.id))
    try:
        _launch_transfer(integration, run)
    except JobBackendUnavailable as exc:
        flash(str(exc), "error")
        return redirect(back)
    return redirect(url_for("settings.transfer_report", integration_id=integration.id, run_id=run.id))


@bp.route("/integrations/<int:integration_id>/transferts/<int:run_id>/revue", methods=["GET", "POST"])
def transfer_review(integration_id: int, run_id: int):
    """Items the matching could not place: a choice in the new list for each, or 'Ignorer'."""
    integration = get_integration_for(g.dossier, integration_id)
    run = _transfer_or_404(integration, run_id)
    if run.status == "done":
        return redirect(url_for("settings.transfer_report", integration_id=integration.id, run_id=run.id))
    error = ""
    if request.method == "POST":
        answers: dict[int, int | None] = {}
        for entry in run.to_review:
            raw = request.form.get(f"choix-{entry['item_id']}", "ignorer")
            answers[entry["item_id"]] = parse_id(raw, big=True)
        try:
            save_choices(run, answers, current_user)
            _launch_transfer(integration, run)
        except ValueError as exc:
            error = str(exc)
        except JobBackendUnavailable as exc:
            error = str(exc)
        else:
            return redirect(url_for("settings.transfer_report", integration_id=integration.id, run_id=run.id))
    options = {
        kind: choices(integration, ListKind(kind))
        for kind in {e["kind"] for e in run.to_review}
        if kind not in ("suppliers", "customers")
    }
    return render_template(
        "settings/transfer_review.html",
        dossier=g.dossier,
        integration=integration,
        run=run,
        options=options,
        error=error,
        section="connections",
    ), (400 if error else 200)


@bp.get("/integrations/<int:integration_id>/transferts/<int:run_id>/tiers")
def transfer_party_search(integration_id: int, run_id: int):
    """Active search among the new suppliers or customers, for one item of the review."""
    integration = get_integration_for(g.dossier, integration_id)
    run = _transfer_or_404(integration, run_id)
    item_id = parse_id(request.args.get("item"), big=True)
    entry = next((e for e in run.to_review if e["item_id"] == item_id), None)
    if entry is None:
        abort(404)
    query = (request.args.get("q") or "")[:100]
    kind = PartyKind.SUPPLIER if entry["kind"] == "suppliers" else PartyKind.CUSTOMER
    found = search_parties(integration, kind, query) if query.strip() else []
    return render_template("settings/_transfer_party_options.html", entry=entry, parties=found, query=query)


@bp.get("/integrations/<int:integration_id>/transferts/<int:run_id>")
def transfer_report(integration_id: int, run_id: int):
    integration = get_integration_for(g.dossier, integration_id)
    run = _transfer_or_404(integration, run_id)
    fragment = bool(request.headers.get("HX-Request"))
    failure = transfer_failure(run)
    body = render_template(
        "settings/_transfer_report.html" if fragment else "settings/transfer.html",
        dossier=g.dossier,
        integration=integration,
        run=run,
        failure=failure,
        poll_seconds=current_app.config["JOB_POLL_SECONDS"],
        section="connections",
    )
    # The fragment is asked for only while the transfer runs: answered done or failed, it has just ended.
    ended = fragment and (run.status == "done" or bool(failure))
    return make_response(body, trigger=changed() if ended else None)
