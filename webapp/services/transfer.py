"""'Transférer les règles': the rules of a disconnected integration carried over to the new software.

Two steps. The preparation places every item the rules point to in the new lists
(webapp.services.matching, or the user's earlier answer); the items it cannot place are shown for
review (a choice in the new list, or 'Ignorer'), and the answers are kept. The transfer then writes
one new rule per old rule whose supplier or customer was placed, leaving empty (and saying why) the
fields it could not place, and marks the old rule transferred. An old rule is never changed
otherwise nor deleted; one not transferred stays 'À transférer'. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    Dossier,
    Integration,
    IntegrationStatus,
    ItemChoice,
    ListItem,
    ListKind,
    ListSync,
    PartyKind,
    Rule,
    RuleTransfer,
    User,
)
from webapp.models.base import utcnow
from webapp.models.coding import CODING_ITEMS, ITEM_WHAT, item_label
from webapp.services.events import record_event
from webapp.services.jobs import report_progress
from webapp.services.matching import Match, match_item
from webapp.services.parties import PartyIdentity, match_in_list
from webapp.services.rules import has_reverse_charge

FIELD_KINDS = {
    "account": ListKind.ACCOUNTS,
    "tax_rate": ListKind.TAX_RATES,
    "payment_method": ListKind.PAYMENT_METHODS,
    "tracking": ListKind.TRACKING_CATEGORIES,
}
PARTY_LISTS = {PartyKind.SUPPLIER: ListKind.SUPPLIERS, PartyKind.CUSTOMER: ListKind.CUSTOMERS}


def pending_rules(dossier: Dossier, target: Integration) -> list[Rule]:
    """Rules of the dossier's disconnected integrations not transferred yet."""
    return list(
        db.session.scalars(
            select(Rule)
            .join(Integration, Rule.integration_id == Integration.id)
            .where(
                Rule.dossier_id == dossier.id,
                Integration.status == IntegrationStatus.DISCONNECTED,
                Integration.id != target.id,
                Rule.transferred_to_id.is_(None),
            )
            .order_by(Rule.id)
        ).unique()
    )


def lists_ready(target: Integration) -> str:
    """'' when the new lists have loaded; else why 'Transférer les règles' must wait, in French."""
    syncs = list(db.session.scalars(select(ListSync).where(ListSync.integration_id == target.id)))
    if len(syncs) < len(ListKind) or any(s.last_loaded_at is None for s in syncs):
        return f"Disponible quand les listes de {target.software_name} auront fini de se charger."
    return ""


@dataclass
class Placement:
    """Where each old item lands in the new lists."""

    target: Integration
    found: dict[int, Match] = field(default_factory=dict)
    _lists: dict[ListKind, list[ListItem]] = field(default_factory=dict)

    def new_list(self, kind: ListKind) -> list[ListItem]:
        if kind not in self._lists:
            self._lists[kind] = list(
                db.session.scalars(
                    select(ListItem).where(ListItem.integration_id == self.target.id, ListItem.kind == kind)
                )
            )
        return self._lists[kind]

    def place(self, old: ListItem) -> Match:
        if old.id in self.found:
            return self.found[old.id]
        choice = db.session.scalar(
            select(ItemChoice).where(
                ItemChoice.source_item_id == old.id, ItemChoice.target_integration_id == self.target.id
            )
        )
        if choice is not None:
            chosen = db.session.get(ListItem, choice.target_item_id) if choice.target_item_id else None
            match = Match(chosen, "votre choix" if chosen else "ignoré à la revue")
        elif old.kind in (ListKind.SUPPLIERS, ListKind.CUSTOMERS):
            # Suppliers may be hundreds of thousands: looked up in the database, not in memory.
            found = match_in_list(self.target, old.kind, PartyIdentity(old.name, old.vat_number, old.siren))
            match = (
                match_item(old, [found])
                if found
                else Match(None, "introuvable (ni le numéro de TVA, ni le SIREN, ni le nom)")
            )
        else:
            match = match_item(old, self.new_list(old.kind))
        self.found[old.id] = match
        return match


def _items_of(rule: Rule) -> list[ListItem]:
    return [rule.party] + [getattr(rule, f) for f in CODING_ITEMS if getattr(rule, f) is not None]


def prepare(dossier: Dossier, target: Integration, user: User | None) -> RuleTransfer:
    """The review: the items of the pending rules that no match and no earlier answer place."""
    placement = Placement(target)
    unresolved: dict[int, dict] = {}
    for rule in pending_rules(dossier, target):
        for old in _items_of(rule):
            match = placement.place(old)
            if match.item is None and match.how != "ignoré à la revue" and old.id not in unresolved:
                unresolved[old.id] = {
                    "item_id": old.id,
                    "kind": old.kind.value,
                    "label": item_label("account" if old.kind is ListKind.ACCOUNTS else "", old),
                    "why": match.how,
                }
    run = RuleTransfer(
        dossier_id=dossier.id,
        target_integration_id=target.id,
        status="review" if unresolved else "ready",
        to_review=list(unresolved.values()),
        created_by_id=user.id if user else None,
    )
    db.session.add(run)
    db.session.commit()
    return run


