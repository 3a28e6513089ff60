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
from datetime import timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import aliased

from webapp.extensions import db
from webapp.models import (
    Dossier,
    Integration,
    IntegrationStatus,
    ItemChoice,
    JobRun,
    JobStatus,
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
from webapp.services.jobs import CRASHED_MESSAGE, UNEXPECTED_MESSAGE, job_view, report_progress
from webapp.services.matching import ListIndex, Match, match_item
from webapp.services.parties import (
    PartyIdentity,
    normalise_name,
    normalise_siren,
    normalise_vat,
    siren_from_vat,
)
from webapp.services.rules import has_reverse_charge

FIELD_KINDS = {
    "account": ListKind.ACCOUNTS,
    "tax_rate": ListKind.TAX_RATES,
    "payment_method": ListKind.PAYMENT_METHODS,
    "tracking": ListKind.TRACKING_CATEGORIES,
}
PARTY_LISTS = {PartyKind.SUPPLIER: ListKind.SUPPLIERS, PartyKind.CUSTOMER: ListKind.CUSTOMERS}
ITEM_FIELDS = (
    ListItem.id,
    ListItem.kind,
    ListItem.name,
    ListItem.code,
    ListItem.vat_number,
    ListItem.siren,
    ListItem.rate,
    ListItem.active,
)


def lists_ready(target: Integration) -> str:
    """'' when the new lists have loaded; else why 'Transférer les règles' must wait, in French."""
    syncs = list(db.session.scalars(select(ListSync).where(ListSync.integration_id == target.id)))
    if len(syncs) < len(ListKind) or any(s.last_loaded_at is None for s in syncs):
        return f"Disponible quand les listes de {target.software_name} auront fini de se charger."
    return ""


@dataclass
class Placement:
    """Where each old item lands in the new lists. The new lists and the user's earlier answers are
    read once and indexed in memory: a transfer of thousands of rules makes no query per rule."""

    target: Integration
    found: dict[int, Match] = field(default_factory=dict)
    _lists: dict[ListKind, list[ListItem]] = field(default_factory=dict)
    _party_index: dict[ListKind, dict[str, dict]] = field(default_factory=dict)
    _choices: dict[int, int | None] | None = None
    _indexes: dict[ListKind, ListIndex] = field(default_factory=dict)

    def new_list(self, kind: ListKind) -> list:
        """The active items of one new list, as plain rows (id, name, code, …): no ORM object each."""
        if kind not in self._lists:
            self._lists[kind] = list(
                db.session.execute(
                    select(*ITEM_FIELDS).where(
                        ListItem.integration_id == self.target.id,
                        ListItem.kind == kind,
                        ListItem.active.is_(True),
                    )
                )
            )
        return self._lists[kind]

    def _parties(self, kind: ListKind) -> dict[str, dict]:
        if kind not in self._party_index:
            by_vat: dict[str, ListItem] = {}
            by_siren: dict[str, ListItem] = {}
            by_name: dict[str, list[ListItem]] = {}
            for item in self.new_list(kind):
                vat = normalise_vat(item.vat_number)
                if vat:
                    by_vat.setdefault(vat, item)
                for siren in (normalise_siren(item.siren), siren_from_vat(item.vat_number)):
                    if siren:
                        by_siren.setdefault(siren, item)
                by_name.setdefault(normalise_name(item.name), []).append(item)
            self._party_index[kind] = {"vat": by_vat, "siren": by_siren, "name": by_name}
        return self._party_index[kind]

    def _choice(self, item_id: int) -> tuple[bool, int | None]:
        if self._choices is None:
            self._choices = dict(
                db.session.execute(
                    select(ItemChoice.source_item_id, ItemChoice.target_item_id).where(
                        ItemChoice.target_integration_id == self.target.id
                    )
                ).all()
            )
        return (item_id in self._choices, self._choices.get(item_id))

    def _place_party(self, old: ListItem) -> Match:
        index = self._parties(old.kind)
        identity = PartyIdentity(old.name, old.vat_number, old.siren)
        if identity.vat and identity.vat in index["vat"]:
            return Match(index["vat"][identity.vat], "par numéro de TVA")
        if identity.siren_digits and identity.siren_digits in index["siren"]:
            return Match(index["siren"][identity.siren_digits], "par SIREN")
        named = index["name"].get(identity.key_name, []) if identity.key_name else []
        if len(named) == 1:
            return Match(named[0], "par nom")
        if len(named) > 1:
            return Match(None, f"plusieurs tiers s'appellent « {old.name} »")
        return Match(None, "introuvable (ni le numéro de TVA, ni le SIREN, ni le nom)")

    def place(self, old: ListItem) -> Match:
        if old.id in self.found:
            return self.found[old.id]
        answered, chosen_id = self._choice(old.id)
        if answered:
            chosen = db.session.get(ListItem, chosen_id) if chosen_id else None
            match = Match(chosen, "votre choix" if chosen else "ignoré à la revue")
        elif old.kind in (ListKind.SUPPLIERS, ListKind.CUSTOMERS):
            match = self._place_party(old)
        else:
            if old.kind not in self._indexes:
                self._indexes[old.kind] = ListIndex(self.new_list(old.kind))
            match = match_item(old, self._indexes[old.kind].candidates(old))
        self.found[old.id] = match
        return match


RULE_FIELDS = (
    Rule.id,
    Rule.party_kind,
    Rule.party_id,
    Rule.account_id,
    Rule.tax_rate_id,
    Rule.payment_method_id,
    Rule.tracking_id,
    Rule.due_days,
    Rule.paid,
    Rule.currency,
    Rule.description,
    Rule.auto_publish,
    Rule.reverse_charge,
)


def _pending(dossier: Dossier, target: Integration) -> tuple[list, dict[int, object]]:
    """The pending rules and the old items they point to, as plain rows read in a few queries."""
    rules = db.session.execute(
        select(*RULE_FIELDS)
        .join(Integration, Rule.integration_id == Integration.id)
        .where(*awaiting_transfer(dossier.id), Integration.id != target.id)
        .order_by(Rule.id)
    ).all()
    wanted = sorted({getattr(r, f"{name}_id") for r in rules for name in ("party", *CODING_ITEMS)} - {None})
    items: dict[int, object] = {}
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        items.update(
            (row.id, row) for row in db.session.execute(select(*ITEM_FIELDS).where(ListItem.id.in_(chunk)))
        )
    return rules, items


# Made once: a new alias per call rebuilt its column collection each time, most of the cost of the
# count the 'Intégration' page shows.
_COPY = aliased(Rule, name="transferred_copy")
_TRANSFERRED = select(_COPY.id).where(_COPY.transferred_from_id == Rule.id).exists()


def transferred():
    """A rule some rule was written from by a transfer."""
    return _TRANSFERRED


def awaiting_transfer(dossier_id: int) -> tuple:
    """The conditions of a rule 'À transférer' (the query joins Integration): a rule of one of the
    dossier's disconnected integrations that no transfer has written a rule from."""
    return (
        Rule.dossier_id == dossier_id,
        Integration.status == IntegrationStatus.DISCONNECTED,
        ~transferred(),
    )


def pending_count(dossier: Dossier, target: Integration) -> int:
    """How many rules wait for a transfer: one count, not the rules and their items."""
    return db.session.scalar(
        select(func.count(Rule.id))
        .join(Integration, Rule.integration_id == Integration.id)
        .where(*awaiting_transfer(dossier.id), Integration.id != target.id)
    )


def _items_of(rule, items: dict[int, object]) -> list:
    return [
        items[i] for i in (rule.party_id, *(getattr(rule, f"{f}_id") for f in CODING_ITEMS)) if i is not None
    ]


def prepare(dossier: Dossier, target: Integration, user: User | None) -> RuleTransfer:
    """The review: the items of the pending rules that no match and no earlier answer place."""
    placement = Placement(target)
    unresolved: dict[int, dict] = {}
    rules, items = _pending(dossier, target)
    for rule in rules:
        for old in _items_of(rule, items):
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
    rules, items = _pending(dossier, target)
    # The new integration's rules by party: one read, then kept up to date as rules are written.
    taken: dict[tuple, int | None] = {
        (kind, party_id): rule_id
        for kind, party_id, rule_id in db.session.execute(
            select(Rule.party_kind, Rule.party_id, Rule.id).where(Rule.integration_id == target.id)
        )
    }
    now = utcnow()
    new_rows: list[dict] = []
    written: list[tuple[int, tuple, dict]] = []
    for index, old in enumerate(rules, start=1):
        if index % 500 == 0 or index == len(rules):
            report_progress(int(index * 100 / max(len(rules), 1)), f"Règle {index} sur {len(rules)}")
        old_party = items[old.party_id]
        party = placement.place(old_party)
        entry = {"rule_id": old.id, "party": old_party.name, "kind": old.party_kind.value, "fields": []}
        if party.item is None:
            who = "Fournisseur" if old.party_kind is PartyKind.SUPPLIER else "Client"
            entry["why"] = f"{who} {party.how}."
            report["not"].append(entry)
            continue
        key = (old.party_kind, party.item.id)
        existing = taken.get(key, 0)
        if existing != 0:
            entry["why"] = f"« {party.item.name} » a déjà une règle dans {target.software_name}."
            if existing is not None:
                entry["new_rule_id"] = existing
            report["not"].append(entry)
            continue
        values = {
            "dossier_id": dossier.id,
            "integration_id": target.id,
            "party_kind": old.party_kind,
            "party_id": party.item.id,
            "due_days": old.due_days,
            "paid": old.paid,
            "currency": old.currency,
            "description": old.description,
            "auto_publish": old.auto_publish,
            "reverse_charge": old.reverse_charge and reverse_charge_possible,
            "created_by_id": user_id,
            "transferred_from_id": old.id,
            "created_at": now,
            "updated_at": now,
        }
        if old.reverse_charge and not reverse_charge_possible:
            entry["fields"].append(
                {
                    "field": "Autoliquidation",
                    "why": f"{target.software_name} n'a pas de compte de TVA autoliquidée",
                }
            )
        for name in CODING_ITEMS:
            item_id = getattr(old, f"{name}_id")
            if item_id is None:
                values[f"{name}_id"] = None
                continue
            item = items[item_id]
            match = placement.place(item)
            values[f"{name}_id"] = match.item.id if match.item is not None else None
            if match.item is None:
                entry["fields"].append(
                    {"field": ITEM_WHAT[name].split(" ", 1)[1], "why": f"« {item.name} » {match.how}"}
                )
        new_rows.append(values)
        taken[key] = None  # another old rule of that party is not written
        written.append((old.id, key, entry))
        report["partial" if entry["fields"] else "whole"].append(entry)
    if new_rows:
        # Written in bulk, each new rule naming its old one: a few statements whatever their number.
        db.session.execute(insert(Rule), new_rows)
        new_ids = dict(
            db.session.execute(
                select(Rule.transferred_from_id, Rule.id).where(
                    Rule.integration_id == target.id, Rule.transferred_from_id.is_not(None)
                )
            ).all()
        )
        for old_id, _key, entry in written:
            entry["new_rule_id"] = new_ids[old_id]
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
        # The rules needing attention; the whole report stays with the transfer (rule_transfer).
        details={"transfer_id": run.id, **counts, "partial": report["partial"], "not": report["not"]},
    )
    db.session.commit()
    return report


def transfer_failure(run: RuleTransfer) -> str:
    """Why a transfer that is not done will not end by itself: its job failed (the worker was
    killed, an error) — then nothing was written, the transfer being one transaction — or its job
    record is gone. Empty while it may still end."""
    if run.status != "ready":
        return ""
    if run.job_run_id is None:
        return "" if run.created_at > utcnow() - timedelta(minutes=10) else UNEXPECTED_MESSAGE
    job = db.session.get(JobRun, run.job_run_id)
    while True:  # a job relaunched from the jobs' list carries on the same transfer
        retry = db.session.scalar(select(JobRun).where(JobRun.retry_of_id == job.id).limit(1))
        if retry is None:
            break
        job = retry
    view = job_view(job)
    if view.finished and job.status is JobStatus.FAILED:
        return job.message or CRASHED_MESSAGE
    return ""


__all__ = ["lists_ready", "pending_count", "prepare", "save_choices", "transfer", "transfer_failure"]
