"""'Transférer les règles': what the user made on a disconnected integration carried over to the new software.

Two steps. The preparation places every item the rules, the payment-method rules, the 'Codage par
défaut' and the waiting documents point to in the new lists (webapp.services.matching, or the
user's earlier answer); the items it cannot place are shown for review (a choice in the new list, or
'Ignorer'), and the answers are kept. The transfer then, in one transaction:
- writes one new rule per old rule whose supplier or customer was placed, one new payment-method
  rule per old one whose payment method was placed, and the defaults the new software does not have
  yet, leaving empty (and saying why) the fields it could not place, each new one naming its old one;
- moves the documents still waiting to be published (À réviser, Prêt, Échec) to the new software,
  recoded on its lists (webapp.services.transfer_documents): nothing is published by the move.
An old rule is never changed otherwise nor deleted; one not transferred stays 'À transférer'. The
published documents stay with the software they were published to. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import func, insert, select
from sqlalchemy.orm import aliased

from webapp import collector
from webapp.extensions import db
from webapp.models import (
    CodingDefault,
    Document,
    DocumentStatus,
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
    PaymentRule,
    Rule,
    RuleTransfer,
    User,
)
from webapp.models.base import utcnow
from webapp.models.coding import CODING_ITEMS, item_label
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
from webapp.services.transfer_documents import FIELD_WORDS, carry_documents, release_finished_publications

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


def rules_outcome(whole: int, partial: int, refused: int, *, named: bool = False) -> str:
    """'2 entières, aucune avec des champs vides, 1 non transférée': the party rules a transfer wrote;
    `named` says the rules in the first count ('2 règles transférées entières, …'), as the job does."""
    if named:
        first = (
            _("aucune règle transférée entière")
            if whole == 0
            else ngettext("%(num)d règle transférée entière", "%(num)d règles transférées entières", whole)
        )
    else:
        first = _("aucune entière") if whole == 0 else ngettext("%(num)d entière", "%(num)d entières", whole)
    return ", ".join(
        (
            first,
            _("aucune avec des champs vides")
            if partial == 0
            else ngettext("%(num)d avec des champs vides", "%(num)d avec des champs vides", partial),
            _("aucune non transférée")
            if refused == 0
            else ngettext("%(num)d non transférée", "%(num)d non transférées", refused),
        )
    )


def documents_moved(documents: dict) -> str:
    """'Documents : 3 transférés, dont 1 à réviser.': the waiting invoices a transfer carried."""
    moved, to_review = documents.get("moved", 0), documents.get("to_review", 0)
    if moved == 0:
        return _("Documents : aucun transféré.")
    if to_review == 0:
        return ngettext(
            "Documents : %(num)d transféré, aucun à réviser.",
            "Documents : %(num)d transférés, aucun à réviser.",
            moved,
        )
    return ngettext(
        "Documents : %(num)d transféré, dont %(review)d à réviser.",
        "Documents : %(num)d transférés, dont %(review)d à réviser.",
        moved,
        review=to_review,
    )


def lists_ready(target: Integration) -> str:
    """'' when the new lists have loaded; else why 'Transférer les règles' must wait, in French."""
    syncs = list(db.session.scalars(select(ListSync).where(ListSync.integration_id == target.id)))
    if len(syncs) < len(ListKind) or any(s.last_loaded_at is None for s in syncs):
        return _(
            "Disponible quand les listes de %(software)s auront fini de se charger.",
            software=target.software_name,
        )
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
    _hows: dict[str, str] = field(default_factory=dict)

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

    def _how(self, key: str) -> str:
        """How a party was found, translated once per transfer (not once per rule)."""
        if not self._hows:
            self._hows.update(vat=_("par numéro de TVA"), siren=_("par SIREN"), name=_("par nom"))
        return self._hows[key]

    def _place_party(self, old: ListItem) -> Match:
        index = self._parties(old.kind)
        identity = PartyIdentity(old.name, old.vat_number, old.siren)
        if identity.vat and identity.vat in index["vat"]:
            return Match(index["vat"][identity.vat], self._how("vat"))
        if identity.siren_digits and identity.siren_digits in index["siren"]:
            return Match(index["siren"][identity.siren_digits], self._how("siren"))
        named = index["name"].get(identity.key_name, []) if identity.key_name else []
        if len(named) == 1:
            return Match(named[0], self._how("name"))
        if len(named) > 1:
            return Match(None, _("plusieurs tiers s'appellent « %(name)s »", name=old.name))
        return Match(None, _("introuvable (ni le numéro de TVA, ni le SIREN, ni le nom)"))

    def place(self, old: ListItem) -> Match:
        if old.id in self.found:
            return self.found[old.id]
        answered, chosen_id = self._choice(old.id)
        if answered:
            chosen = db.session.get(ListItem, chosen_id) if chosen_id else None
            match = Match(chosen, _("votre choix") if chosen else _("ignoré à la revue"), ignored=not chosen)
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
LAYER_FIELDS = (
    "direction",
    "account_id",
    "tax_rate_id",
    "payment_method_id",
    "tracking_id",
    "due_days",
    "paid",
)
PAYMENT_RULE_FIELDS = (
    PaymentRule.id,
    PaymentRule.description,
    *(getattr(PaymentRule, f) for f in LAYER_FIELDS),
)
DEFAULT_FIELDS = (
    CodingDefault.id,
    CodingDefault.description,
    *(getattr(CodingDefault, f) for f in LAYER_FIELDS),
)
DOCUMENT_FIELDS = (
    Document.id,
    Document.integration_id,
    Document.direction,
    Document.status,
    Document.number,
    Document.party_id,
    Document.party_name,
    Document.party_vat_number,
    Document.party_siren,
    Document.account_id,
    Document.tax_rate_id,
    Document.payment_method_id,
    Document.tracking_id,
    Document.rule_id,
    Document.payment_rule_id,
)


# Made once: a new alias per call rebuilt its column collection each time, most of the cost of the
# count the 'Intégration' page shows.
_COPY = aliased(Rule, name="transferred_copy")
_TRANSFERRED = select(_COPY.id).where(_COPY.transferred_from_id == Rule.id).exists()
_PAYMENT_COPY = aliased(PaymentRule, name="transferred_payment_rule")
_PAYMENT_TRANSFERRED = (
    select(_PAYMENT_COPY.id).where(_PAYMENT_COPY.transferred_from_id == PaymentRule.id).exists()
)
_DEFAULT_COPY = aliased(CodingDefault, name="transferred_default")
_DEFAULT_TRANSFERRED = (
    select(_DEFAULT_COPY.id).where(_DEFAULT_COPY.transferred_from_id == CodingDefault.id).exists()
)


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


def _previous(model, dossier_id: int, target_id: int) -> tuple:
    """The rows of `model` on the dossier's disconnected integrations other than `target` (the query
    joins Integration)."""
    return (
        model.dossier_id == dossier_id,
        Integration.status == IntegrationStatus.DISCONNECTED,
        Integration.id != target_id,
    )


def _pending_payment_rules(dossier_id: int, target_id: int) -> tuple:
    return (*_previous(PaymentRule, dossier_id, target_id), ~_PAYMENT_TRANSFERRED)


def _pending_defaults(dossier_id: int, target_id: int) -> tuple:
    return (*_previous(CodingDefault, dossier_id, target_id), ~_DEFAULT_TRANSFERRED)


def documents_left_behind(dossier_id: int, target_id: int) -> tuple:
    """The documents a transfer to `target` carries: those of a previous software not published
    there (the query joins Integration on Document.integration_id). 'En cours' ones are among them,
    and move once their publication has ended in failure."""
    return (*_previous(Document, dossier_id, target_id), Document.status != DocumentStatus.PUBLISHED)


@dataclass
class Pending:
    """What waits for a transfer, as plain rows read in a few queries, and the old items they point to."""

    rules: list
    payment_rules: list
    defaults: list
    documents: list
    items: dict[int, object]


def _pending(dossier: Dossier, target: Integration, *, lock: bool = False) -> Pending:
    documents_query = (
        select(*DOCUMENT_FIELDS)
        .join(Integration, Document.integration_id == Integration.id)
        .where(*documents_left_behind(dossier.id, target.id))
        .order_by(Document.id)
    )
    if lock:
        # Read first and locked (PostgreSQL): a publication, or another transfer, touching one of them
        # waits for this transaction; another transfer then reads the rules this one wrote.
        documents_query = documents_query.with_for_update(of=Document)
    documents = db.session.execute(documents_query).all()
    rules = db.session.execute(
        select(*RULE_FIELDS)
        .join(Integration, Rule.integration_id == Integration.id)
        .where(*awaiting_transfer(dossier.id), Integration.id != target.id)
        .order_by(Rule.id)
    ).all()
    payment_rules = db.session.execute(
        select(*PAYMENT_RULE_FIELDS)
        .join(Integration, PaymentRule.integration_id == Integration.id)
        .where(*_pending_payment_rules(dossier.id, target.id))
        .order_by(PaymentRule.id)
    ).all()
    # The most recent software's defaults first: they are the ones the new software takes.
    defaults = db.session.execute(
        select(*DEFAULT_FIELDS)
        .join(Integration, CodingDefault.integration_id == Integration.id)
        .where(*_pending_defaults(dossier.id, target.id))
        .order_by(Integration.created_at.desc(), Integration.id.desc(), CodingDefault.id)
    ).all()
    wanted = {r.party_id for r in rules} | {d.party_id for d in documents}
    for row in (*rules, *payment_rules, *defaults, *documents):
        wanted.update(getattr(row, f"{name}_id") for name in CODING_ITEMS)
    wanted = sorted(wanted - {None})
    items: dict[int, object] = {}
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        items.update(
            (row.id, row) for row in db.session.execute(select(*ITEM_FIELDS).where(ListItem.id.in_(chunk)))
        )
    return Pending(rules, payment_rules, defaults, documents, items)


def pending_count(dossier: Dossier, target: Integration) -> int:
    """How many rules wait for a transfer: one count, not the rules and their items."""
    return db.session.scalar(
        select(func.count(Rule.id))
        .join(Integration, Rule.integration_id == Integration.id)
        .where(*awaiting_transfer(dossier.id), Integration.id != target.id)
    )


@dataclass(frozen=True)
class PendingCounts:
    rules: int
    payment_rules: int
    defaults: int
    documents: int

    def __bool__(self) -> bool:
        return bool(self.rules or self.payment_rules or self.defaults or self.documents)

    @property
    def besides_rules(self) -> list[str]:
        """What the transfer carries besides the party rules, in French, for the 'Intégration' page."""
        said = []
        if self.payment_rules:
            said.append(
                ngettext(
                    "%(num)d règle moyen de paiement",
                    "%(num)d règles moyens de paiement",
                    self.payment_rules,
                )
            )
        if self.defaults:
            said.append(_("le codage par défaut"))
        if self.documents:
            said.append(
                ngettext(
                    "%(num)d document en attente de publication",
                    "%(num)d documents en attente de publication",
                    self.documents,
                )
            )
        return said


def pending_summary(dossier: Dossier, target: Integration) -> PendingCounts:
    """What a transfer to `target` would carry: one count of each."""

    def count(model, conditions) -> int:
        return db.session.scalar(
            select(func.count(model.id))
            .join(Integration, model.integration_id == Integration.id)
            .where(*conditions)
        )

    return PendingCounts(
        rules=pending_count(dossier, target),
        payment_rules=count(PaymentRule, _pending_payment_rules(dossier.id, target.id)),
        defaults=count(CodingDefault, _pending_defaults(dossier.id, target.id)),
        documents=count(Document, documents_left_behind(dossier.id, target.id)),
    )


def _items_of(row, items: dict[int, object], *, party: bool) -> list:
    ids = (row.party_id if party else None, *(getattr(row, f"{f}_id") for f in CODING_ITEMS))
    return [items[i] for i in ids if i is not None]


def prepare(dossier: Dossier, target: Integration, user: User | None) -> RuleTransfer:
    """The review: the items of what waits for a transfer that no match and no earlier answer place."""
    placement = Placement(target)
    unresolved: dict[int, dict] = {}
    pending = _pending(dossier, target)
    olds = [
        *(old for rule in pending.rules for old in _items_of(rule, pending.items, party=True)),
        *(
            old
            for row in (*pending.payment_rules, *pending.defaults)
            for old in _items_of(row, pending.items, party=False)
        ),
        *(old for doc in pending.documents for old in _items_of(doc, pending.items, party=True)),
    ]
    for old in olds:
        match = placement.place(old)
        if match.item is None and not match.ignored and old.id not in unresolved:
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
                raise ValueError(_("Choisissez un élément actif de la liste du nouveau logiciel."))
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


def _place_fields(
    old, items: dict[int, object], placement: Placement, values: dict, entry: dict, fields
) -> None:
    """The new list's item for each coding field of `old`, into `values`; each field that cannot be
    placed is left empty and said in `entry` (which field, and why)."""
    for name in fields:
        item_id = getattr(old, f"{name}_id")
        if item_id is None:
            values[f"{name}_id"] = None
            continue
        item = items[item_id]
        match = placement.place(item)
        values[f"{name}_id"] = match.item.id if match.item is not None else None
        if match.item is None:
            entry["fields"].append(
                {
                    "field": str(FIELD_WORDS[name]),
                    "why": _("« %(name)s » %(how)s", name=item.name, how=match.how),
                }
            )


class _Progress:
    """The job's progress over everything the transfer writes, said every few hundred items."""

    def __init__(self, total: int):
        self.total, self.done = max(total, 1), 0

    def step(self, what: str) -> None:
        self.done += 1
        if self.done % 500 == 0 or self.done == self.total:
            report_progress(
                int(self.done * 100 / self.total),
                _("%(what)s %(done)d sur %(total)d", what=what, done=self.done, total=self.total),
            )


