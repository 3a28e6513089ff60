"""Screens that never show an old state.

One mechanism for every page: the response that sees a background job end (a list loaded, an
invoice published, a transfer done, any job's status fragment) also sends the htmx event
``raccord:integration-changed``. Each region of a page that shows what such a job changes (the
integration's status, the expiry banner, the transfer card, the tab counts, the rows, the events,
the support's jobs) is marked ``{{ live("its-id") }}``. One listener per page (``#mise-a-jour`` in
``base.html``) hears the event, fetches the page it is on once, and swaps in those regions by id
(``hx-select-oob``). Regions hold nothing the user is typing or ticking (a row being published
follows itself).

A change nobody in this browser started (a list refreshed because the software sent a webhook, the
night's or the hour's refresh, a colleague's publication) is heard too: a dossier's page asks
`GET /dossiers/<id>/changements` every few seconds while its tab is visible (static/js/app.js), with
the version it was rendered at (`dossier_version`: the dossier's version, read with the dossier). The
answer is 204 when nothing changed, and otherwise sends the same event. Its own version is
in a region marked live (#veille), so a page that has just been brought up to date asks with the new
one. Server-sent events would hold a gunicorn sync worker per open tab: a conditional poll costs the
two queries every page makes (the session and the dossier).
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


def dossier_version(dossier_id: int) -> str:
    """What a dossier's pages show has changed when this changes: the dossier's version, a token
    rewritten in the same transaction as every write of what its pages show (its integrations,
    lists and their items, documents, rules, events: webapp.services.summaries). It is read with the
    dossier itself (services.dossiers.get_dossier_for): the poll costs no query of its own."""
    from webapp.fragments import dossier_state

    state = dossier_state(dossier_id)
    if state is None or state.version is None:
        # This request wrote something not yet committed: read what is committed once it is.
        from sqlalchemy import select

        from webapp.extensions import db
        from webapp.models import DossierSummary

        return (
            db.session.scalar(select(DossierSummary.version).where(DossierSummary.dossier_id == dossier_id))
            or ""
        )
    return state.version


def is_refresh() -> bool:
    """Whether this request is the listener fetching its page again (not the user opening it)."""
    return request.headers.get("HX-Trigger") == LISTENER
