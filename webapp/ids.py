"""Ids read from URLs, query strings and forms: plain ASCII digits within what the database column
holds, or nothing. One converter for every `<int:…>` of every route, one form field for every
choice of an id, one parser for the rest.

`int()` alone accepts '²' (str.isdigit says yes, then int refuses), ' 7', '-3' and 2**31, which
PostgreSQL's INTEGER columns do not hold: each reached the database as an error 500.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from werkzeug.routing import BaseConverter, ValidationError
from wtforms import SelectField

#: INTEGER columns (PostgreSQL's int4): dossiers, integrations, rules, documents, users…
MAX_ID = 2**31 - 1
#: BIGINT columns, for the tables that grow with every full reload: list items and their staging,
#: events, job runs (webapp.models.base.BigId).
MAX_BIG_ID = 2**63 - 1
#: The last page a paged list can be asked for (a bigger one shows the last page).
MAX_PAGE = 1_000_000
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(value: Any, *, big: bool = False) -> int | None:
    """The id in `value`, or None when it is not one (`big` for a BIGINT column)."""
    text = str(value).strip() if value is not None else ""
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= (MAX_BIG_ID if big else MAX_ID) else None


def parse_page(value: Any) -> int:
    """A page number from a query string: 1 for anything that is not one, at most MAX_PAGE."""
    text = str(value).strip() if value is not None else ""
    if not text.isascii() or not text.isdigit():
        return 1
    return max(1, min(int(text[:7]), MAX_PAGE))


def coerce_choice_id(value: Any) -> int | None:
    """WTForms coerce for a list choice: None for 'none chosen', -1 (never an id) for garbage, so the
    service answers « choisissez … dans la liste » instead of failing."""
    if value in (None, "", "None"):
        return None
    parsed = parse_id(value, big=True)
    return parsed if parsed is not None else -1


class ItemChoiceField(SelectField):
    """The choice of a list item (a supplier, an account, a tax rate…) by its id, in every form."""

    def __init__(self, label: str | None = None, **kwargs: Any):
        kwargs.setdefault("coerce", coerce_choice_id)
        kwargs.setdefault("validate_choice", False)
        super().__init__(label, **kwargs)


def digits_up_to(limit: int) -> str:
    """A regular expression for the numbers 1 to `limit` written without leading zeros: a path whose id
    is out of range then matches no route at all (404), where a converter refusing it after the match
    would let a route of another method answer 405."""
    text = str(limit)
    shorter = f"[1-9][0-9]{{0,{len(text) - 2}}}" if len(text) > 1 else None
    same_length = []
    for i, digit in enumerate(text):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(text) - i - 1
            same_length.append(f"{text[:i]}[{low}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    same_length.append(text)
    return "(?:" + "|".join(filter(None, [shorter, *same_length])) + ")"


class IdConverter(BaseConverter):
    """`<int:…>` in every route: an id an INTEGER column holds, else the URL matches nothing (404)."""

    regex = digits_up_to(MAX_ID)
    part_isolating = True
    big = False

    def to_python(self, value: str) -> int:
        number = parse_id(value, big=self.big)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


class BigIdConverter(IdConverter):
    """`<bigid:…>`: an id of a BIGINT column (list items, events, job runs)."""

    regex = digits_up_to(MAX_BIG_ID)
    big = True


def init_app(app: Flask) -> None:
    """Before any route is added: the converters are looked up when a rule is compiled."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["bigid"] = BigIdConverter
