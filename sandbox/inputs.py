"""What the sandbox reads from requests, checked before use: numbers (a cursor, a page, an id in a
body) are ASCII digits within what the database holds, bodies are JSON objects, and a field deep in
a body is reached only through objects. `int()` alone takes '²' (str.isdigit says yes, then int
refuses) and numbers no column or OFFSET holds; `body.get` fails on a list: each was an error 500."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter, ValidationError

#: What SQLite's INTEGER and PostgreSQL's BIGINT hold, and so the largest OFFSET.
MAX_STORED = 2**63 - 1
#: The sandbox's ids are INTEGER columns: PostgreSQL refuses to compare one with a larger number.
MAX_ID = 2**31 - 1
_INTEGER = re.compile(r"-?[0-9]{1,19}")


def to_int(value: Any, default: int | None = None) -> int | None:
    """`value` as an int a database holds; `default` when it is empty; None when it is not one."""
    if value is None or value == "":
        return default
    if isinstance(value, bool | float):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not _INTEGER.fullmatch(text):
            return None
        number = int(text)
    return number if -MAX_STORED <= number <= MAX_STORED else None


def to_id(value: Any) -> int | None:
    """An id of one of the sandbox's rows, or None when `value` cannot be one."""
    number = to_int(value) if isinstance(value, str | int) else None
    return number if number is not None and 1 <= number <= MAX_ID else None


def after_id(cursor: int) -> int:
    """A keyset cursor as compared with an id: beyond the last id there can be, nothing comes."""
    return min(cursor, MAX_ID)


def page_offset(page: int, size: int) -> int | None:
    """The OFFSET of page `page` (from 1) of `size` rows, or None when no database takes it."""
    offset = (page - 1) * size
    return offset if 0 <= offset <= MAX_STORED else None


def json_object() -> dict[str, Any]:
    """The request's JSON body when it is an object; an empty one otherwise (absent, invalid, a list)."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def field(value: Any, *path: str) -> Any:
    """`value[path[0]][path[1]]…`, or None as soon as a step is not an object or lacks the key."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


class IdConverter(IntegerConverter):
    """`<int:…>` in the sandbox's routes: an id its INTEGER columns hold, else no route matches (404)."""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        if not 1 <= number <= MAX_ID:
            raise ValidationError()
        return number


def to_moment(value: Any, *, http_date: bool = False) -> datetime | None:
    """An ISO 8601 date-time ('Z' or an offset; none is UTC), or an HTTP date when `http_date`, as an
    aware UTC datetime; None when it is not one or lies beyond what a datetime holds in UTC (year 1
    at +01:00 is in year 0)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        if not http_date:
            return None
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


class BadField(ValueError):
    """A field of a request that no column of the sandbox holds (not text, or too long): the request
    is refused with its name (sandbox/__init__.py answers 400)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
