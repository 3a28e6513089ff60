"""'Règles moyens de paiement': the coding of invoices paid a given way, over the party's rule."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from webapp.models import Direction
from webapp.rules import bp
from webapp.rules.forms import PaymentRuleForm
from webapp.services.coding import (
    delete_payment_rule,
    get_payment_rule_for,
    payment_rules_for,
    save_payment_rule,
)
from webapp.services.integrations import current_integration_for
from webapp.services.rules import RuleError

TITLE = _l("Règles moyens de paiement")


def _rule_or_404(integration, rule_id: int):
    rule = get_payment_rule_for(integration, rule_id) if integration else None
    if rule is None:
        abort(404)
    return rule


@bp.get("/moyens-de-paiement")
def payment_index():
    integration = current_integration_for(g.dossier)
    return render_template(
        "rules/payment_index.html",
        dossier=g.dossier,
        integration=integration,
        rules=payment_rules_for(integration) if integration else [],
        title=TITLE,
    )


@bp.route("/moyens-de-paiement/nouvelle", methods=["GET", "POST"])
def payment_create():
    return _edit(None)


@bp.route("/moyens-de-paiement/<int:rule_id>", methods=["GET", "POST"])
def payment_edit(rule_id: int):
    return _edit(rule_id)


def _edit(rule_id: int | None):
    integration = current_integration_for(g.dossier)
    if integration is None:
        abort(404)
    rule = _rule_or_404(integration, rule_id) if rule_id is not None else None
    form = PaymentRuleForm()
    if request.method == "GET" and rule is not None:
        form.load(rule)
        form.direction.data = rule.direction.value
    direction = rule.direction if rule else None
    if rule is None and form.direction.data in ("purchase", "sale"):
        direction = Direction(form.direction.data)
    form.fill_choices(
        integration,
        account_label=_("Compte de produit")
        if direction is Direction.SALE
        else _("Compte de charge (ou de produit)"),
    )
    if form.validate_on_submit():
        try:
            saved = save_payment_rule(integration, direction, form.coding_input(), current_user, rule)
        except RuleError as exc:
            for field, message in exc.errors.items():
                getattr(form, field).errors = [*getattr(form, field).errors, message]
        else:
            flash(
                _(
                    "La règle du moyen de paiement « %(name)s » est enregistrée.",
                    name=saved.payment_method.name,
                ),
                "success",
            )
            return redirect(url_for("rules.payment_index"))
    return render_template(
        "rules/payment_form.html",
        dossier=g.dossier,
        integration=integration,
        form=form,
        rule=rule,
        title=TITLE,
    ), (400 if request.method == "POST" else 200)


@bp.post("/moyens-de-paiement/<int:rule_id>/supprimer")
def payment_delete(rule_id: int):
    rule = _rule_or_404(current_integration_for(g.dossier), rule_id)
    name = rule.payment_method.name
    delete_payment_rule(rule, current_user)
    flash(_("La règle du moyen de paiement « %(name)s » est supprimée.", name=name), "success")
    return redirect(url_for("rules.payment_index"))
