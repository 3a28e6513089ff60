"""Ids read from forms and URLs: plain ASCII digits within what the database stores, or nothing.

`int()` alone accepts '²' (str.isdigit says yes, then int refuses) and 2**63, which no database
column holds: either reached the database as an error 500.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(value: Any) -> int | None:
    """The id in `value`, or None when it is not one."""
    text = str(value).strip() if value is not None else ""
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def coerce_choice_id(value: Any) -> int | None:
    """WTForms coerce for a list choice: None for 'none chosen', -1 (never an id) for garbage, so the
    service answers « choisissez … dans la liste » instead of failing."""
    if value in (None, "", "None"):
        return None
    parsed = parse_id(value)
    return parsed if parsed is not None else -1
