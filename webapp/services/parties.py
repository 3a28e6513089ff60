"""Suppliers and customers named by an invoice: checked identifiers, matching, lookup and creation upstream.

Matching follows what users expect of duplicates ('AB Builders Ltd' is 'AB Builders Limited'): the
VAT number first, then the SIREN (a French VAT number carries it), then the name with case,
accents, punctuation and legal forms left out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from flask_babel import gettext as _
from sqlalchemy import or_, select

from webapp.extensions import db
from webapp.models import Integration, ListItem, ListKind
from webapp.models.base import utcnow
from webapp.search import compact
from webapp.services.dossiers import siren_is_valid

# Legal forms, in French and in the other languages suppliers' names arrive in.
LEGAL_FORMS = frozenset(
    # French forms, then those of the other countries suppliers' names arrive from.
    ("sa", "sas", "sasu", "sarl", "eurl", "sarlu", "snc", "scs", "sca", "sci", "scp", "scop", "scm", "sel")
    + ("selarl", "selas", "selafa", "selca", "gie", "ei", "eirl", "earl", "gaec", "ste", "societe")
    + ("etablissements", "ets", "cie", "compagnie")
    + ("ltd", "limited", "plc", "llp", "llc", "inc", "incorporated", "corp", "corporation", "co", "company")
    + ("gmbh", "ag", "kg", "ohg", "ug", "bv", "nv", "srl", "spa", "sl")
)

_VAT = re.compile(r"[A-Z]{2}[0-9A-Z+*]{2,13}")
_FR_VAT = re.compile(r"FR([0-9A-Z]{2})(\d{9})")


LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})


@lru_cache(maxsize=200_000)
def normalise_name(name: str) -> str:
    """'S.A.R.L. Boulangerie  Martin & Fils' → 'boulangerie martin fils'."""
    # Accents off in C (decompose, then keep ASCII): names are compared by the hundred thousand.
    text = unicodedata.normalize("NFKD", (name or "").translate(LIGATURES))
    text = text.encode("ascii", "ignore").decode().lower()
    text = _DOTS.sub("", text)  # S.A.R.L. → sarl, l'atelier → latelier
    text = _NOT_WORD.sub(" ", text)
    return " ".join(w for w in text.split() if w not in IGNORED_WORDS)


_DOTS = re.compile(r"[.'’`]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_NOT_VAT = re.compile(r"[^0-9A-Za-z+*]")
_NOT_DIGIT = re.compile(r"\D")
IGNORED_WORDS = LEGAL_FORMS | {"et", "and"}


def normalise_vat(vat: str | None) -> str:
    return _NOT_VAT.sub("", vat).upper() if vat else ""


def normalise_siren(siren: str | None) -> str:
    return _NOT_DIGIT.sub("", siren) if siren else ""


def siren_from_vat(vat: str | None) -> str | None:
    if not vat:
        return None
    found = _FR_VAT.fullmatch(normalise_vat(vat))
    return found.group(2) if found else None


def vat_error(vat: str) -> str | None:
    """A French message if `vat` is not a plausible intra-community VAT number; None if it is."""
    value = normalise_vat(vat)
    if not _VAT.fullmatch(value):
        return _(
            "Le numéro de TVA intracommunautaire commence par le code du pays (par exemple FR12345678901)."
        )
    french = _FR_VAT.fullmatch(value)
    if value.startswith("FR"):
        if not french:
            return _(
                "Un numéro de TVA français compte FR, deux caractères de clé et les 9 chiffres du SIREN."
            )
        key, siren = french.groups()
        if not siren_is_valid(siren):
            return _("Le SIREN contenu dans ce numéro de TVA n'est pas valide.")
        if key.isdigit() and int(key) != (12 + 3 * (int(siren) % 97)) % 97:
            return _("La clé de ce numéro de TVA ne correspond pas au SIREN : vérifiez-le.")
    return None


@dataclass(frozen=True)
class PartyIdentity:
    """What an invoice says of its supplier or customer."""

    name: str
    vat_number: str | None = None
    siren: str | None = None

    @property
    def vat(self) -> str:
        return normalise_vat(self.vat_number)

    @property
    def siren_digits(self) -> str:
        return normalise_siren(self.siren) or siren_from_vat(self.vat_number) or ""

    @property
    def key_name(self) -> str:
        return normalise_name(self.name)

    def search_terms(self) -> list[str]:
        """Words to ask a search for, most selective first; the match is then checked exactly."""
        terms = [t for t in (self.vat, self.siren_digits) if t]
        # The longest word as written (accents kept, apostrophes as separators): software search
        # what they store, and 'L'Atelier' is found by 'Atelier', not by the normalised 'latelier'.
        words = [w for w in re.findall(r"\w+", self.name) if w.lower() not in LEGAL_FORMS]
        if words:
            terms.append(max(words, key=len))
        return terms


class _PartyLike(Protocol):
    name: str
    vat_number: str | None
    siren: str | None


def best_match(identity: PartyIdentity, candidates: Iterable[_PartyLike]) -> _PartyLike | None:
    """The candidate with the same VAT number, else the same SIREN, else the same normalised name."""
    candidates = list(candidates)
    if identity.vat:
        for c in candidates:
            if normalise_vat(c.vat_number) == identity.vat:
                return c
    if identity.siren_digits:
        for c in candidates:
            if identity.siren_digits in (normalise_siren(c.siren), siren_from_vat(c.vat_number)):
                return c
    if identity.key_name:
        for c in candidates:
            if normalise_name(c.name) == identity.key_name:
                return c
    return None


def match_in_list(integration: Integration, kind: ListKind, identity: PartyIdentity) -> ListItem | None:
    """The active item of the imported list this invoice's party is, if the list holds it."""
    # Candidates by the normalised copy the list search uses (webapp.search), accents and case
    # ignored as the matching ignores them, through its index; best_match then checks them exactly.
    terms = [compact(identity.vat[-9:]), identity.siren_digits]
    words = identity.key_name.split()
    if words:
        terms.append(max(words, key=len))
    conditions = [ListItem.search_text.like(f"%{term}%") for term in dict.fromkeys(terms) if term]
    if not conditions:
        return None
    candidates = db.session.scalars(
        select(ListItem)
        .where(
            ListItem.integration_id == integration.id,
            ListItem.kind == kind,
            ListItem.active.is_(True),
            or_(*conditions),
        )
        .order_by(ListItem.id)
        .limit(500)
    )
    found = best_match(identity, candidates)
    return found if isinstance(found, ListItem) else None


def upsert_list_item(integration: Integration, kind: ListKind, item) -> ListItem:
    """Write an item the software just told us of (found or created) into the list, as a refresh would."""
    row = db.session.scalar(
        select(ListItem).where(
            ListItem.integration_id == integration.id,
            ListItem.kind == kind,
            ListItem.external_id == item.external_id,
        )
    )
    if row is None:
        row = ListItem(integration_id=integration.id, kind=kind, external_id=item.external_id)
        db.session.add(row)
    for field, value in item.row().items():
        if field != "external_id":
            setattr(row, field, value)
    row.updated_at = utcnow()
    db.session.flush()
    return row
