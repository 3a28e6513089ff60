"""Parts of a dossier's pages kept rendered in Redis, found under the dossier's version.

The costly parts of the busiest pages (the rows of 'Documents' and its tab counts, the results of a
list's search, the lists table and the transfer's counts on 'Intégration') are rendered once and kept
under a key made of:

- the dossier and its version (DossierSummary.version): a random token rewritten, in the same
  transaction, by every write of what the dossier's pages show (webapp.services.summaries). A page
  reads the version before the rows, so a part is never kept under a version older than what it
  shows, and a write always leads the next page to a new key: nothing is ever invalidated by hand;
- the language of the page, and what else the part depends on (filters, page number, search words);
- the build: a digest of the templates, the code and the catalogues, so a deployment never serves a
  part made by the code before it.

What belongs to one person or one moment stays outside the kept parts: the user's name, flashed
messages, anything that depends on the time of day (a part that shows a date relative to today has
the day in its key). A form inside a kept part is rendered with a mark in place of its CSRF token
(`csrf_token()` in templates, while a part renders), and the mark is replaced by this session's token
each time the part is served. A request whose own session has written
something not yet committed renders everything (its writes have no version yet). Redis unreachable:
the page is rendered as if nothing were kept, and says nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import current_app, g
from flask_babel import get_locale
from markupsafe import Markup
from redis.exceptions import RedisError
from sqlalchemy import select

from webapp.models.base import utcnow

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
_build: str | None = None


def build_digest() -> str:
    """What the kept parts were made by: templates, Python code and catalogues, digested once."""
    global _build
    if _build is None:
        digest = hashlib.blake2b(digest_size=6)
        for folder, pattern in (
            (ROOT / "templates", "*.html"),
            (ROOT / "webapp", "*.py"),
            (ROOT / "webapp", "*.mo"),
        ):
            for path in sorted(folder.rglob(pattern)):
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
        _build = digest.hexdigest()
    return _build


def _enabled() -> bool:
    return bool(current_app.config["FRAGMENT_CACHE"])


@dataclass(frozen=True)
class DossierState:
    """What a page needs to know of a dossier before deciding to serve a kept part: its version, and
    from its line of 'Mes dossiers' the integration its pages show, whether one of its lists is
    loading (a loading list shows its progress, not kept) and when its access ends."""

    version: str | None
    integration_id: int | None = None
    software: str | None = None
    integration_status: str | None = None
    consent_expires_at: datetime | None = None
    lists_running: int = 0
    publications_running: int = 0

    def consent_ends_within(self, integration_id: int, days: int) -> bool:
        """Integration.consent_ends_within, for the integration the dossier's pages show."""
        if integration_id != self.integration_id or self.integration_status != "connected":
            return False
        if self.consent_expires_at is None:
            return False
        return self.consent_expires_at - utcnow() <= timedelta(days=days)


def state_columns() -> tuple:
    from webapp.models import DossierSummary

    return (
        DossierSummary.version,
        DossierSummary.integration_id,
        DossierSummary.software,
        DossierSummary.integration_status,
        DossierSummary.consent_expires_at,
        DossierSummary.lists_running,
        DossierSummary.publications_running,
    )


def remember_state(dossier_id: int, row) -> None:
    """The state read with the dossier itself (services.dossiers.get_dossier_for), for this request."""
    status = row.integration_status
    g.setdefault("_dossier_states", {})[dossier_id] = DossierState(
        version=row.version or None,
        integration_id=row.integration_id,
        software=row.software,
        integration_status=getattr(status, "value", status),
        consent_expires_at=row.consent_expires_at,
        lists_running=row.lists_running or 0,
        publications_running=row.publications_running or 0,
    )


def dossier_state(dossier_id: int) -> DossierState | None:
    """The dossier's state as this request sees it, or None when nothing may be kept or read
    (this session wrote something not yet committed, or the dossier has no line yet)."""
    from webapp.extensions import db
    from webapp.models import DossierSummary
    from webapp.services import summaries

    session = db.session
    if summaries.pending(session) or session.new or session.dirty or session.deleted:
        return None
    states = g.setdefault("_dossier_states", {})
    if dossier_id not in states:
        row = session.execute(select(*state_columns()).where(DossierSummary.dossier_id == dossier_id)).first()
        if row is None:
            return None
        remember_state(dossier_id, row)
    return states[dossier_id]


def dossier_version(dossier_id: int) -> str | None:
    state = dossier_state(dossier_id)
    return state.version if state else None


