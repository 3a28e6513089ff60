"""What the Xero dialect reads from a request, checked field by field as Xero checks it before
anything is stored: text within Xero's lengths, numbers finite and rounded to Xero's precision,
dates in the forms Xero takes, and the `where` / `order` expressions on the fields the dialect
filters. A refused field is named in the message, its value never repeated.

Sources: the published description (shared/specs/xero_accounting.yaml: maxLength of each field,
the enums), https://developer.xero.com/documentation/api/requests-and-responses (dates in JSON),
https://developer.xero.com/documentation/api-guides/rounding-in-xero (UnitAmount to two decimals,
four with unitdp=4; LineAmount, TaxAmount and totals to two; tax computed and rounded per line).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

#: The largest amount or quantity the sandbox takes (Xero documents none; its amounts are .NET
#: decimals shown to two places, and no real invoice comes near a thousand billion).
MAX_NUMBER = Decimal("999999999999")
_NUMBER_TEXT = re.compile(r"\s*-?[0-9]{1,15}(\.[0-9]{1,10})?\s*")
_MS_DATE = re.compile(r"/Date\((-?[0-9]{1,15})([+-][0-9]{4})?\)/")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(T[0-9:.]{2,15}(Z|[+-][0-9]{2}:?[0-9]{2})?)?")
TWO_PLACES = Decimal("0.01")


@dataclass
class Reading:
    """The problems found in one element of a request (an invoice, a contact), in Xero's words."""

    problems: list[str] = field(default_factory=list)

    def refuse(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def text(self, raw: dict, key: str, max_length: int, *, required: bool = False) -> str | None:
        value = raw.get(key)
        if value is None or value == "":
            if required:
                self.refuse(f"{key} must be specified.")
            return None
        if not isinstance(value, str):
            self.refuse(f"{key} must be text.")
            return None
        if len(value) > max_length:
            self.refuse(f"{key} must not be more than {max_length} characters long.")
            return None
        return value

    def choice(
        self, raw: dict, key: str, allowed: tuple[str, ...], *, default: str | None = None
    ) -> str | None:
        value = raw.get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str) or value not in allowed:
            self.refuse(f"{key} must be one of {', '.join(allowed)}.")
            return None
        return value

    def flag(self, raw: dict, key: str) -> bool | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.refuse(f"{key} must be true or false.")
            return None
        return value

    def number(self, raw: dict, key: str, places: int) -> Decimal | None:
        """A JSON number or a decimal written as text, finite and within MAX_NUMBER, rounded to
        `places` decimals as Xero rounds what it is sent."""
        value = raw.get(key)
        if value is None or value == "":
            return None
        amount = to_decimal(value)
        if amount is None:
            self.refuse(f"{key} must be a number.")
            return None
        if abs(amount) > MAX_NUMBER:
            self.refuse(f"{key} must be less than {MAX_NUMBER:,}.")
            return None
        return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)

    def day(self, raw: dict, key: str) -> date | None:
        value = raw.get(key)
        if value is None or value == "":
            return None
        found = to_date(value)
        if found is None:
            self.refuse(f"{key} must be a date (YYYY-MM-DD).")
        return found

    def guid(self, raw: dict, key: str) -> str | None:
        value = raw.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not is_guid(value):
            self.refuse(f"{key} must be a GUID.")
            return None
        return value.lower()

    def objects(self, raw: dict, key: str, what: str) -> list[dict] | None:
        """A list of objects (line items, tracking); None when absent."""
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(each, dict) for each in value):
            self.refuse(f"{key} must be a list of {what}.")
            return None
        return value


def to_decimal(value: Any) -> Decimal | None:
    """A finite decimal from a JSON number or a plain decimal text ('12.50'); None otherwise
    (booleans, NaN, Infinity, exponents, '1e999', words)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value) if abs(value) <= 10**15 else Decimal(10**15 + 1)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            return None
    return None


def to_date(value: Any) -> date | None:
    """A date as Xero takes one: 'YYYY-MM-DD', an ISO date-time (its date), or '/Date(ms+0000)/'."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    found = _MS_DATE.fullmatch(text)
    if found:
        try:
            return datetime.fromtimestamp(int(found.group(1)) / 1000, UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    found = _ISO_DATE.fullmatch(text)
    if not found:
        return None
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None


def is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) in (32, 36, 38)


