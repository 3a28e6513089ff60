"""Rule pages: list with 'À revoir' flags, create, edit, delete, and the party search."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from webapp.dossier_scope import scope_to_dossier
from webapp.models import Direction, PartyKind
from webapp.rules import bp
from webapp.rules.forms import RuleForm
from webapp.services.integrations import current_integration_for
from webapp.services.rules import (
    RuleError,
    RuleInput,
    delete_rule,
    get_rule_for,
    has_reverse_charge,
    kept_rules_for,
    rules_for,
    save_rule,
    search_parties,
    usual_accounts,
)

scope_to_dossier(bp)

SLUGS = {"fournisseurs": PartyKind.SUPPLIER, "clients": PartyKind.CUSTOMER}
TITLES = {PartyKind.SUPPLIER: _l("Règles fournisseurs"), PartyKind.CUSTOMER: _l("Règles clients")}


def _party_kind(slug: str) -> PartyKind:
    if slug not in SLUGS:
        abort(404)
    return SLUGS[slug]


def _integration():
    return current_integration_for(g.dossier)


def _rule_or_404(integration, party_kind: PartyKind, rule_id: int):
    """The rule if it belongs to this dossier's integration and to this page's party kind; else 404."""
    rule = get_rule_for(integration, rule_id) if integration else None
    if rule is None or rule.party_kind is not party_kind:
        abort(404)
    return rule


def _fill_choices(form: RuleForm, integration, party_kind: PartyKind, party_id: int | None = None) -> None:
    supplier = party_kind is PartyKind.SUPPLIER
    form.fill_choices(
        integration,
        account_label=_("Compte de charge") if supplier else _("Compte de produit"),
        direction=Direction.PURCHASE if supplier else Direction.SALE,
        usual=usual_accounts(integration, party_kind, party_id),
        party_kind=party_kind,
    )
    form.party_id.label.text = _("Fournisseur") if party_kind is PartyKind.SUPPLIER else _("Client")


def _input(form: RuleForm) -> RuleInput:
    return form.coding_input(
        RuleInput,
        party_id=form.party_id.data,
        currency=form.currency.data or "",
        reverse_charge=bool(form.reverse_charge.data),
        auto_publish=bool(form.auto_publish.data),
    )


@bp.get("/<slug>")
def index(slug: str):
    party_kind = _party_kind(slug)
    integration = _integration()
    rules = rules_for(integration, party_kind) if integration else []
    return render_template(
        "rules/index.html",
        dossier=g.dossier,
        integration=integration,
        rules=rules,
        kept=kept_rules_for(g.dossier.id, party_kind),
        party_kind=party_kind,
        slug=slug,
        title=TITLES[party_kind],
    )


@bp.route("/<slug>/nouvelle", methods=["GET", "POST"])
def create(slug: str):
    return _edit(slug, rule_id=None)


@bp.route("/<slug>/<int:rule_id>", methods=["GET", "POST"])
def edit(slug: str, rule_id: int):
    return _edit(slug, rule_id=rule_id)


def _edit(slug: str, rule_id: int | None):
    party_kind = _party_kind(slug)
    integration = _integration()
    if integration is None:
        abort(404)
    rule = _rule_or_404(integration, party_kind, rule_id) if rule_id is not None else None
    form = RuleForm(obj=rule) if request.method == "GET" and rule else RuleForm()
    if request.method == "GET" and rule is not None:
        form.load(rule)
    _fill_choices(form, integration, party_kind, rule.party_id if rule else form.party_id.data)
    selected_party = rule.party if rule else None
    if request.method == "POST" and rule is None and form.party_id.data:
        from webapp.extensions import db
        from webapp.models import ListItem

        selected_party = db.session.get(ListItem, form.party_id.data)
    if form.validate_on_submit():
        try:
            saved = save_rule(integration, party_kind, _input(form), current_user, rule)
        except RuleError as exc:
            for field, message in exc.errors.items():
                getattr(form, field).errors = [*getattr(form, field).errors, message]
        else:
            flash(_rule_said(party_kind, saved.party.name, deleted=False), "success")
            return redirect(url_for("rules.index", slug=slug))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "rules/form.html",
        dossier=g.dossier,
        integration=integration,
        form=form,
        rule=rule,
        party_kind=party_kind,
        slug=slug,
        title=TITLES[party_kind],
        selected_party=selected_party,
        reverse_charge_possible=has_reverse_charge(integration),
    ), status


@bp.post("/<slug>/<int:rule_id>/supprimer")
def delete(slug: str, rule_id: int):
    party_kind = _party_kind(slug)
    rule = _rule_or_404(_integration(), party_kind, rule_id)
    name = rule.party.name
    delete_rule(rule, current_user)
    flash(_rule_said(party_kind, name, deleted=True), "success")
    return redirect(url_for("rules.index", slug=slug))


@bp.post("/<slug>/<int:rule_id>/appliquer")
def reapply(slug: str, rule_id: int):
    """Re-apply the rule to its party's invoices still waiting."""
    from webapp.services.documents import reapply_rule

    rule = _rule_or_404(_integration(), _party_kind(slug), rule_id)
    count = reapply_rule(rule, current_user)
    flash(
        ngettext(
            "Règle appliquée à %(num)d facture en attente de « %(name)s ».",
            "Règle appliquée à %(num)d factures en attente de « %(name)s ».",
            count,
            name=rule.party.name,
        ),
        "success",
    )
    return redirect(url_for("rules.edit", slug=slug, rule_id=rule.id))


def _rule_said(party_kind: PartyKind, name: str, *, deleted: bool) -> str:
    """'La règle du fournisseur « X » est enregistrée.' (or supprimée), a whole sentence each."""
    if party_kind is PartyKind.SUPPLIER:
        if deleted:
            return _("La règle du fournisseur « %(name)s » est supprimée.", name=name)
        return _("La règle du fournisseur « %(name)s » est enregistrée.", name=name)
    if deleted:
        return _("La règle du client « %(name)s » est supprimée.", name=name)
    return _("La règle du client « %(name)s » est enregistrée.", name=name)


@bp.get("/<slug>/tiers")
def parties(slug: str):
    """Active search among suppliers (or customers), which may be hundreds of thousands."""
    party_kind = _party_kind(slug)
    integration = _integration()
    if integration is None:
        abort(404)
    query = (request.args.get("q") or "")[:100]
    found = search_parties(integration, party_kind, query) if query.strip() else []
    return render_template("rules/_party_options.html", parties=found, query=query, party_kind=party_kind)