# What the progress counts, said every few hundred items (translated then, not for each item).
ELEMENT = _l("Élément")


def _write_rules(
    pending: Pending,
    placement: Placement,
    target: Integration,
    dossier: Dossier,
    user_id: int | None,
    now,
    progress: _Progress,
) -> dict[str, list]:
    report: dict[str, list] = {"whole": [], "partial": [], "not": []}
    reverse_charge_possible = has_reverse_charge(target)
    items = pending.items
    # The new integration's rules by party: one read, then kept up to date as rules are written.
    taken: dict[tuple, int | None] = {
        (kind, party_id): rule_id
        for kind, party_id, rule_id in db.session.execute(
            select(Rule.party_kind, Rule.party_id, Rule.id).where(Rule.integration_id == target.id)
        )
    }
    new_rows: list[dict] = []
    written: list[tuple[int, tuple, dict]] = []
    for old in pending.rules:
        progress.step(ELEMENT)
        old_party = items[old.party_id]
        party = placement.place(old_party)
        entry = {"rule_id": old.id, "party": old_party.name, "kind": old.party_kind.value, "fields": []}
        if party.item is None:
            if old.party_kind is PartyKind.SUPPLIER:
                entry["why"] = _("Fournisseur %(how)s.", how=party.how)
            else:
                entry["why"] = _("Client %(how)s.", how=party.how)
            report["not"].append(entry)
            continue
        key = (old.party_kind, party.item.id)
        existing = taken.get(key, 0)
        if existing != 0:
            entry["why"] = _(
                "« %(name)s » a déjà une règle dans %(software)s.",
                name=party.item.name,
                software=target.software_name,
            )
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
                    "field": _("Autoliquidation"),
                    "why": _(
                        "%(software)s n'a pas de compte de TVA autoliquidée", software=target.software_name
                    ),
                }
            )
        _place_fields(old, items, placement, values, entry, CODING_ITEMS)
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
    return report


