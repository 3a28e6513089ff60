"""Documents: checked creation, coding from the rules, and the 'Documents' list."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import joinedload, lazyload

from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Integration,
    IntegrationStatus,
    ListItem,
    ListKind,
    Rule,
    User,
)
from webapp.services.coding import ACCOUNT_WORD, code_document, set_coding_status
from webapp.services.dossiers import siren_is_valid
from webapp.services.events import record_event
from webapp.services.parties import PartyIdentity, match_in_list, normalise_siren, vat_error
from webapp.services.rules import CURRENCIES, CodingInput, check_coding, check_item

MAX_PDF_BYTES = 10 * 1024 * 1024
CENT = Decimal("0.01")
PARTY_LIST = {Direction.PURCHASE: ListKind.SUPPLIERS, Direction.SALE: ListKind.CUSTOMERS}


class DocumentError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


#: What the amount columns hold (NUMERIC(14, 2)): SQLite would keep a bigger one changed, PostgreSQL
#: would refuse it with an error.
MAX_AMOUNT = Decimal("999999999999.99")


def _french(amount: Decimal) -> str:
    return format_decimal(amount, format="#,##0.00", locale="fr_FR")


MAX_AMOUNT_TEXT = _french(MAX_AMOUNT)


class AmountTooLarge(ValueError):
    pass


_NAME_KEEPS = re.compile(r"[^A-Za-z0-9 ()_,.-]+")


def attachment_name(name: str | None) -> str:
    """The name a PDF is sent to the software and served under: the user's file name, without a
    folder, accents or anything a URL, a header or a file system reads otherwise ('..' in a URL path
    sent the PDF to the invoice itself), always ending in .pdf. The user's own name stays on display."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFKD", name or ""))[-1]
    base = "".join(char for char in base if not unicodedata.combining(char))
    stem = base[:-4] if base.lower().endswith(".pdf") else base
    stem = re.sub(r"\s+", " ", _NAME_KEEPS.sub("_", stem)).strip(" ._-")[:100].strip(" ._-")
    return f"{stem or 'facture'}.pdf"


def parse_amount(raw: str | None) -> Decimal | None:
    """'1 234,56', '1234.56' or '1 234,56 €' as a Decimal; None if it is not an amount; AmountTooLarge
    beyond what the database holds (never a changed amount)."""
    if raw is None:
        return None
    text = re.sub(r"[\s\u00a0\u202f€]", "", raw)
    if not text:
        return None
    if "," in text and "." in text:
        # Both marks: the last one separates the cents, the other groups thousands by three
        # ('1.234,56' as in France, '1,234.56' as in English). Anything else is ambiguous.
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        group_mark = "." if decimal_mark == "," else ","
        whole, _mark, cents = text.rpartition(decimal_mark)
        if not re.fullmatch(rf"-?[0-9]{{1,3}}(\{group_mark}[0-9]{{3}})+", whole):
            return None
        text = f"{whole.replace(group_mark, '')}.{cents}"
    text = text.replace(",", ".")
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text):
        return None
    if len(text.lstrip("-").split(".")[0].lstrip("0")) > 12:
        raise AmountTooLarge(text)
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
    payment_method_id: int | None = None
    # A party the list does not hold: what the invoice says of it (used when party_id is None).
    new_party: PartyIdentity | None = None


def check_new_party(identity: PartyIdentity, direction: Direction, errors: dict[str, str]) -> None:
    name = identity.name.strip()
    if not name:
        errors["party_name"] = (
            _("Saisissez le nom du fournisseur tel qu'il figure sur la facture.")
            if direction is Direction.PURCHASE
            else _("Saisissez le nom du client tel qu'il figure sur la facture.")
        )
    elif len(name) > 300:
        errors["party_name"] = _("Le nom ne peut dépasser 300 caractères.")
    if identity.vat_number:
        problem = vat_error(identity.vat_number)
        if problem:
            errors["party_vat_number"] = problem
    if identity.siren:
        digits = normalise_siren(identity.siren)
        if len(digits) != 9:
            errors["party_siren"] = _("Le SIREN doit compter 9 chiffres.")
        elif not siren_is_valid(digits):
            errors["party_siren"] = _("Ce SIREN n'est pas valide : vérifiez les chiffres saisis.")


