"""Matching an item of one software's list to the new software's list, for 'Transférer les règles'.

- supplier or customer: VAT number, then SIREN, then normalised name (webapp.services.parties);
- account: account number, a shorter or longer zero-padded number counting as the same
  (6061 = 606100), the exact number first; then the normalised name;
- tax rate: the rate (20 = 20.0 = 20,00); among several of that rate, the same normalised name,
  else the plain rate rather than a reverse-charge or special one;
- tracking category and payment method: the normalised name, a category also by its option alone
  ('Établissement : Magasin centre-ville' is 'Magasin centre-ville').
Each function returns the match and how it was found, or None and why not (in French).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _

from webapp.models import ListItem, ListKind
from webapp.services.parties import (
    PartyIdentity,
    best_match,
    normalise_name,
    normalise_siren,
    normalise_vat,
    siren_from_vat,
)


@dataclass(frozen=True)
class Match:
    item: ListItem | None
    how: str  # 'par numéro de TVA', 'par numéro', … or why there is none
    ignored: bool = False  # the user chose 'Ignorer' at the review


def _usable(items: Iterable[ListItem]) -> list[ListItem]:
    return [i for i in items if i.active]


def account_number_key(code: str | None) -> str:
    """6061, 606100 and 6061000 share the key '6061': the number without its zero padding."""
    digits = "".join(c for c in (code or "") if c.isalnum())
    return digits.rstrip("0") or digits


def match_party(old: ListItem, candidates: Iterable[ListItem]) -> Match:
    identity = PartyIdentity(old.name, old.vat_number, old.siren)
    items = _usable(candidates)
    found = best_match(identity, items)
    if found is None:
        return Match(None, _("introuvable (ni le numéro de TVA, ni le SIREN, ni le nom)"))
    if identity.vat and normalise_vat(found.vat_number) == identity.vat:
        return Match(found, _("par numéro de TVA"))
    if identity.siren_digits and identity.siren_digits in (
        normalise_siren(found.siren),
        siren_from_vat(found.vat_number),
    ):
        return Match(found, _("par SIREN"))
    return Match(found, _("par nom"))


def match_account(old: ListItem, candidates: Iterable[ListItem]) -> Match:
    items = _usable(candidates)
    if old.code:
        exact = [i for i in items if i.code == old.code]
        if exact:
            return Match(exact[0], _("par numéro"))
        key = account_number_key(old.code)
        padded = [i for i in items if i.code and account_number_key(i.code) == key]
        if len(padded) == 1:
            return Match(padded[0], _("par numéro (%(old)s = %(new)s)", old=old.code, new=padded[0].code))
        if len(padded) > 1:
            by_name = [i for i in padded if normalise_name(i.name) == normalise_name(old.name)]
            if len(by_name) == 1:
                return Match(
                    by_name[0], _("par numéro et nom (%(old)s = %(new)s)", old=old.code, new=by_name[0].code)
                )
            return Match(None, _("plusieurs comptes correspondent au numéro %(code)s", code=old.code))
    same_name = [i for i in items if normalise_name(i.name) == normalise_name(old.name)]
    if len(same_name) == 1:
        return Match(same_name[0], _("par nom"))
    if len(same_name) > 1:
        return Match(None, _("plusieurs comptes s'appellent « %(name)s »", name=old.name))
    if old.code:
        return Match(None, _("aucun compte %(code)s « %(name)s »", code=old.code, name=old.name))
    return Match(None, _("aucun compte « %(name)s »", name=old.name))


def _rate(value: str | None) -> Decimal | None:
    try:
        return Decimal(str(value).replace(",", ".")).normalize() if value not in (None, "") else None
    except InvalidOperation:
        return None


SPECIAL_RATE_WORDS = ("autoliq", "reverse", "intracom", "import", "dom", "exon")


def match_tax_rate(old: ListItem, candidates: Iterable[ListItem]) -> Match:
    rate = _rate(old.rate)
    if rate is None:
        return Match(None, _("le taux d'origine n'a pas de valeur"))
    same = [i for i in _usable(candidates) if _rate(i.rate) == rate]
    if not same:
        return Match(None, _("aucun taux de %(rate)s %%", rate=old.rate))
    if len(same) == 1:
        return Match(same[0], _("par taux"))
    by_name = [i for i in same if normalise_name(i.name) == normalise_name(old.name)]
    if len(by_name) == 1:
        return Match(by_name[0], _("par taux et nom"))
    old_special = any(w in normalise_name(old.name) for w in SPECIAL_RATE_WORDS)
    plain = [i for i in same if any(w in normalise_name(i.name) for w in SPECIAL_RATE_WORDS) == old_special]
    if len(plain) == 1:
        return Match(plain[0], _("par taux"))
    return Match(None, _("plusieurs taux de %(rate)s %%", rate=old.rate))


def _option(name: str) -> str:
    return name.rsplit(" : ", 1)[-1]


def match_by_name(old: ListItem, candidates: Iterable[ListItem]) -> Match:
    items = _usable(candidates)
    wanted = normalise_name(old.name)
    same = [i for i in items if normalise_name(i.name) == wanted]
    if len(same) == 1:
        return Match(same[0], _("par nom"))
    option = normalise_name(_option(old.name))
    by_option = [i for i in items if normalise_name(_option(i.name)) == option]
    if len(by_option) == 1:
        return Match(by_option[0], _("par nom"))
    if len(same) > 1 or len(by_option) > 1:
        return Match(None, _("plusieurs éléments s'appellent « %(name)s »", name=old.name))
    return Match(None, _("aucun élément « %(name)s »", name=old.name))


MATCHERS = {
    ListKind.SUPPLIERS: match_party,
    ListKind.CUSTOMERS: match_party,
    ListKind.ACCOUNTS: match_account,
    ListKind.TAX_RATES: match_tax_rate,
    ListKind.TRACKING_CATEGORIES: match_by_name,
    ListKind.PAYMENT_METHODS: match_by_name,
}


def match_item(old: ListItem, candidates: Iterable[ListItem]) -> Match:
    """The new list's item `old` is, by the rule of its kind."""
    return MATCHERS[old.kind](old, candidates)


class ListIndex:
    """One new list indexed once, so that placing thousands of items costs a lookup each."""

    def __init__(self, items: Iterable[ListItem]):
        self.items = _usable(items)
        self.by_code: dict[str, list[ListItem]] = {}
        self.by_number: dict[str, list[ListItem]] = {}
        self.by_name: dict[str, list[ListItem]] = {}
        self.by_option: dict[str, list[ListItem]] = {}
        self.by_rate: dict[Decimal, list[ListItem]] = {}
        for item in self.items:
            if item.code:
                self.by_code.setdefault(item.code, []).append(item)
                self.by_number.setdefault(account_number_key(item.code), []).append(item)
            self.by_name.setdefault(normalise_name(item.name), []).append(item)
            self.by_option.setdefault(normalise_name(_option(item.name)), []).append(item)
            rate = _rate(item.rate)
            if rate is not None:
                self.by_rate.setdefault(rate, []).append(item)

    def candidates(self, old: ListItem) -> list[ListItem]:
        """The few items `old` could match, found through the indexes; the matcher then decides."""
        found: dict[int, ListItem] = {}
        for group in (
            self.by_code.get(old.code or "", []),
            self.by_number.get(account_number_key(old.code), []) if old.code else [],
            self.by_name.get(normalise_name(old.name), []),
            self.by_option.get(normalise_name(_option(old.name)), []),
            self.by_rate.get(_rate(old.rate), []) if old.rate else [],
        ):
            for item in group:
                found[id(item)] = item
        return list(found.values())
