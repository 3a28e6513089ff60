"""'Paramètres du dossier' → 'Général' and 'Connexions' (card 'Logiciels disponibles'), and 'Intégration'."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for

from webapp.connectors.catalogue import available_software
from webapp.dossier_scope import scope_to_dossier
from webapp.models.integration import ListKind
from webapp.services.dossiers import get_integration_for, update_dossier
from webapp.settings import bp
from webapp.settings.forms import DossierForm

scope_to_dossier(bp)


@bp.route("/parametres", methods=["GET", "POST"])
def general():
    form = DossierForm(obj=g.dossier)
    if form.validate_on_submit():
        update_dossier(g.dossier, name=form.name.data or "", siren=form.siren.data)
        flash("Les paramètres du dossier sont enregistrés.", "success")
        return redirect(url_for("settings.general"))
    return render_template("settings/general.html", dossier=g.dossier, form=form, section="general")


@bp.get("/parametres/connexions")
def connections():
    return render_template(
        "settings/connections.html",
        dossier=g.dossier,
        integration=g.dossier.current_integration,
        software_list=available_software(),
        section="connections",
    )


@bp.get("/integrations/<int:integration_id>")
def integration(integration_id: int):
    integration = get_integration_for(g.dossier, integration_id)
    return render_template(
        "settings/integration.html",
        dossier=g.dossier,
        integration=integration,
        list_kinds=list(ListKind),
        section="connections",
    )
