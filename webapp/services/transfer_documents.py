"""'Transférer les règles', for the documents: the invoices still waiting on the previous software move to
the new one, recoded on its lists.

Each waiting document (À réviser, Prêt, Échec) keeps what the invoice says (party, number, dates,
amounts, PDF) and what the user chose; its supplier or customer, account, tax rate, payment method
and tracking category are placed in the new lists like the rules' (the same matching, the same
review answers). A field that cannot be placed is left empty and the document says which and why
(Document.transfer_notes) and waits 'À réviser' until the user saves its coding. Nothing is sent
to any software: the move only changes rows, in the transfer's transaction. A document being
published ('En cours') stays until its publication ends: published, it stays with that software;
failed, the next transfer carries it. Published documents never move.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import lazyload

from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Integration,
    IntegrationStatus,
    PaymentRule,
    Rule,
)
from webapp.models.coding import CODING_ITEMS
from webapp.services.parties import normalise_siren

#: The statuses a document is moved in; 'En cours' waits for its publication to end.
MOVED = (DocumentStatus.TO_REVIEW, DocumentStatus.READY, DocumentStatus.FAILED)
#: 'compte', 'taux de TVA'…: a field's name in a report line ('compte vide (…)').
FIELD_WORDS = {
    "account": _l("compte"),
    "tax_rate": _l("taux de TVA"),
    "payment_method": _l("moyen de paiement"),
    "tracking": _l("catégorie analytique"),
}
#: What the progress counts (webapp.services.transfer), translated when it is said.
ELEMENT = _l("Élément")


def release_finished_publications(dossier_id: int, target_id: int) -> None:
    """Documents of a previous software left 'En cours' by a publication whose worker died become
    'Échec' (webapp.services.publishing.release_if_crashed), so the transfer can carry them."""
    from webapp.services.publishing import release_if_crashed

    release_if_crashed(
        list(
            db.session.scalars(
                select(Document)
                .join(Integration, Document.integration_id == Integration.id)
                .where(
                    Document.dossier_id == dossier_id,
                    Integration.status == IntegrationStatus.DISCONNECTED,
                    Integration.id != target_id,
                    Document.status == DocumentStatus.IN_PROGRESS,
                    Document.job_run_id.is_not(None),
                )
                .options(lazyload("*"))
            )
        )
    )


def _copies(model, integration_id: int) -> dict[int, int]:
    """Old rule id → the rule a transfer wrote from it in this integration."""
    return dict(
        db.session.execute(
            select(model.transferred_from_id, model.id).where(
                model.integration_id == integration_id, model.transferred_from_id.is_not(None)
            )
        ).all()
    )


def carry_documents(
    documents: list, items: dict[int, object], placement, target: Integration, step: Callable[[str], None]
) -> dict:
    """Move the waiting `documents` (plain rows, locked by the caller) to `target`, recoded through
    `placement` (webapp.services.transfer.Placement). Returns the report's part on documents."""
    software = {
        i.id: i.software_name
        for i in db.session.scalars(
            select(Integration).where(Integration.id.in_({d.integration_id for d in documents}))
        )
    }
    rule_copies = _copies(Rule, target.id)
    payment_rule_copies = _copies(PaymentRule, target.id)
    report: dict = {
        "moved": 0,
        "to_review": 0,
        "ready": 0,
        "left": [],
        "from": sorted(set(software.values())),
    }
    rows: list[dict] = []
    for document in documents:
        step(ELEMENT)
        if document.status not in MOVED:
            report["left"].append(
                {
                    "document_id": document.id,
                    "number": document.number,
                    "why": _(
                        "sa publication dans %(software)s est en cours",
                        software=software[document.integration_id],
                    ),
                }
            )
            continue
        values, notes = _recoded(document, items, placement, target)
        missing = values["account_id"] is None or values["tax_rate_id"] is None
        status = DocumentStatus.TO_REVIEW if notes or missing else DocumentStatus.READY
        values.update(
            id=document.id,
            integration_id=target.id,
            moved_from_integration_id=document.integration_id,
            status=status,
            transfer_notes=notes or None,
            # What the previous software answered, or asked, is past: the new one is asked anew.
            hold_reason="",
            failure_reason="",
            failure_detail="",
            party_creation_approved=False,
            rule_id=rule_copies.get(document.rule_id),
            payment_rule_id=payment_rule_copies.get(document.payment_rule_id),
        )
        rows.append(values)
        report["moved"] += 1
        report["to_review" if status is DocumentStatus.TO_REVIEW else "ready"] += 1
    if rows:
        # By primary key, in bulk: a few statements whatever the number of documents.
        db.session.execute(update(Document), rows)
    return report


def _recoded(document, items: dict[int, object], placement, target: Integration) -> tuple[dict, list[dict]]:
    """The document's party and coding on the new lists, and a note for each field left empty."""
    notes: list[dict] = []
    values: dict = {
        "party_id": None,
        "party_name": document.party_name,
        "party_vat_number": document.party_vat_number,
        "party_siren": document.party_siren,
    }
    if document.party_id is not None:
        old = items[document.party_id]
        match = placement.place(old)
        if match.item is not None:
            values.update(party_id=match.item.id, party_name="", party_vat_number=None, party_siren=None)
        else:
            # The invoice still names its party: looked for in the new software at publication, and
            # created there if it is not found (or chosen by the user in the list meanwhile).
            siren = normalise_siren(old.siren)
            values.update(
                party_name=old.name[:300],
                party_vat_number=old.vat_number,
                party_siren=siren if len(siren) == 9 else None,
            )
            who = _("fournisseur") if document.direction is Direction.PURCHASE else _("client")
            notes.append(
                {
                    "field": who,
                    "why": _(
                        "« %(name)s » %(how)s : il sera cherché dans %(software)s à la publication, "
                        "et créé s'il n'y est pas",
                        name=old.name,
                        how=match.how,
                        software=target.software_name,
                    ),
                }
            )
    for name in CODING_ITEMS:
        item_id = getattr(document, f"{name}_id")
        values[f"{name}_id"] = None
        if item_id is None:
            continue
        old = items[item_id]
        match = placement.place(old)
        if match.item is not None:
            values[f"{name}_id"] = match.item.id
        else:
            notes.append(
                {
                    "field": str(FIELD_WORDS[name]),
                    "why": _("« %(name)s » %(how)s", name=old.name, how=match.how),
                }
            )
    return values, notes