#: The three amounts of an invoice, as a sentence names them ('Le montant hors taxes …').
AMOUNT_WORDS = {"amount_ht": _l("hors taxes"), "amount_tva": _l("de TVA"), "amount_ttc": _l("TTC")}


def create_document(
    integration: Integration, direction: Direction, data: DocumentInput, user: User | None, *, today: date
) -> Document:
    errors: dict[str, str] = {}
    party = None
    if data.new_party is not None:
        check_new_party(data.new_party, direction, errors)
        if not errors:
            # The list may hold it already under another spelling: then it is that one.
            party = match_in_list(integration, PARTY_LIST[direction], data.new_party)
    else:
        party = db.session.get(ListItem, data.party_id) if data.party_id else None
        if party is None or party.integration_id != integration.id or party.kind is not PARTY_LIST[direction]:
            errors["party_id"] = (
                _("Choisissez le fournisseur dans la liste.")
                if direction is Direction.PURCHASE
                else _("Choisissez le client dans la liste.")
            )
        elif not party.active:
            errors["party_id"] = _("« %(name)s » est inactif dans le logiciel comptable.", name=party.name)
    if data.payment_method_id is not None:
        check_item(
            integration,
            data.payment_method_id,
            ListKind.PAYMENT_METHODS,
            "payment_method_id",
            _("le moyen de paiement"),
            errors,
        )
    number = data.number.strip()
    if not number:
        errors["number"] = _("Le numéro de facture est obligatoire.")
    elif len(number) > 60:
        errors["number"] = _("Le numéro de facture ne peut dépasser 60 caractères.")
    if data.issue_date is None:
        errors["issue_date"] = _("La date de facture est obligatoire (jj/mm/aaaa).")
    elif not date(2000, 1, 1) <= data.issue_date <= today + timedelta(days=366):
        errors["issue_date"] = _("La date de facture doit être comprise entre 2000 et l'an prochain.")
    amounts = {}
    for field, label in AMOUNT_WORDS.items():
        try:
            value = parse_amount(getattr(data, field))
        except AmountTooLarge:
            errors[field] = _(
                "Le montant %(which)s dépasse le plus grand montant accepté (%(max)s).",
                which=label,
                max=MAX_AMOUNT_TEXT,
            )
            amounts[field] = None
            continue
        if value is None:
            errors[field] = _(
                "Saisissez le montant %(which)s en euros et centimes (par exemple 1 234,56).", which=label
            )
        elif value < 0:
            errors[field] = _("Le montant %(which)s ne peut être négatif.", which=label)
        amounts[field] = value
    if (
        not errors.keys() & amounts.keys()
        and amounts["amount_ht"] + amounts["amount_tva"] != amounts["amount_ttc"]
    ):
        errors["amount_ttc"] = _(
            "Le montant TTC doit être la somme du HT et de la TVA (%(sum)s et non %(given)s).",
            sum=_french(amounts["amount_ht"] + amounts["amount_tva"]),
            given=_french(amounts["amount_ttc"]),
        )
    if data.currency not in CURRENCIES:
        errors["currency"] = _("Choisissez une devise de la liste.")
    if data.pdf_data is not None:
        if len(data.pdf_data) > MAX_PDF_BYTES:
            errors["pdf"] = _("Le PDF dépasse 10 Mo.")
        elif not data.pdf_data.startswith(b"%PDF-"):
            errors["pdf"] = _("Le fichier joint doit être un PDF.")
    if errors:
        raise DocumentError(errors)

    new_party = data.new_party if party is None else None
    document = Document(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        direction=direction,
        party_id=party.id if party else None,
        party_name=new_party.name.strip() if new_party else "",
        party_vat_number=new_party.vat or None if new_party else None,
        party_siren=new_party.siren_digits or None if new_party else None,
        number=number,
        issue_date=data.issue_date,
        currency=data.currency,
        pdf_name=(data.pdf_name or "facture.pdf")[:200] if data.pdf_data else None,
        pdf_filename=attachment_name(data.pdf_name) if data.pdf_data else None,
        pdf_data=data.pdf_data,
        created_by_id=user.id if user else None,
        **amounts,
    )
    db.session.add(document)
    code_document(document, {"payment_method_id": data.payment_method_id})
    db.session.flush()
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        actor_id=user.id if user else None,
        kind="document.created",
        message=(
            _(
                "%(what)s %(number)s de « %(party)s » ajoutée (%(status)s) : tiers absent de la liste.",
                what=direction.label,
                number=number,
                party=document.party_display,
                status=document.status.label,
            )
            if new_party
            else _(
                "%(what)s %(number)s de « %(party)s » ajoutée (%(status)s).",
                what=direction.label,
                number=number,
                party=document.party_display,
                status=document.status.label,
            )
        ),
        details={
            "document_id": document.id,
            "rule_id": document.rule_id,
            "payment_rule_id": document.payment_rule_id,
        },
    )
    db.session.commit()
    rule = db.session.get(Rule, document.rule_id) if document.rule_id else None
    if rule is not None and rule.auto_publish and document.status is DocumentStatus.READY:
        from webapp.services.publishing import request_publication

        request_publication([document], user)
    return document