def _key(name: str, dossier_id: int, version: str, parts: tuple) -> str:
    said = hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=12).hexdigest()
    marks = _mark("id")  # an app with other marks never meets these parts
    return f"raccord:fragment:{build_digest()}:{marks}:{name}:{dossier_id}:{version}:{get_locale()}:{said}"


def _redis():
    from webapp.services.jobs import get_redis

    return get_redis()


@lru_cache(maxsize=8)
def _marks_for(secret: str) -> dict[str, str]:
    """The marks a kept part carries where the reader's own CSRF token, name and the page's own part
    go, replaced on the way out. Derived from the secret key: the same in every process (parts are
    shared through Redis), and unknown to users, so no text anyone types (a search, an invoice's
    supplier, a dossier's name) can be taken for one and get a reader's token or name put in it."""
    digest = hmac.new(secret.encode(), b"raccord kept-part marks", hashlib.sha256).hexdigest()
    marks = {kind: f"raccord-{kind}-{digest[:24]}" for kind in ("csrf", "name", "body")}
    return marks | {"id": digest[24:32]}  # in the parts' keys: an app with other marks never meets them


def _mark(kind: str) -> str:
    return _marks_for(current_app.config["SECRET_KEY"])[kind]


def csrf_token() -> str:
    """The templates' `csrf_token()`: the mark while a kept part renders, else the session's token."""
    from flask_wtf.csrf import generate_csrf

    return _mark("csrf") if g.get("_rendering_fragment") else generate_csrf()


def _with_session_token(html: str) -> Markup:
    mark = _mark("csrf")
    if mark in html:
        from flask_wtf.csrf import generate_csrf

        html = html.replace(mark, generate_csrf())
    return Markup(html)  # noqa: S704 - what a template rendered with autoescape, a token put in


def _render_fragment(render: Callable[[], str]) -> str:
    outer = g.get("_rendering_fragment", False)
    g._rendering_fragment = True
    try:
        return str(render())
    finally:
        g._rendering_fragment = outer


class _LocalParts:
    """The parts this process served last, by key, up to a number of bytes: in front of Redis, a
    hit costs a dictionary lookup instead of a round trip. Keys carry the version, so nothing here
    is ever out of date; the oldest go first when the bytes run out."""

    def __init__(self) -> None:
        self._parts: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._parts.get(key)
            if found is not None:
                self._parts.move_to_end(key)
            return found

    def put(self, key: str, value: bytes, limit: int) -> None:
        if len(value) > limit // 4:
            return
        with self._lock:
            old = self._parts.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._parts[key] = value
            self._bytes += len(value)
            while self._bytes > limit and self._parts:
                _key, dropped = self._parts.popitem(last=False)
                self._bytes -= len(dropped)


_local = _LocalParts()


def _local_limit() -> int:
    return int(current_app.config["FRAGMENT_CACHE_LOCAL_BYTES"])


def _kept(name: str, dossier_id: int, parts: tuple, render: Callable[[], str]) -> str:
    """The part's HTML (CSRF marks in it) from this process, else Redis, else rendered and kept."""
    version = dossier_version(dossier_id) if _enabled() else None
    if version is None:
        return _render_fragment(render)
    key = _key(name, dossier_id, version, parts)
    limit = _local_limit()
    found = _local.get(key) if limit else None
    if found is not None:
        return found.decode("utf-8")
    try:
        found = _redis().get(key)
    except RedisError:
        log.warning("Fragment cache unreachable: %s rendered afresh", name)
        return _render_fragment(render)
    if found is not None:
        if limit:
            _local.put(key, found, limit)
        return found.decode("utf-8")
    html = _render_fragment(render)
    raw = html.encode("utf-8")
    if limit:
        _local.put(key, raw, limit)
    try:
        _redis().set(key, raw, ex=int(current_app.config["FRAGMENT_CACHE_SECONDS"]))
    except RedisError:
        log.warning("Fragment cache unreachable: %s not kept", name)
    return html


def cached_html(name: str, dossier_id: int, parts: tuple, render: Callable[[], str]) -> Markup:
    """The part `name` of the dossier's page for `parts`, rendered by `render` when not kept."""
    return _with_session_token(_kept(name, dossier_id, parts, render))


def dossier_sidebar(dossier) -> Markup:
    """The dossier's menu (its name, SIREN, the links with the current one marked), kept rendered
    for each page of the dossier: fifteen links and labels made once, not on every page."""
    from flask import render_template, request

    view_args = request.view_args or {}
    return cached_html(
        "sidebar",
        dossier.id,
        (request.endpoint, view_args.get("slug"), view_args.get("kind")),
        lambda: render_template("layouts/_sidebar.html", dossier=dossier),
    )


