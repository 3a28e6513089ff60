"""French typography for the French catalogue: the no-break spaces a printed French text has.

Sources are written with ordinary spaces (easy to type, easy to search); `flask i18n update` writes
every French msgstr as `french(msgid)`. Only the French catalogue gets it: English has no such
spaces. Placeholders, HTML tags and URLs are left exactly as they are.
"""

from __future__ import annotations

import re

NBSP = "\u00a0"  # before « : », inside « guillemets », between a number and % or €
NNBSP = "\u202f"  # before « ; ? ! », and between the groups of a SIREN

# What is never touched: printf and format placeholders, HTML tags (with their attributes), URLs.
_PROTECTED = re.compile(
    r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdifrxX]"  # %(name)s, %(count)d
    r"|%[sdif]"  # %s
    r"|\{\w*(?:[.:!][^{}]*)?\}"  # {name}, {0:.2f}
    r"|<[^<>]*>"  # <a href="…" title="…">
    r"|\b(?:https?|mailto):[^\s<>\"']+"  # URLs
)
_PLACEHOLDER_START = 0xE000  # private-use characters stand for the protected pieces meanwhile
_NUMBER_LIKE = "\ue000-\uf8ff"  # a placeholder may stand for a number: « %(rate)s % »

_RULES = (
    (re.compile(r" +(?=:)"), NBSP),
    (re.compile(r" +(?=[;?!])"), NNBSP),
    (re.compile(r"(?<=«) +"), NBSP),
    (re.compile(r" +(?=»)"), NBSP),
    (re.compile(rf"(?<=[\d{_NUMBER_LIKE}]) +(?=%|€)"), NBSP),
)


def french(text: str) -> str:
    """`text` with the spaces French typography asks for; idempotent."""
    pieces: list[str] = []

    def hide(match: re.Match) -> str:
        pieces.append(match.group(0))
        return chr(_PLACEHOLDER_START + len(pieces) - 1)

    hidden = _PROTECTED.sub(hide, text)
    for pattern, space in _RULES:
        hidden = pattern.sub(space, hidden)
    if not pieces:
        return hidden
    return re.sub(r"[\ue000-\uf8ff]", lambda m: pieces[ord(m.group(0)) - _PLACEHOLDER_START], hidden)


def siren_grouped(siren: str) -> str:
    """'732829320' → '732 829 320', grouped by narrow no-break spaces as printed in French."""
    if len(siren) == 9 and siren.isdigit():
        return NNBSP.join((siren[:3], siren[3:6], siren[6:]))
    return siren