def msdate(moment: datetime | date) -> str:
    """Xero's JSON dates: /Date(milliseconds+0000)/ (a date is its midnight UTC)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def money(amount: Decimal) -> float:
    """An amount as Xero answers it: a JSON number with at most two decimals."""
    return float(amount.quantize(TWO_PLACES, rounding=ROUND_HALF_UP))


# --- where and order ------------------------------------------------------------------------


class QueryError(ValueError):
    """A `where` or `order` Xero would not parse: answered as its QueryParseException."""


_CONDITION = re.compile(
    r"""\s*(?P<field>[A-Za-z][A-Za-z0-9]*)\s*(?:
        (?P<op>==|!=|=)\s*(?P<value>"[^"]*"|true|false|null|GUID\(\s*"[^"]*"\s*\))
      | \.(?P<method>Contains|StartsWith|EndsWith)\(\s*"(?P<arg>[^"]*)"\s*\)
    )\s*""",
    re.VERBOSE,
)
_JOINER = re.compile(r"\s*(?:&&|\bAND\b)\s*", re.IGNORECASE)
_ORDER = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*)(?:\s+(ASC|DESC))?\s*", re.IGNORECASE)
MAX_QUERY = 2000


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # ==, !=, Contains, StartsWith, EndsWith
    value: Any


def parse_where(text: str, fields: frozenset[str], type_name: str) -> list[Condition]:
    """`Name=="EDF" AND IsSupplier==true`: conditions joined by AND (or &&), each on one of `fields`.
    Xero's syntax is a C# expression; the dialect reads its common forms: ==, !=, GUID("…"), true,
    false, null, and the string methods Contains, StartsWith, EndsWith."""
    if len(text) > MAX_QUERY:
        raise QueryError("The where clause is too long")
    conditions = []
    position = 0
    for part in _split_outside_quotes(text):
        found = _CONDITION.fullmatch(part)
        if not found:
            raise QueryError(f"Syntax error in the where clause (at index {position})")
        name = found.group("field")
        if name not in fields:
            raise QueryError(
                f"No property or field '{name}' exists in type '{type_name}' (at index {position})"
            )
        if found.group("method"):
            conditions.append(Condition(name, found.group("method"), found.group("arg")))
        else:
            conditions.append(
                Condition(name, "!=" if found.group("op") == "!=" else "==", _literal(found.group("value")))
            )
        position += len(part) + 2
    return conditions


def _split_outside_quotes(text: str) -> list[str]:
    parts, current, quoted, index = [], [], False, 0
    while index < len(text):
        char = text[index]
        if char == '"':
            quoted = not quoted
        if not quoted:
            joiner = _JOINER.match(text, index)
            if joiner and joiner.end() > index and (joiner.group().strip()):
                parts.append("".join(current))
                current, index = [], joiner.end()
                continue
        current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _literal(text: str) -> Any:
    if text == "true":
        return True
    if text == "false":
        return False
    if text == "null":
        return None
    if text.startswith("GUID"):
        inner = text[text.index('"') + 1 : text.rindex('"')]
        if not is_guid(inner):
            raise QueryError("GUID expects a valid GUID")
        return inner.lower()
    return text[1:-1]


def matches(row: dict, conditions: list[Condition]) -> bool:
    for condition in conditions:
        value = row.get(condition.field)
        if isinstance(value, str) and isinstance(condition.value, str) and is_guid(condition.value):
            value = value.lower()
        if condition.op == "==" and value != condition.value:
            return False
        if condition.op == "!=" and value == condition.value:
            return False
        if condition.op in ("Contains", "StartsWith", "EndsWith"):
            if not isinstance(value, str):
                return False
            test = {
                "Contains": value.__contains__,
                "StartsWith": value.startswith,
                "EndsWith": value.endswith,
            }
            if not test[condition.op](condition.value):
                return False
    return True


def parse_order(text: str, fields: frozenset[str], type_name: str) -> list[tuple[str, bool]]:
    """`Name DESC, Code`: (field, descending) pairs on `fields`."""
    if len(text) > MAX_QUERY:
        raise QueryError("The order clause is too long")
    keys = []
    for part in text.split(","):
        found = _ORDER.fullmatch(part)
        if not found:
            raise QueryError("Syntax error in the order clause")
        if found.group(1) not in fields:
            raise QueryError(f"No property or field '{found.group(1)}' exists in type '{type_name}'")
        keys.append((found.group(1), (found.group(2) or "").upper() == "DESC"))
    return keys


def ordered(rows: list[dict], keys: list[tuple[str, bool]]) -> list[dict]:
    """`rows` sorted by `keys`, missing values first, as SQL Server sorts nulls; stable otherwise."""
    for name, descending in reversed(keys):
        rows = sorted(rows, key=lambda row: _sort_key(row.get(name)), reverse=descending)
    return rows


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, "")
    if isinstance(value, str) and value.startswith("/Date("):
        found = _MS_DATE.fullmatch(value)
        return (1, int(found.group(1)) if found else 0)
    if isinstance(value, bool | int | float):
        return (1, float(value))
    return (2, str(value).casefold())