def _write_payment_rules(
    pending: Pending,
    placement: Placement,
    target: Integration,
    dossier: Dossier,
    user_id: int | None,
    now,
    progress: _Progress,
) -> dict[str, list]:
    """The payment-method rules: one new rule per old one whose payment method is placed and has no
    rule yet in the new software (for that direction)."""
    report: dict[str, list] = {"whole": [], "partial": [], "not": []}
    taken = {
        (direction, method_id): rule_id
        for direction, method_id, rule_id in db.session.execute(
            select(PaymentRule.direction, PaymentRule.payment_method_id, PaymentRule.id).where(
                PaymentRule.integration_id == target.id
            )
        )
    }
    for old in pending.payment_rules:
        progress.step(ELEMENT)
        old_method = pending.items.get(old.payment_method_id)
        entry = {
            "payment_rule_id": old.id,
            "label": old_method.name if old_method is not None else _("Sans moyen de paiement"),
            "direction": old.direction.value,
            "fields": [],
        }
        if old_method is None:
            entry["why"] = _("La règle ne désigne aucun moyen de paiement.")
            report["not"].append(entry)
            continue
        method = placement.place(old_method)
        if method.item is None:
            entry["why"] = _("Moyen de paiement %(how)s.", how=method.how)
            report["not"].append(entry)
            continue
        key = (old.direction, method.item.id)
        if key in taken:
            entry["why"] = _(
                "« %(name)s » a déjà une règle (%(direction)s) dans %(software)s.",
                name=method.item.name,
                direction=old.direction.short_label.lower(),
                software=target.software_name,
            )
            entry["new_id"] = taken[key]
            report["not"].append(entry)
            continue
        values = {
            "dossier_id": dossier.id,
            "integration_id": target.id,
            "direction": old.direction,
            "due_days": old.due_days,
            "paid": old.paid,
            "description": old.description,
            "created_by_id": user_id,
            "transferred_from_id": old.id,
            "created_at": now,
            "updated_at": now,
        }
        _place_fields(old, pending.items, placement, values, entry, CODING_ITEMS)
        new = PaymentRule(**values)
        db.session.add(new)
        db.session.flush()
        taken[key] = entry["new_id"] = new.id
        report["partial" if entry["fields"] else "whole"].append(entry)
    return report


