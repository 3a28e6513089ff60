"""Searching as people type: case, accents, punctuation and word order make no difference.

Each searchable row keeps a normalised copy of what a search looks into (`search_text`) and of its
name (`sort_name`: results in French order, accents ignored, 'Sécuritas' before 'SFR'). Both are
written with the row by every write path: a column default for inserts, including bulk and Core
ones, and an ORM hook for changes (keep_search_columns). A search is cut into words normalised the
same way, and a row matches when every word appears in its copy, in any order (matching_all).

PostgreSQL finds the words through a trigram index on list_item.search_text (migration 0020);
SQLite reads the list in page order through an index that holds the copy. A change to how the copies
are made needs a migration that makes them again for the rows already there, as 0020 does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import String, event, inspect
from sqlalchemy.orm import mapped_column

#: The copies are cut to these many UTF-8 bytes: within their column on every database, and a
#: list's search index entry stays within PostgreSQL's limit whatever the script of the name.
SEARCH_TEXT_BYTES = 1200
SORT_NAME_BYTES = 200
#: What is read of a search: enough for any name, number or their mix; the rest is left out.
MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 12

# What NFKD does not take apart into a letter and its accents, spelt out; and the accents and other
# combining marks NFKD took apart, left out (those of the first two planes, where every script in use
# has its marks: one table, applied in C).
# fmt: off
_LETTERS = {
    "œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ẞ": "ss", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d",
    "ł": "l", "Ł": "l", "ı": "i", "þ": "th", "Þ": "th", "ð": "d", "Ð": "d",
}
# fmt: on
_PLAIN = str.maketrans(
    _LETTERS | {chr(code): None for code in range(0x300, 0x20000) if unicodedata.combining(chr(code))}
)
_NOT_ALNUM = re.compile(r"[\W_]+")
# A word written with points, apostrophes, hyphens or slashes inside it: 'S.A.R.L.', "l'Église",
# 'Coca-Cola', '401/DUP'. It is also kept joined up, so 'sarl' or 'leglise' find it.
_JOINERS = ".'’`´-/"
_JOINED = re.compile(r"\w+(?:[.'’`´\-/]\w+)+")


@lru_cache(maxsize=256)  # a row's name is normalised for its search copy, then for its sort key
def normalise(text: str | None) -> str:
    """'  L’Œuvre  de SÉCURITAS & Würth ' → 'l oeuvre de securitas wurth'.

    Lower case (casefold), accents and other marks off, ligatures spelt out, everything that is not a
    letter or a digit turned into one space. Letters of other scripts stay, in lower case."""
    if not text:
        return ""
    if text.isascii():
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKD", text).translate(_PLAIN).casefold()
    return " ".join(_NOT_ALNUM.split(text)).strip()


def _cut(text: str, limit: int) -> str:
    if len(text) * 4 <= limit:  # within the limit whatever its characters
        return text
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore").rstrip()


def searchable(text: str | None) -> str:
    """What a search looks into for this text: its normalised words, and its punctuated words joined."""
    words = normalise(text)
    if not text or not any(char in text for char in _JOINERS):
        return words
    joined = [normalise(m.group()).replace(" ", "") for m in _JOINED.finditer(text)]
    return " ".join([words, *joined]) if joined else words


def compact(text: str | None) -> str:
    """An identifier (VAT number, SIREN) without its spaces or punctuation: 'FR 03 552…' → 'fr03552…'."""
    return normalise(text).replace(" ", "")


def combined(*parts: str) -> str:
    """The searchable copy of a row, from parts already made searchable; cut to SEARCH_TEXT_BYTES."""
    return _cut(" ".join(p for p in parts if p), SEARCH_TEXT_BYTES)


def sort_key(name: str | None) -> str:
    """The key that puts names in French order, accents, case and punctuation ignored."""
    return _cut(normalise(name), SORT_NAME_BYTES)


def _identifiers_joined(words: list[str]) -> list[str]:
    """Groups of digits typed or pasted as the screens show an identifier ('732 829 320', a SIRET in
    groups) make one word: a run of two or more all-digit words that together make 9 digits or more."""
    joined: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if word.isdigit():
            run.append(word)
            continue
        if len(run) >= 2 and sum(map(len, run)) >= 9:
            joined.append("".join(run))
        else:
            joined.extend(run)
        run = []
        if word:
            joined.append(word)
    return joined


def query_words(query: str | None) -> list[str]:
    """The words a search asks for, normalised as the rows are: none for a search of only spaces or
    punctuation. A word found inside another word asked for is left out (it adds nothing), and past
    MAX_QUERY_WORDS the longest words are kept."""
    words = set(_identifiers_joined(normalise((query or "")[:MAX_QUERY_CHARS]).split()))
    kept = [w for w in words if not any(w != other and w in other for other in words)]
    kept.sort(key=lambda w: (-len(w), w))
    return kept[:MAX_QUERY_WORDS]


def matching_all(column, words: Iterable[str]) -> list:
    """One condition per word: the word appears somewhere in the column. Words are letters and digits
    only, so nothing in them is a LIKE wildcard. The columns hold lower case already: LIKE, not ILIKE
    (PostgreSQL's trigram index serves both; on SQLite, ILIKE would lower() every row)."""
    return [column.like(f"%{word}%") for word in words]


# --- keeping the copies with their rows ---------------------------------------------------

Getter = Callable[[str], Any]


def search_column(compute: Callable[[Getter], str], length: int):
    """A copy column: computed from the row's other values on every insert that does not give it
    (ORM, bulk and Core inserts alike), '' for rows a plain SQL insert adds."""

    def default(context) -> str:
        return compute(context.get_current_parameters().get)

    return mapped_column(String(length), default=default, server_default="")


def keep_search_columns(
    model: type, sources: tuple[str, ...], columns: Mapping[str, Callable[[Getter], str]]
):
    """Recompute the copies of an ORM object whose searched values changed, when it is saved.

    Core UPDATE statements that change a searched value must set the copies themselves (the list
    refresh's merge does)."""

    def refresh(_mapper, _connection, target) -> None:
        state = inspect(target)
        if state.persistent and not any(state.attrs[name].history.has_changes() for name in sources):
            return
        get = lambda name: getattr(target, name)  # noqa: E731
        for column, compute in columns.items():
            value = compute(get)
            if getattr(target, column) != value:
                setattr(target, column, value)

    event.listen(model, "before_insert", refresh)
    event.listen(model, "before_update", refresh)