def validator(name: str, dossier_id: int, parts: tuple) -> str | None:
    """The ETag of a fragment that is only what the dossier's version says (a row polled while its
    invoice is published), or None when the version cannot be trusted in this request. The same in
    every process: a digest of the key the fragment would be kept under."""
    version = dossier_version(dossier_id) if _enabled() else None
    if version is None:
        return None
    key = _key(name, dossier_id, version, parts)
    return '"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'


def conditional(response, etag: str | None):
    """The response with its ETag, revalidated by the browser each time (private, no-cache)."""
    if etag is not None:
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = "private, no-cache"
    return response


def not_modified(etag: str | None):
    """A 304 when the browser already holds this fragment (If-None-Match), else None."""
    from flask import make_response, request

    if etag is None or not request.if_none_match.contains(etag.strip('"')):
        return None
    return conditional(make_response("", 304), etag)


@dataclass(frozen=True)
class Banner:
    """The dossier layout's banner: the access expired, or ending soon, with the integration's id."""

    kind: str  # "expired" or "ending"
    integration_id: int
    software_name: str
    consent_expires_at: datetime | None


def integration_banner(dossier) -> Banner | None:
    """What the banner above every page of the dossier says, from the state read with the dossier
    (no query), or from its integrations when this request changed them."""
    from webapp.connectors.catalogue import software_name

    days = int(current_app.config["CONSENT_NOTICE_DAYS"])
    state = dossier_state(dossier.id)
    if state is None:
        current = dossier.current_integration
        if current is None:
            return None
        if current.status.value == "expired":
            return Banner("expired", current.id, current.software_name, current.consent_expires_at)
        if current.consent_ends_within(days):
            return Banner("ending", current.id, current.software_name, current.consent_expires_at)
        return None
    if state.integration_id is None or state.integration_status not in ("expired", "connected"):
        return None  # not connected, or the integration shown is disconnected: no current one
    name = software_name(state.software or "")
    if state.integration_status == "expired":
        return Banner("expired", state.integration_id, name, state.consent_expires_at)
    if state.consent_ends_within(state.integration_id, days):
        return Banner("ending", state.integration_id, name, state.consent_expires_at)
    return None


# --- the page around a kept part ------------------------------------------------------------------

_QUEUE_KEY = "reconnect_queue"  # webapp.dossiers.routes.QUEUE_KEY: a series of reconnections


def user_name() -> str:
    """The templates' name of the signed-in person: a mark while a shell is kept, put back after."""
    from flask_login import current_user

    return _mark("name") if g.get("_rendering_shell") else current_user.display_name


def render_dossier_page(template_name: str, dossier, body: Markup, **context: Any) -> str:
    """A dossier's page made of its kept part (`body`) and the page around it (top bar, menu,
    banner, toasts), the latter kept in this process for the same dossier version, address, role
    and banner, with the person's name and CSRF token put in each time. A page with anything of
    the moment in its frame (flashed messages, a series of reconnections, the support's view)
    is rendered whole."""
    from flask import render_template, request, session
    from flask_login import current_user
    from markupsafe import escape

    state = dossier_state(dossier.id) if _enabled() else None
    limit = _local_limit()
    if (
        state is None
        or state.version is None
        or not limit
        or current_user.is_staff
        or session.get("_flashes")
        or session.get(_QUEUE_KEY)
    ):
        return render_template(template_name, dossier=dossier, body=body, **context)
    banner = integration_banner(dossier)
    parts = (
        template_name,
        request.full_path,
        request.endpoint,
        sorted((request.view_args or {}).items()),
        current_user.is_admin,
        banner and (banner.kind, banner.integration_id),
        sorted((name, repr(value)) for name, value in context.items()),
    )
    key = _key("shell", dossier.id, state.version, parts)
    body_mark, name_mark = _mark("body"), _mark("name")
    found = _local.get(key)
    if found is None:
        outer = g.get("_rendering_fragment", False), g.get("_rendering_shell", False)
        g._rendering_fragment = g._rendering_shell = True
        try:
            html = render_template(
                template_name,
                dossier=dossier,
                body=Markup(body_mark),  # noqa: S704 - a mark of ours
                **context,
            )
        finally:
            g._rendering_fragment, g._rendering_shell = outer
        if html.count(body_mark) != 1:
            return render_template(template_name, dossier=dossier, body=body, **context)
        found = html.encode("utf-8")
        _local.put(key, found, limit)
    head, tail = found.decode("utf-8").split(body_mark)
    name = str(escape(current_user.display_name))
    return "".join(
        (
            str(_with_session_token(head.replace(name_mark, name))),
            str(body),
            str(_with_session_token(tail.replace(name_mark, name))),
        )
    )
