"""Screens that never show an old state.

One mechanism for every page: the response that sees a background job end (a list loaded, an
invoice published, a transfer done, any job's status fragment) also sends the htmx event
``raccord:integration-changed``. Each region of a page that shows what such a job changes (the
integration's status, the expiry banner, the transfer card, the tab counts, the rows, the events,
the support's jobs) is marked ``{{ live("its-id") }}``. One listener per page (``#mise-a-jour`` in
``base.html``) hears the event, fetches the page it is on once, and swaps in those regions by id
(``hx-select-oob``). Regions hold nothing the user is typing or ticking (a row being published
follows itself). Nothing polls when nothing runs: only the fragment of a running job asks again.
"""

from __future__ import annotations

from flask import request
from markupsafe import Markup

#: The id of the page's listener (templates/base.html), sent by htmx as the request's HX-Trigger.
LISTENER = "mise-a-jour"

#: The event every region listens for; sent with HX-Trigger by the response that sees a job end.
INTEGRATION_CHANGED = "raccord:integration-changed"


def changed(trigger: dict | None = None) -> dict:
    """The HX-Trigger of a response that saw a job end: its own events, and the change."""
    return {**(trigger or {}), INTEGRATION_CHANGED: ""}


def live(region_id: str) -> Markup:
    """The attributes of a region that updates itself when a job ends: an id, and the mark."""
    return Markup('id="{}" data-live').format(region_id)


def is_refresh() -> bool:
    """Whether this request is the listener fetching its page again (not the user opening it)."""
    return request.headers.get("HX-Trigger") == LISTENER
