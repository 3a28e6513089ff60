"""Supplier and customer rules: the choices they may point to, and their checked creation and change."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Integration, ListItem, ListKind, PartyKind, Rule, User
from webapp.models.base import utcnow
from webapp.search import matching_all, query_words
from webapp.services.events import record_event
from webapp.services.lists import first_in_order, list_order

CURRENCIES = {
    "EUR": _l("Euro (EUR)"),
    "USD": _l("Dollar américain (USD)"),
    "GBP": _l("Livre sterling (GBP)"),
    "CHF": _l("Franc suisse (CHF)"),
    "CAD": _l("Dollar canadien (CAD)"),
}
PARTY_LIST = {PartyKind.SUPPLIER: ListKind.SUPPLIERS, PartyKind.CUSTOMER: ListKind.CUSTOMERS}
MAX_DUE_DAYS = 365


class RuleError(ValueError):
    """Bad input: `errors` maps each field to its French message; nothing was saved."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(kw_only=True)
class CodingInput:
    """The coding fields a rule, a payment-method rule, the defaults or a document's form give."""

    account_id: int | None = None
    tax_rate_id: int | None = None
    payment_method_id: int | None = None
    tracking_id: int | None = None
    due_days: int | None = None
    paid: bool | None = None
    description: str = ""


CODING_FIELDS = ("account_id", "tax_rate_id", "payment_method_id", "tracking_id", "due_days", "paid")


@dataclass(kw_only=True)
class RuleInput(CodingInput):
    party_id: int | None = None
    currency: str = "EUR"
    reverse_charge: bool = False
    auto_publish: bool = False


def codable_conditions(integration: Integration, kind: ListKind) -> list:
    """Items a rule may point to: active, and for accounts, visible."""
    conditions = [ListItem.integration_id == integration.id, ListItem.kind == kind, ListItem.active.is_(True)]
    if kind is ListKind.ACCOUNTS:
        conditions.append(ListItem.visible.is_(True))
    return conditions


def codable(integration: Integration, kind: ListKind):
    return select(ListItem).where(*codable_conditions(integration, kind)).order_by(*list_order(kind))


def choices(integration: Integration, kind: ListKind) -> list[ListItem]:
    return list(db.session.scalars(codable(integration, kind)))


def usual_accounts(
    integration: Integration, party_kind: PartyKind, party_id: int | None, limit: int = 5
) -> list[int]:
    """The accounts a supplier's (or customer's) invoices usually go to: its rule's, then those of its
    previous documents, most used first. The coding forms offer them at the top of 'Compte de charge'."""
    if party_id is None:
        return []
    from sqlalchemy import func

    from webapp.models import Document

    found: list[int] = []
    rule_account = db.session.scalar(
        select(Rule.account_id).where(
            Rule.integration_id == integration.id,
            Rule.party_kind == party_kind,
            Rule.party_id == party_id,
            Rule.account_id.is_not(None),
        )
    )
    if rule_account is not None:
        found.append(rule_account)
    used = func.count(Document.id)
    for account_id in db.session.scalars(
        select(Document.account_id)
        .where(
            Document.integration_id == integration.id,
            Document.party_id == party_id,
            Document.account_id.is_not(None),
        )
        .group_by(Document.account_id)
        .order_by(used.desc(), Document.account_id)
        .limit(limit)
    ):
        if account_id not in found:
            found.append(account_id)
    return found[:limit]


def search_parties(
    integration: Integration, party_kind: PartyKind, query: str, limit: int = 20
) -> list[ListItem]:
    """The first active suppliers (or customers) in French order having every word of `query`, in any
    order, case and accents ignored, in their name, code, VAT number or SIREN; none for an empty one.
    The rule form's picker and the transfer review's both use it."""
    words = query_words(query)
    if not words:
        return []
    kind = PARTY_LIST[party_kind]
    conditions = [*codable_conditions(integration, kind), *matching_all(ListItem.search_text, words)]
    # The ids first, from the search index alone, then the rows shown.
    ids = first_in_order(conditions, list_order(kind), limit)
    return list(db.session.scalars(select(ListItem).where(ListItem.id.in_(ids)).order_by(*list_order(kind))))