def _write_defaults(
    pending: Pending,
    placement: Placement,
    target: Integration,
    dossier: Dossier,
    user_id: int | None,
    now,
    progress: _Progress,
) -> dict[str, list]:
    """The 'Codage par défaut' of purchases and of sales, where the new software has none yet: the
    most recent previous software's."""
    report: dict[str, list] = {"whole": [], "partial": [], "not": []}
    taken = set(
        db.session.scalars(select(CodingDefault.direction).where(CodingDefault.integration_id == target.id))
    )
    for old in pending.defaults:
        progress.step(ELEMENT)
        entry = {
            "default_id": old.id,
            "label": old.direction.short_label,
            "direction": old.direction.value,
            "fields": [],
        }
        if old.direction in taken:
            entry["why"] = _(
                "%(software)s a déjà un codage par défaut des %(direction)s.",
                software=target.software_name,
                direction=old.direction.short_label.lower(),
            )
            report["not"].append(entry)
            continue
        values = {
            "dossier_id": dossier.id,
            "integration_id": target.id,
            "direction": old.direction,
            "due_days": old.due_days,
            "paid": old.paid,
            "description": old.description,
            "updated_by_id": user_id,
            "transferred_from_id": old.id,
            "updated_at": now,
        }
        _place_fields(old, pending.items, placement, values, entry, CODING_ITEMS)
        db.session.add(CodingDefault(**values))
        taken.add(old.direction)
        report["partial" if entry["fields"] else "whole"].append(entry)
    db.session.flush()
    return report


