"""Reading a software's 200 answers by type: what is not of the expected shape becomes a ProviderError
that names the software in French (the answer kept, shortened, for the timeline), never a KeyError or
a TypeError that would end a job without a word for the bookkeeper."""

from __future__ import annotations

import math
from typing import Any

from flask_babel import gettext as _

from webapp.connectors.base import ProviderError


class AnswerReader:
    def __init__(self, software: str):
        self.software = software

    def unexpected(self, what: str, detail: Any = None) -> ProviderError:
        return ProviderError(
            _("%(software)s a renvoyé une réponse inattendue (%(what)s).", software=self.software, what=what),
            detail=repr(detail)[:300],
        )

    def object(self, value: Any, what: str) -> dict:
        if not isinstance(value, dict):
            raise self.unexpected(what, value)
        return value

    def id(self, raw: dict, what: str) -> str:
        value = raw.get("id")
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            raise self.unexpected(what, raw)
        return str(value)

    def text(self, raw: dict, key: str, what: str, *, decimals: bool = False) -> str | None:
        """An optional text field: text, a whole number written as text, or nothing; with `decimals`,
        a number with decimals too (a rate sent as 5.5 is written as Raccord keeps rates, "5.5")."""
        value = raw.get(key)
        if value is None or value == "":
            return None
        kinds = str | int | float if decimals else str | int
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise self.unexpected(what, raw)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.unexpected(what, raw)
            return format(value, "g")
        return str(value)