def has_reverse_charge(integration: Integration) -> bool:
    """Autoliquidation needs a reverse-charge VAT account in the software."""
    for account in db.session.scalars(
        select(ListItem).where(
            ListItem.integration_id == integration.id,
            ListItem.kind == ListKind.ACCOUNTS,
            ListItem.active.is_(True),
        )
    ):
        if (account.extras or {}).get("reverse_charge"):
            return True
    return False


def rules_for(integration: Integration, party_kind: PartyKind) -> list[Rule]:
    rules = db.session.scalars(
        select(Rule)
        .join(ListItem, Rule.party_id == ListItem.id)
        .where(Rule.integration_id == integration.id, Rule.party_kind == party_kind)
        .order_by(ListItem.name)
    )
    return list(rules.unique())


def get_rule_for(integration: Integration, rule_id: int) -> Rule | None:
    rule = db.session.get(Rule, rule_id)
    if rule is None or rule.integration_id != integration.id:
        return None
    return rule


def check_item(
    integration: Integration,
    item_id: int | None,
    kind: ListKind,
    field: str,
    what: str,
    errors: dict[str, str],
) -> None:
    if item_id is None:
        return
    item = db.session.get(ListItem, item_id)
    if item is None or item.integration_id != integration.id or item.kind is not kind:
        errors[field] = _("Choisissez %(what)s dans la liste.", what=what)
    elif not item.active:
        errors[field] = _(
            "« %(name)s » est inactif dans le logiciel comptable : choisissez-en un autre.", name=item.name
        )
    elif kind is ListKind.ACCOUNTS and not item.visible:
        errors[field] = _(
            "Le compte %(code)s est masqué des choix de codage : choisissez-en un autre.", code=item.code
        )


def check_coding(
    integration: Integration, data: CodingInput, errors: dict[str, str], *, account_word: str
) -> None:
    """Each item chosen must be of this integration's list, active, and for an account visible.

    `account_word` names the account with its article ('le compte de charge')."""
    check_item(integration, data.account_id, ListKind.ACCOUNTS, "account_id", account_word, errors)
    check_item(integration, data.tax_rate_id, ListKind.TAX_RATES, "tax_rate_id", _("le taux de TVA"), errors)
    check_item(
        integration,
        data.payment_method_id,
        ListKind.PAYMENT_METHODS,
        "payment_method_id",
        _("le moyen de paiement"),
        errors,
    )
    check_item(
        integration,
        data.tracking_id,
        ListKind.TRACKING_CATEGORIES,
        "tracking_id",
        _("la catégorie analytique"),
        errors,
    )
    if data.due_days is not None and not 0 <= data.due_days <= MAX_DUE_DAYS:
        errors["due_days"] = _(
            "L'échéance doit être comprise entre 0 et %(max)d jours après la date de facture.",
            max=MAX_DUE_DAYS,
        )
    if len(data.description) > 500:
        errors["description"] = _("La description ne peut dépasser 500 caractères.")


