"""Documents: checked creation, coding from the rules, and the 'Documents' list."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Integration,
    ListItem,
    ListKind,
    PartyKind,
    Rule,
    User,
)
from webapp.models.coding import CODING_ITEMS, usable_for_coding
from webapp.services.events import record_event
from webapp.services.rules import CURRENCIES

MAX_PDF_BYTES = 10 * 1024 * 1024
CENT = Decimal("0.01")
PARTY_LIST = {Direction.PURCHASE: ListKind.SUPPLIERS, Direction.SALE: ListKind.CUSTOMERS}
PARTY_KIND = {Direction.PURCHASE: PartyKind.SUPPLIER, Direction.SALE: PartyKind.CUSTOMER}


class DocumentError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def parse_amount(raw: str | None) -> Decimal | None:
    """'1 234,56', '1234.56' or '1 234,56 €' as a Decimal; None if it is not an amount."""
    if raw is None:
        return None
    text = re.sub(r"[\s\u00a0\u202f€]", "", raw)
    if not text:
        return None
    if "," in text and "." in text:
        text = text.replace(".", "")  # 1.234,56: dots group the thousands
    text = text.replace(",", ".")
    if not re.fullmatch(r"-?\d+(\.\d+)?", text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if value != value.quantize(CENT):
        return None  # more than two decimals: refused rather than rounded behind the user's back
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class DocumentInput:
    party_id: int | None
    number: str
    issue_date: date | None
    amount_ht: str
    amount_tva: str
    amount_ttc: str
    currency: str
    pdf_name: str | None = None
    pdf_data: bytes | None = None


def create_document(
    integration: Integration, direction: Direction, data: DocumentInput, user: User | None, *, today: date
) -> Document:
    errors: dict[str, str] = {}
    party = db.session.get(ListItem, data.party_id) if data.party_id else None
    who = "fournisseur" if direction is Direction.PURCHASE else "client"
    if party is None or party.integration_id != integration.id or party.kind is not PARTY_LIST[direction]:
        errors["party_id"] = f"Choisissez le {who} dans la liste."
    elif not party.active:
        errors["party_id"] = f"« {party.name} » est inactif dans le logiciel comptable."
    number = data.number.strip()
    if not number:
        errors["number"] = "Le numéro de facture est obligatoire."
    elif len(number) > 60:
        errors["number"] = "Le numéro de facture ne peut dépasser 60 caractères."
    if data.issue_date is None:
        errors["issue_date"] = "La date de facture est obligatoire (jj/mm/aaaa)."
    elif not date(2000, 1, 1) <= data.issue_date <= today + timedelta(days=366):
        errors["issue_date"] = "La date de facture doit être comprise entre 2000 et l'an prochain."
    amounts = {}
    for field, label in (("amount_ht", "hors taxes"), ("amount_tva", "de TVA"), ("amount_ttc", "TTC")):
        value = parse_amount(getattr(data, field))
        if value is None:
            errors[field] = f"Saisissez le montant {label} en euros et centimes (par exemple 1 234,56)."
        elif value < 0:
            errors[field] = f"Le montant {label} ne peut être négatif."
        amounts[field] = value
    if (
        not errors.keys() & amounts.keys()
        and amounts["amount_ht"] + amounts["amount_tva"] != amounts["amount_ttc"]
    ):
        errors["amount_ttc"] = (
            f"Le montant TTC doit être la somme du HT et de la TVA "
            f"({amounts['amount_ht'] + amounts['amount_tva']} et non {amounts['amount_ttc']})."
        )
    if data.currency not in CURRENCIES:
        errors["currency"] = "Choisissez une devise de la liste."
    if data.pdf_data is not None:
        if len(data.pdf_data) > MAX_PDF_BYTES:
            errors["pdf"] = "Le PDF dépasse 10 Mo."
        elif not data.pdf_data.startswith(b"%PDF-"):
            errors["pdf"] = "Le fichier joint doit être un PDF."
    if errors:
        raise DocumentError(errors)

    document = Document(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        direction=direction,
        party_id=party.id,
        number=number,
        issue_date=data.issue_date,
        currency=data.currency,
        pdf_name=(data.pdf_name or "facture.pdf")[:200] if data.pdf_data else None,
        pdf_data=data.pdf_data,
        created_by_id=user.id if user else None,
        **amounts,
    )
    apply_rule(document)
    db.session.add(document)
    db.session.flush()
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        actor_id=user.id if user else None,
        kind="document.created",
        message=f"{direction.label} {number} de « {party.name} » ajoutée ({document.status.label}).",
        details={"document_id": document.id, "rule_id": document.rule_id},
    )
    db.session.commit()
    rule = db.session.get(Rule, document.rule_id) if document.rule_id else None
    if rule is not None and rule.auto_publish and document.status is DocumentStatus.READY:
        from webapp.services.publishing import request_publication

        request_publication([document], user)
    return document


def apply_rule(document: Document) -> None:
    """Fill the coding the document lacks from its party's rule, then set 'Prêt' or 'À réviser'.

    Precedence: what the document already has, over the supplier or customer rule. Items the
    rule points to that left the lists are not copied: the document then stays 'À réviser'.
    """
    rule = db.session.scalar(
        select(Rule).where(
            Rule.integration_id == document.integration_id,
            Rule.party_kind == PARTY_KIND[document.direction],
            Rule.party_id == document.party_id,
        )
    )
    if rule is not None:
        document.rule_id = rule.id
        for field in CODING_ITEMS:
            item = getattr(rule, field)
            if getattr(document, f"{field}_id") is None and usable_for_coding(field, item):
                setattr(document, f"{field}_id", item.id)
        if document.due_date is None and rule.due_days is not None and document.issue_date:
            document.due_date = document.issue_date + timedelta(days=rule.due_days)
        if document.paid is None:
            document.paid = rule.paid
        if not document.description:
            document.description = rule.description
    set_coding_status(document)


def set_coding_status(document: Document) -> None:
    """'Prêt' when nothing is missing from the coding, 'À réviser' otherwise."""
    document.status = DocumentStatus.TO_REVIEW if document.missing_coding else DocumentStatus.READY


def documents_for(integration: Integration, status: DocumentStatus | None):
    query = select(Document).where(Document.integration_id == integration.id)
    if status is not None:
        query = query.where(Document.status == status)
    return list(db.session.scalars(query.order_by(Document.created_at.desc(), Document.id.desc()).limit(200)))


def counts_by_status(integration: Integration) -> dict[DocumentStatus, int]:
    rows = db.session.execute(
        select(Document.status, func.count())
        .where(Document.integration_id == integration.id)
        .group_by(Document.status)
    ).all()
    return dict(rows)


WAITING = (DocumentStatus.TO_REVIEW, DocumentStatus.READY, DocumentStatus.FAILED)


def reapply_rule(rule: Rule, user: User | None) -> int:
    """'Appliquer à toutes les factures du fournisseur de la Boîte de réception'.

    The rule's coding replaces that of every invoice of its party still waiting (not published,
    not being published); each is then 'Prêt' or 'À réviser' again. Returns how many changed.
    """
    documents = db.session.scalars(
        select(Document).where(
            Document.integration_id == rule.integration_id,
            Document.party_id == rule.party_id,
            Document.status.in_(WAITING),
        )
    ).all()
    for document in documents:
        for field in CODING_ITEMS:
            item = getattr(rule, field)
            setattr(document, f"{field}_id", item.id if usable_for_coding(field, item) else None)
        if rule.due_days is not None:
            document.due_date = document.issue_date + timedelta(days=rule.due_days)
        document.paid = rule.paid
        document.description = rule.description
        document.failure_reason = ""
        document.failure_detail = ""
        document.rule_id = rule.id
        set_coding_status(document)
    record_event(
        dossier_id=rule.dossier_id,
        integration_id=rule.integration_id,
        actor_id=user.id if user else None,
        kind="rule.reapplied",
        message=f"Règle « {rule.party.name} » appliquée à {len(documents)} facture(s) en attente.",
        details={"rule_id": rule.id, "documents": [d.id for d in documents]},
    )
    db.session.commit()
    return len(documents)