PAGE_SIZE = 50


@dataclass
class DocumentPage:
    items: list[Document]
    total: int
    page: int
    pages: int


def documents_page(
    integration: Integration, status: DocumentStatus | None, page: int, total: int
) -> DocumentPage:
    """One page of the integration's documents, newest first; `total` is the count already shown
    in the tabs (counts_by_status), not counted again."""
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    # The rows show the party and the account: the other coding items are not joined for them.
    query = (
        select(Document)
        .where(Document.integration_id == integration.id)
        .options(lazyload("*"), joinedload(Document.party), joinedload(Document.account))
    )
    if status is not None:
        query = query.where(Document.status == status)
    items = db.session.scalars(
        query.order_by(Document.created_at.desc(), Document.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return DocumentPage(items=list(items), total=total, page=page, pages=pages)


_AWAITING_A_JOB = select(Document.__table__.c.id).where(
    Document.__table__.c.integration_id == bindparam("integration_id"), Document.publication_running()
)


def awaiting_a_job(integration_id: int) -> list[Document]:
    """Documents 'En cours' with a publication job: those release_if_crashed looks at. Asked on every
    visit of 'Documents' and most often none: their ids first, by a plain statement on the index
    ix_document_awaiting_job (0031), the objects only when there are some."""
    ids = db.session.connection().execute(_AWAITING_A_JOB, {"integration_id": integration_id}).scalars().all()
    if not ids:
        return []
    # Only their status and job are looked at: none of the coding items is joined.
    return list(db.session.scalars(select(Document).where(Document.id.in_(ids)).options(lazyload("*"))))


def counts_by_status(integration: Integration) -> dict[DocumentStatus, int]:
    rows = db.session.execute(
        select(Document.status, func.count())
        .where(Document.integration_id == integration.id)
        .group_by(Document.status)
    ).all()
    return dict(rows)


WAITING = (DocumentStatus.TO_REVIEW, DocumentStatus.READY, DocumentStatus.FAILED)


@dataclass
class PreviousSoftware:
    """An integration the dossier had before the one shown, with the invoices published to it."""

    integration: Integration
    published: int


def previous_software(dossier_id: int, shown: Integration) -> list[PreviousSoftware]:
    """The dossier's other integrations that hold published invoices, the most recent first: each is a
    filter 'Publié dans …' of the 'Documents' page (those invoices stay where they were published)."""
    counts = dict(
        db.session.execute(
            select(Document.integration_id, func.count())
            .where(
                Document.dossier_id == dossier_id,
                Document.integration_id != shown.id,
                Document.status == DocumentStatus.PUBLISHED,
            )
            .group_by(Document.integration_id)
        ).all()
    )
    if not counts:
        return []
    integrations = db.session.scalars(
        select(Integration)
        .where(Integration.id.in_(counts))
        .order_by(Integration.created_at.desc(), Integration.id.desc())
    )
    return [PreviousSoftware(i, counts[i.id]) for i in integrations]


def waiting_on_previous_software(dossier_id: int, shown: Integration) -> int:
    """Invoices not published yet that are still coded on a previous software's lists: 'Transférer
    les règles' carries them to the one shown."""
    return db.session.scalar(
        select(func.count(Document.id))
        .join(Integration, Document.integration_id == Integration.id)
        .where(
            Document.dossier_id == dossier_id,
            Integration.id != shown.id,
            Integration.status == IntegrationStatus.DISCONNECTED,
            Document.status != DocumentStatus.PUBLISHED,
        )
    )


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
        document.failure_reason = ""
        document.failure_detail = ""
        code_document(document)
    record_event(
        dossier_id=rule.dossier_id,
        integration_id=rule.integration_id,
        actor_id=user.id if user else None,
        kind="rule.reapplied",
        message=ngettext(
            "Règle « %(name)s » appliquée à %(num)d facture en attente.",
            "Règle « %(name)s » appliquée à %(num)d factures en attente.",
            len(documents),
            name=rule.party.name,
        ),
        details={"rule_id": rule.id, "documents": [d.id for d in documents]},
    )
    db.session.commit()
    return len(documents)


@dataclass(kw_only=True)
class CodingChange(CodingInput):
    """The document's own coding, as the user sets it on its page; due_date replaces due_days."""

    due_date: date | None = None
    party_id: int | None = None  # another party of the list, for an invoice whose party was not in it


def update_coding(document: Document, data: CodingChange, user: User | None) -> Document:
    """'Enregistrer le codage' on a waiting document: the user's choices win over every rule."""
    if document.status not in WAITING:
        raise DocumentError(
            {
                "status": _(
                    "La facture est « %(status)s » : son codage est figé.", status=document.status.label
                )
            }
        )
    integration = db.session.get(Integration, document.integration_id)
    errors: dict[str, str] = {}
    check_coding(integration, data, errors, account_word=ACCOUNT_WORD[document.direction])
    party = None
    if data.party_id is not None:
        party = db.session.get(ListItem, data.party_id)
        if (
            party is None
            or party.integration_id != integration.id
            or party.kind is not PARTY_LIST[document.direction]
            or not party.active
        ):
            errors["party_id"] = _("Choisissez le tiers parmi les actifs de la liste.")
    if data.due_date is not None and data.due_date < document.issue_date:
        errors["due_date"] = _("L'échéance ne peut précéder la date de facture.")
    if errors:
        raise DocumentError(errors)
    if party is not None and party.id != document.party_id:
        document.party_id = party.id
        document.hold_reason = ""
    for field in ("account_id", "tax_rate_id", "payment_method_id", "tracking_id", "paid"):
        setattr(document, field, getattr(data, field))
    document.description = data.description.strip()
    document.due_date = data.due_date
    document.failure_reason = ""
    document.failure_detail = ""
    document.transfer_notes = None  # the user has looked at what the change of software left empty
    set_coding_status(document)
    record_event(
        dossier_id=document.dossier_id,
        integration_id=document.integration_id,
        actor_id=user.id if user else None,
        kind="document.coded",
        message=_(
            "Codage de la facture %(number)s modifié (%(status)s).",
            number=document.number,
            status=document.status.label,
        ),
        details={"document_id": document.id},
    )
    db.session.commit()
    return document


def approve_party_creation(document: Document, user: User | None) -> None:
    """The user agrees that the supplier the invoice names be created in the software."""
    document.party_creation_approved = True
    document.hold_reason = ""
    if document.status in WAITING:
        set_coding_status(document)
    record_event(
        dossier_id=document.dossier_id,
        integration_id=document.integration_id,
        actor_id=user.id if user else None,
        kind="document.party_creation_approved",
        message=_(
            "Création du tiers « %(name)s » acceptée pour la facture %(number)s.",
            name=document.party_name,
            number=document.number,
        ),
        details={"document_id": document.id},
    )
    db.session.commit()