def transfer(run_id: int, user_id: int | None = None, job_run_id: int | None = None) -> dict:
    """Write the new rules and move the waiting documents (the job's work), all in one transaction:
    a transfer that fails has written and moved nothing. Returns, and keeps, the report."""
    with collector.paused():  # its lists and indexes live to the end (webapp.collector)
        return _transfer(run_id, user_id, job_run_id)


def _transfer(run_id: int, user_id: int | None, job_run_id: int | None) -> dict:
    run = db.session.get(RuleTransfer, run_id)
    if run.status == "done":
        return run.report  # run again (a retry after its answer was lost): it has done its work
    target = db.session.get(Integration, run.target_integration_id)
    dossier = db.session.get(Dossier, run.dossier_id)
    # A publication whose worker died releases its document first ('Échec', committed on its own, as
    # the 'Documents' page would): the document is then carried like any failed one.
    release_finished_publications(dossier.id, target.id)
    placement = Placement(target)
    pending = _pending(dossier, target, lock=True)
    now = utcnow()
    progress = _Progress(
        len(pending.rules) + len(pending.payment_rules) + len(pending.defaults) + len(pending.documents)
    )
    report: dict = _write_rules(pending, placement, target, dossier, user_id, now, progress)
    report["payment_rules"] = _write_payment_rules(
        pending, placement, target, dossier, user_id, now, progress
    )
    report["defaults"] = _write_defaults(pending, placement, target, dossier, user_id, now, progress)
    report["documents"] = carry_documents(pending.documents, pending.items, placement, target, progress.step)
    run.report = report
    run.status = "done"
    run.finished_at = utcnow()
    counts = {k: len(report[k]) for k in ("whole", "partial", "not")}
    documents = report["documents"]
    record_event(
        dossier_id=dossier.id,
        integration_id=target.id,
        actor_id=user_id,
        job_run_id=job_run_id,
        kind="rules.transferred",
        message=_(
            "Règles transférées vers %(software)s : %(rules)s. %(documents)s",
            software=target.software_name,
            rules=rules_outcome(counts["whole"], counts["partial"], counts["not"]),
            documents=documents_moved(documents),
        ),
        # The rules needing attention; the whole report stays with the transfer (rule_transfer).
        details={
            "transfer_id": run.id,
            **counts,
            "partial": report["partial"],
            "not": report["not"],
            "payment_rules": {k: len(v) for k, v in report["payment_rules"].items()},
            "defaults": {k: len(v) for k, v in report["defaults"].items()},
            "documents": documents,
        },
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
        return "" if run.created_at > utcnow() - timedelta(minutes=10) else str(UNEXPECTED_MESSAGE)
    job = db.session.get(JobRun, run.job_run_id)
    while True:  # a job relaunched from the jobs' list carries on the same transfer
        retry = db.session.scalar(select(JobRun).where(JobRun.retry_of_id == job.id).limit(1))
        if retry is None:
            break
        job = retry
    view = job_view(job)
    if view.finished and job.status is JobStatus.FAILED:
        return job.message or str(CRASHED_MESSAGE)
    return ""


__all__ = [
    "documents_left_behind",
    "lists_ready",
    "pending_count",
    "pending_summary",
    "prepare",
    "save_choices",
    "transfer",
    "transfer_failure",
]