def save_rule(
    integration: Integration,
    party_kind: PartyKind,
    data: RuleInput,
    user: User | None,
    rule: Rule | None = None,
) -> Rule:
    """Create (rule=None) or change a rule after checking every field; RuleError lists what is wrong."""
    errors: dict[str, str] = {}
    supplier = party_kind is PartyKind.SUPPLIER
    party_id = rule.party_id if rule is not None else data.party_id
    if party_id is None:
        errors["party_id"] = (
            _("Choisissez le fournisseur de la règle.")
            if supplier
            else _("Choisissez le client de la règle.")
        )
    else:
        what = _("le fournisseur") if supplier else _("le client")
        check_item(integration, party_id, PARTY_LIST[party_kind], "party_id", what, errors)
        if rule is None and "party_id" not in errors:
            exists = db.session.scalar(
                select(Rule.id).where(
                    Rule.integration_id == integration.id,
                    Rule.party_kind == party_kind,
                    Rule.party_id == party_id,
                )
            )
            if exists:
                errors["party_id"] = (
                    _("Une règle existe déjà pour ce fournisseur : modifiez-la.")
                    if supplier
                    else _("Une règle existe déjà pour ce client : modifiez-la.")
                )
    account_word = _("le compte de charge") if supplier else _("le compte de produit")
    check_coding(integration, data, errors, account_word=account_word)
    if data.currency not in CURRENCIES:
        errors["currency"] = _("Choisissez une devise de la liste.")
    if data.reverse_charge and not has_reverse_charge(integration):
        errors["reverse_charge"] = _(
            "Le logiciel comptable n'a pas de compte de TVA autoliquidée : "
            "l'autoliquidation n'est pas possible."
        )
    if errors:
        raise RuleError(errors)

    creating = rule is None
    if rule is None:
        rule = Rule(
            dossier_id=integration.dossier_id,
            integration_id=integration.id,
            party_kind=party_kind,
            party_id=party_id,
            created_by_id=user.id if user else None,
        )
        db.session.add(rule)
    for field in (*CODING_FIELDS, "reverse_charge", "auto_publish"):
        setattr(rule, field, getattr(data, field))
    rule.currency = data.currency
    rule.description = data.description.strip()
    rule.updated_at = utcnow()
    db.session.flush()
    party = db.session.get(ListItem, party_id)
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        actor_id=user.id if user else None,
        kind="rule.created" if creating else "rule.updated",
        message=_rule_event(party_kind, party.name, "created" if creating else "updated"),
        details={"rule_id": rule.id},
    )
    db.session.commit()
    return rule


def delete_rule(rule: Rule, user: User | None) -> None:
    record_event(
        dossier_id=rule.dossier_id,
        integration_id=rule.integration_id,
        actor_id=user.id if user else None,
        kind="rule.deleted",
        message=_rule_event(rule.party_kind, rule.party.name, "deleted"),
        details={"rule_id": rule.id},
    )
    db.session.delete(rule)
    db.session.commit()


def _rule_event(party_kind: PartyKind, name: str, what: str) -> str:
    """'Règle fournisseur « X » créée.' (modifiée, supprimée): a whole sentence for each."""
    if party_kind is PartyKind.SUPPLIER:
        return {
            "created": lambda: _("Règle fournisseur « %(name)s » créée.", name=name),
            "updated": lambda: _("Règle fournisseur « %(name)s » modifiée.", name=name),
            "deleted": lambda: _("Règle fournisseur « %(name)s » supprimée.", name=name),
        }[what]()
    return {
        "created": lambda: _("Règle client « %(name)s » créée.", name=name),
        "updated": lambda: _("Règle client « %(name)s » modifiée.", name=name),
        "deleted": lambda: _("Règle client « %(name)s » supprimée.", name=name),
    }[what]()


def rule_count(integration: Integration) -> int:
    """Supplier, customer and payment-method rules of an integration."""
    from sqlalchemy import func

    from webapp.models import PaymentRule

    return (db.session.scalar(select(func.count()).where(Rule.integration_id == integration.id)) or 0) + (
        db.session.scalar(select(func.count()).where(PaymentRule.integration_id == integration.id)) or 0
    )


def kept_rules_for(dossier_id: int, party_kind: PartyKind) -> list[Rule]:
    """Rules of the dossier's disconnected integrations not transferred yet: shown 'À transférer'."""
    from webapp.services.transfer import awaiting_transfer

    rules = db.session.scalars(
        select(Rule)
        .join(Integration, Rule.integration_id == Integration.id)
        .join(ListItem, Rule.party_id == ListItem.id)
        .where(*awaiting_transfer(dossier_id), Rule.party_kind == party_kind)
        .order_by(ListItem.name)
    )
    return list(rules.unique())