def save_choices(run: RuleTransfer, answers: dict[int, int | None], user: User | None) -> None:
    """The review's answers (old item id → new item id, or None for 'Ignorer'), kept for next time."""
    target = db.session.get(Integration, run.target_integration_id)
    for source_id, target_id in answers.items():
        if target_id is not None:
            chosen = db.session.get(ListItem, target_id)
            if chosen is None or chosen.integration_id != target.id or not chosen.active:
                raise ValueError("Choisissez un élément actif de la liste du nouveau logiciel.")
        choice = db.session.scalar(
            select(ItemChoice).where(
                ItemChoice.source_item_id == source_id, ItemChoice.target_integration_id == target.id
            )
        ) or ItemChoice(dossier_id=run.dossier_id, source_item_id=source_id, target_integration_id=target.id)
        choice.target_item_id = target_id
        choice.chosen_by_id = user.id if user else None
        choice.chosen_at = utcnow()
        db.session.add(choice)
    run.status = "ready"
    db.session.commit()


def transfer(run_id: int, user_id: int | None = None, job_run_id: int | None = None) -> dict:
    """Write the new rules (the job's work). Returns, and keeps, the report."""
    run = db.session.get(RuleTransfer, run_id)
    target = db.session.get(Integration, run.target_integration_id)
    dossier = db.session.get(Dossier, run.dossier_id)
    placement = Placement(target)
    reverse_charge_possible = has_reverse_charge(target)
    report: dict[str, list] = {"whole": [], "partial": [], "not": []}
    rules = pending_rules(dossier, target)
    for index, old in enumerate(rules, start=1):
        report_progress(int(index * 100 / max(len(rules), 1)), f"Règle {index} sur {len(rules)}")
        party = placement.place(old.party)
        entry = {"rule_id": old.id, "party": old.party.name, "kind": old.party_kind.value, "fields": []}
        if party.item is None:
            entry["why"] = (
                f"{'Fournisseur' if old.party_kind is PartyKind.SUPPLIER else 'Client'} {party.how}."
            )
            report["not"].append(entry)
            continue
        existing = db.session.scalar(
            select(Rule.id).where(
                Rule.integration_id == target.id,
                Rule.party_kind == old.party_kind,
                Rule.party_id == party.item.id,
            )
        )
        if existing is not None:
            entry["why"] = f"« {party.item.name} » a déjà une règle dans {target.software_name}."
            entry["new_rule_id"] = existing
            report["not"].append(entry)
            continue
        new = Rule(
            dossier_id=dossier.id,
            integration_id=target.id,
            party_kind=old.party_kind,
            party_id=party.item.id,
            due_days=old.due_days,
            paid=old.paid,
            currency=old.currency,
            description=old.description,
            auto_publish=old.auto_publish,
            reverse_charge=old.reverse_charge and reverse_charge_possible,
            created_by_id=user_id,
        )
        if old.reverse_charge and not reverse_charge_possible:
            entry["fields"].append(
                {
                    "field": "Autoliquidation",
                    "why": f"{target.software_name} n'a pas de compte de TVA autoliquidée",
                }
            )
        for name in CODING_ITEMS:
            item = getattr(old, name)
            if item is None:
                continue
            match = placement.place(item)
            if match.item is not None:
                setattr(new, f"{name}_id", match.item.id)
            else:
                entry["fields"].append(
                    {"field": ITEM_WHAT[name].split(" ", 1)[1], "why": f"« {item.name} » {match.how}"}
                )
        db.session.add(new)
        db.session.flush()
        old.transferred_to_id = new.id
        entry["new_rule_id"] = new.id
        report["partial" if entry["fields"] else "whole"].append(entry)
    run.report = report
    run.status = "done"
    run.finished_at = utcnow()
    counts = {k: len(v) for k, v in report.items()}
    record_event(
        dossier_id=dossier.id,
        integration_id=target.id,
        actor_id=user_id,
        job_run_id=job_run_id,
        kind="rules.transferred",
        message=(
            f"Règles transférées vers {target.software_name} : {counts['whole']} entières, "
            f"{counts['partial']} avec des champs vides, {counts['not']} non transférées."
        ),
        details={"transfer_id": run.id, **counts, "report": report},
    )
    db.session.commit()
    return report


__all__ = ["lists_ready", "pending_rules", "prepare", "save_choices", "transfer"]
