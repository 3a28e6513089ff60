"""How a document gets its coding, and the two layers besides the party rule: defaults and payment rules.

Layers, each over the one before for the fields it sets: the dossier's defaults (for purchases or for
sales), then the supplier or customer rule, then the rule of the payment method the invoice ends up
with. What the user gave on the document itself stays over all three. A layer pointing at an item
that left the choices (inactive, hidden) blanks that field rather than letting an older layer's
value through: the document then waits 'À réviser' instead of going out coded wrongly.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    CodingDefault,
    Direction,
    Document,
    DocumentStatus,
    Integration,
    ListItem,
    PartyKind,
    PaymentRule,
    Rule,
    User,
)
from webapp.models.base import utcnow
from webapp.models.coding import CODING_ITEMS, usable_for_coding
from webapp.services.events import record_event
from webapp.services.rules import CODING_FIELDS, CodingInput, RuleError, check_coding

PARTY_KIND = {Direction.PURCHASE: PartyKind.SUPPLIER, Direction.SALE: PartyKind.CUSTOMER}
#: The account a coding asks for, with its article, as an error names it ('Choisissez le compte de charge …').
ACCOUNT_WORD = {Direction.PURCHASE: _l("le compte de charge"), Direction.SALE: _l("le compte de produit")}


def default_for(integration: Integration, direction: Direction) -> CodingDefault | None:
    return db.session.scalar(
        select(CodingDefault).where(
            CodingDefault.integration_id == integration.id, CodingDefault.direction == direction
        )
    )


def party_rule_for(document: Document) -> Rule | None:
    if document.party_id is None:
        return None
    return db.session.scalar(
        select(Rule).where(
            Rule.integration_id == document.integration_id,
            Rule.party_kind == PARTY_KIND[document.direction],
            Rule.party_id == document.party_id,
        )
    )


def payment_rule_for(integration_id: int, direction: Direction, payment_method_id: int | None):
    if payment_method_id is None:
        return None
    return db.session.scalar(
        select(PaymentRule).where(
            PaymentRule.integration_id == integration_id,
            PaymentRule.direction == direction,
            PaymentRule.payment_method_id == payment_method_id,
        )
    )


def _lay(coding: dict[str, Any], layer, *, skip: tuple[str, ...] = ()) -> None:
    for field in CODING_ITEMS:
        if field in skip:
            continue
        item: ListItem | None = getattr(layer, field)
        if item is not None:
            coding[f"{field}_id"] = item.id if usable_for_coding(field, item) else None
    if layer.paid is not None:
        coding["paid"] = layer.paid
    if layer.description:
        coding["description"] = layer.description
    if layer.due_days is not None:
        coding["due_days"] = layer.due_days


def code_document(document: Document, given: dict[str, Any] | None = None) -> None:
    """Set the document's coding from the layers, then 'Prêt' or 'À réviser'.

    `given` holds what the user set on the document itself (field → value); it wins over the layers.
    """
    given = {k: v for k, v in (given or {}).items() if v not in (None, "")}
    integration = db.session.get(Integration, document.integration_id)
    coding: dict[str, Any] = {}
    default = default_for(integration, document.direction)
    if default is not None:
        _lay(coding, default)
    rule = party_rule_for(document)
    if rule is not None:
        _lay(coding, rule)
    method_id = given.get("payment_method_id") or coding.get("payment_method_id")
    payment_rule = payment_rule_for(document.integration_id, document.direction, method_id)
    if payment_rule is not None:
        _lay(coding, payment_rule, skip=("payment_method",))
    coding.update(given)

    for field in CODING_ITEMS:
        setattr(document, f"{field}_id", coding.get(f"{field}_id"))
    document.transfer_notes = None  # coded anew on this software's lists: the transfer's notes are past
    document.paid = coding.get("paid")
    document.description = coding.get("description", "")
    due_days = coding.get("due_days")
    if "due_date" in coding:
        document.due_date = coding["due_date"]
    elif due_days is not None and document.issue_date:
        document.due_date = document.issue_date + timedelta(days=due_days)
    else:
        document.due_date = None
    document.rule_id = rule.id if rule else None
    document.payment_rule_id = payment_rule.id if payment_rule else None
    set_coding_status(document)


def set_coding_status(document: Document) -> None:
    """'Prêt' when nothing is missing and nothing holds it, 'À réviser' otherwise (a field a change of
    software left empty is looked at by the user before the document goes out)."""
    waiting = document.missing_coding or document.hold_reason or document.transfer_notes
    document.status = DocumentStatus.TO_REVIEW if waiting else DocumentStatus.READY


# --- 'Codage par défaut' ---


def save_default(integration: Integration, direction: Direction, data: CodingInput, user: User | None):
    errors: dict[str, str] = {}
    check_coding(integration, data, errors, account_word=ACCOUNT_WORD[direction])
    if errors:
        raise RuleError(errors)
    default = default_for(integration, direction)
    if default is None:
        default = CodingDefault(
            dossier_id=integration.dossier_id, integration_id=integration.id, direction=direction
        )
        db.session.add(default)
    for field in CODING_FIELDS:
        setattr(default, field, getattr(data, field))
    default.description = data.description.strip()
    default.updated_by_id = user.id if user else None
    default.updated_at = utcnow()
    db.session.flush()
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        actor_id=user.id if user else None,
        kind="defaults.updated",
        message=_("Codage par défaut des %(direction)s modifié.", direction=direction.short_label.lower()),
        details={"direction": direction.value},
    )
    db.session.commit()
    return default


# --- 'Règles moyens de paiement' ---


def payment_rules_for(integration: Integration) -> list[PaymentRule]:
    rules = db.session.scalars(
        select(PaymentRule)
        .join(ListItem, PaymentRule.payment_method_id == ListItem.id)
        .where(PaymentRule.integration_id == integration.id)
        .order_by(PaymentRule.direction, ListItem.name)
    )
    return list(rules.unique())


def get_payment_rule_for(integration: Integration, rule_id: int) -> PaymentRule | None:
    rule = db.session.get(PaymentRule, rule_id)
    return rule if rule is not None and rule.integration_id == integration.id else None


def save_payment_rule(
    integration: Integration,
    direction: Direction | None,
    data: CodingInput,
    user: User | None,
    rule: PaymentRule | None = None,
) -> PaymentRule:
    errors: dict[str, str] = {}
    direction = rule.direction if rule is not None else direction
    if direction is None:
        errors["direction"] = _("Choisissez si la règle vaut pour les achats ou pour les ventes.")
    if data.payment_method_id is None:
        errors["payment_method_id"] = _("Choisissez le moyen de paiement de la règle.")
    check_coding(
        integration,
        data,
        errors,
        account_word=str(ACCOUNT_WORD[direction]) if direction else _("le compte"),
    )
    if not errors:
        same = db.session.scalar(
            select(PaymentRule.id).where(
                PaymentRule.integration_id == integration.id,
                PaymentRule.direction == direction,
                PaymentRule.payment_method_id == data.payment_method_id,
            )
        )
        if same is not None and (rule is None or same != rule.id):
            errors["payment_method_id"] = _(
                "Une règle existe déjà pour ce moyen de paiement (%(direction)s) : modifiez-la.",
                direction=direction.short_label.lower(),
            )
    if errors:
        raise RuleError(errors)
    creating = rule is None
    if rule is None:
        rule = PaymentRule(
            dossier_id=integration.dossier_id,
            integration_id=integration.id,
            direction=direction,
            created_by_id=user.id if user else None,
        )
        db.session.add(rule)
    for field in CODING_FIELDS:
        setattr(rule, field, getattr(data, field))
    rule.description = data.description.strip()
    rule.updated_at = utcnow()
    db.session.flush()
    method = db.session.get(ListItem, rule.payment_method_id)
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        actor_id=user.id if user else None,
        kind="payment_rule.created" if creating else "payment_rule.updated",
        message=(
            _(
                "Règle du moyen de paiement « %(name)s » (%(direction)s) créée.",
                name=method.name,
                direction=direction.short_label.lower(),
            )
            if creating
            else _(
                "Règle du moyen de paiement « %(name)s » (%(direction)s) modifiée.",
                name=method.name,
                direction=direction.short_label.lower(),
            )
        ),
        details={"payment_rule_id": rule.id},
    )
    db.session.commit()
    return rule


def delete_payment_rule(rule: PaymentRule, user: User | None) -> None:
    record_event(
        dossier_id=rule.dossier_id,
        integration_id=rule.integration_id,
        actor_id=user.id if user else None,
        kind="payment_rule.deleted",
        message=_("Règle du moyen de paiement « %(name)s » supprimée.", name=rule.payment_method.name),
        details={"payment_rule_id": rule.id},
    )
    db.session.delete(rule)
    db.session.commit()
