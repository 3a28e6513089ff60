"""'Mes dossiers', the cabinet's dashboard: each dossier with its connection's state, the counts
that need someone, filters, sorting and pages.

Each dossier's figures are stored in its line (models.DossierSummary), kept true by every write in
the same transaction (services.summaries), from the one definition below (summary_select: correlated
subqueries on indexed columns, the shown integration by `integration.dossier_id`, its lists by
`list_sync (integration_id, kind)`, its invoices by `document (integration_id, status, …)`). A page
reads lines, not those subqueries: for someone who sees the whole cabinet, its lines alone (one query
for the page's 50, one count, the counts at the top from one index); for a restricted member, the
dossiers they were given joined to their lines. The name order without filters walks
`dossier (organisation_id, sort_name, id)` (migration 0026); the rows are read by their 50 ids.

The integration shown for a dossier is the one its other pages show (services.integrations.
latest_integration_for): the newest that is not disconnected, else the newest. "Ce mois-ci" is the
current calendar month in Europe/Paris: an access ends this month when it ends before the first day
of next month, Paris time (one that already ended and is still shown connected counts too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased

from webapp.connectors.catalogue import CATALOGUE
from webapp.extensions import db
from webapp.ids import parse_page
from webapp.models import (
    Document,
    DocumentStatus,
    Dossier,
    DossierSummary,
    Integration,
    IntegrationStatus,
    ListSync,
    User,
)
from webapp.models.base import utcnow
from webapp.models.lists import SyncStatus
from webapp.search import matching_all, query_words
from webapp.services.dossiers import viewed_as, visible_dossiers
from webapp.services.summaries import bring_up_to_date

PAGE_SIZE = 50
PARIS = ZoneInfo("Europe/Paris")

#: The status filter, as the URL says it (statut=…): the shown integration's status, or none at all.
STATUSES: dict[str, IntegrationStatus | None] = {
    "connectee": IntegrationStatus.CONNECTED,
    "expiree": IntegrationStatus.EXPIRED,
    "deconnectee": IntegrationStatus.DISCONNECTED,
    "non-connecte": None,
}
STATUS_LABELS = {
    "connectee": _l("Connectée"),
    "expiree": _l("Expirée"),
    "deconnectee": _l("Déconnectée"),
    "non-connecte": _l("Non connecté"),
}
#: The sortable columns (tri=…); each is ascending by default, with the name then the id to break ties.
SORTS = ("nom", "statut", "fin-acces", "actualisation", "echecs")
ORDERS = ("asc", "desc")
#: What the search reads of the query string (as the list's search box did before).
MAX_SEARCH = 100


def month_end(now: datetime | None = None) -> datetime:
    """The first instant of next month in Europe/Paris, in UTC: accesses ending before it end this month."""
    local = (now or utcnow()).astimezone(PARIS)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=PARIS).astimezone(UTC)


@dataclass(frozen=True)
class Filters:
    """What the page shows, read from its query string; anything unknown is left out, never an error."""

    q: str = ""
    status: str = ""  # a key of STATUSES
    software: str = ""  # a key of the catalogue
    needs_me: bool = False  # « A besoin de moi »
    consent_this_month: bool = False  # « accès qui finissent ce mois-ci »
    failed_invoices: bool = False  # « factures en échec »
    sort: str = "nom"
    order: str = "asc"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        def one(name: str) -> str:
            value = args.get(name)
            return value.strip() if isinstance(value, str) else ""

        status, software, sort, order = one("statut"), one("logiciel"), one("tri"), one("ordre")
        return cls(
            q=one("q")[:MAX_SEARCH],
            status=status if status in STATUSES else "",
            software=software if software in CATALOGUE else "",
            needs_me=one("besoin") == "1",
            consent_this_month=one("acces") == "mois",
            failed_invoices=one("factures") == "echec",
            sort=sort if sort in SORTS else "nom",
            order=order if order in ORDERS else "asc",
            page=parse_page(args.get("page")),
        )

    def params(self, **changes) -> dict[str, str]:
        """The query string of these filters (defaults left out), with `changes` applied."""
        f = replace(self, **changes) if changes else self
        pairs = {
            "q": f.q,
            "statut": f.status,
            "logiciel": f.software,
            "besoin": "1" if f.needs_me else "",
            "acces": "mois" if f.consent_this_month else "",
            "factures": "echec" if f.failed_invoices else "",
            "tri": "" if f.sort == "nom" else f.sort,
            "ordre": "" if f.order == "asc" else f.order,
            "page": "" if f.page == 1 else str(f.page),
        }
        return {k: v for k, v in pairs.items() if v}

    def query_string(self, **changes) -> str:
        return urlencode(self.params(**changes))

    def sorted_by(self, column: str) -> dict[str, str]:
        """The query string of a click on a column's header: that column ascending, or the other way
        round if it is already the sort; back to the first page."""
        order = "desc" if self.sort == column and self.order == "asc" else "asc"
        return self.params(sort=column, order=order, page=1)

    @property
    def narrowed(self) -> bool:
        """Whether anything but the sort and the page narrows the list."""
        return bool(
            self.q
            or self.status
            or self.software
            or self.needs_me
            or self.consent_this_month
            or self.failed_invoices
        )


@dataclass(frozen=True, slots=True)
class DossierView:
    """What a row shows of its dossier."""

    id: int
    name: str
    siren: str | None

    @property
    def siren_display(self) -> str:
        from webapp.typography import siren_grouped

        return siren_grouped(self.siren or "")


@dataclass(frozen=True, slots=True)
class IntegrationView:
    """What a row shows of the dossier's shown integration (its line's copy)."""

    id: int
    software: str
    company_name: str
    status: IntegrationStatus
    consent_expires_at: datetime | None

    @property
    def software_name(self) -> str:
        from webapp.connectors.catalogue import software_name

        return software_name(self.software)


@dataclass
class Row:
    dossier: DossierView
    integration: IntegrationView | None
    last_refresh: datetime | None
    lists_failed: int
    lists_running: int
    invoices_failed: int
    invoices_ready: int
    invoices_to_review: int
    # The counts as the row says them (« 2 listes »), set by `labelled`.
    lists_label: str = ""
    failed_label: str = ""
    ready_label: str = ""
    review_label: str = ""

    @property
    def status_key(self) -> str:
        if self.integration is None:
            return "non-connecte"
        return _STATUS_KEYS[self.integration.status]


_STATUS_KEYS = {status: key for key, status in STATUSES.items() if status is not None}


def _by_number(say):
    """`say(n)` once per number: a page's 50 rows show a handful of different counts, and each
    translation costs tens of µs."""
    said: dict[int, str] = {}

    def cached(number: int) -> str:
        if number not in said:
            said[number] = say(number)
        return said[number]

    return cached


def labelled(rows: list[Row]) -> list[Row]:
    """The rows with their counts said in words, each wording translated once for the page."""
    lists = _by_number(lambda n: ngettext("%(num)d liste", "%(num)d listes", n))
    failed = _by_number(lambda n: ngettext("%(num)d facture", "%(num)d factures", n))
    ready = _by_number(lambda n: ngettext("%(num)d prête", "%(num)d prêtes", n))
    review = _by_number(lambda n: ngettext("%(num)d à réviser", "%(num)d à réviser", n))
    for row in rows:
        row.lists_label = lists(row.lists_failed) if row.lists_failed else ""
        row.failed_label = failed(row.invoices_failed) if row.invoices_failed else ""
        row.ready_label = ready(row.invoices_ready) if row.invoices_ready else ""
        row.review_label = review(row.invoices_to_review) if row.invoices_to_review else ""
    return rows


@dataclass
class Counts:
    to_reconnect: int = 0
    consent_this_month: int = 0
    invoices_failed: int = 0


@dataclass
class PortfolioPage:
    rows: list[Row]
    total: int
    page: int
    pages: int
    filters: Filters
    counts: Counts = field(default_factory=Counts)


# --- the expressions, each correlated to a dossier (D) or to its shown integration (S) ------------


# Aliases made once: building one costs column proxies at every request.
_SHOWN = aliased(Integration, name="shown")
_NEWEST_LIVE = aliased(Integration, name="newest_live")
_NEWEST_ANY = aliased(Integration, name="newest_any")


def _shown_integration_id(dossier):
    """The newest integration not disconnected, else the newest: each read backwards along the index
    integration (dossier_id, created_at, id, status), without sorting (migration 0026)."""

    def newest(inner, *conditions):
        return (
            select(inner.id)
            .where(inner.dossier_id == dossier.id, *conditions)
            .order_by(inner.created_at.desc(), inner.id.desc())
            .limit(1)
            .correlate(dossier)
            .scalar_subquery()
        )

    return func.coalesce(
        newest(_NEWEST_LIVE, _NEWEST_LIVE.status != IntegrationStatus.DISCONNECTED), newest(_NEWEST_ANY)
    )


def _last_refresh(shown):
    return (
        select(func.max(ListSync.last_loaded_at))
        .where(ListSync.integration_id == shown.id)
        .correlate(shown)
        .scalar_subquery()
    )


def _lists_in(shown, status: SyncStatus):
    return (
        select(func.count())
        .select_from(ListSync)
        .where(ListSync.integration_id == shown.id, ListSync.status == status)
        .correlate(shown)
        .scalar_subquery()
    )


def _invoices_in(shown, condition):
    """How many invoices of the integration shown meet `condition` (0 without an integration)."""
    counted = (
        select(func.count())
        .select_from(Document)
        .where(Document.integration_id == shown.id, condition)
        .correlate(shown)
        .scalar_subquery()
    )
    return func.coalesce(counted, 0)


def summary_select(dossier_ids: list[int]):
    """The live figures of these dossiers, one row each in the columns of their line (models.
    DossierSummary): the one definition, which services.summaries copies into the lines after every
    write, and which the tests compare the lines to."""
    shown = _SHOWN
    return (
        select(
            Dossier.id.label("dossier_id"),
            Dossier.organisation_id.label("organisation_id"),
            Dossier.sort_name.label("sort_name"),
            shown.id.label("integration_id"),
            shown.software.label("software"),
            shown.company_name.label("company_name"),
            shown.status.label("integration_status"),
            shown.consent_expires_at.label("consent_expires_at"),
            _last_refresh(shown).label("last_loaded_at"),
            func.coalesce(_lists_in(shown, SyncStatus.FAILED), 0).label("lists_failed"),
            func.coalesce(_lists_in(shown, SyncStatus.RUNNING), 0).label("lists_running"),
            _invoices_in(shown, Document.status == DocumentStatus.FAILED).label("invoices_failed"),
            _invoices_in(shown, Document.status == DocumentStatus.READY).label("invoices_ready"),
            _invoices_in(shown, Document.status == DocumentStatus.TO_REVIEW).label("invoices_to_review"),
            _invoices_in(shown, Document.publication_running()).label("publications_running"),
        )
        .select_from(Dossier)
        .outerjoin(shown, shown.id == _shown_integration_id(Dossier))
        .where(Dossier.id.in_(dossier_ids))
    )


# --- the page, read from each dossier's line (S) --------------------------------------------------

_LINE = DossierSummary


def _consent_this_month(line, limit: datetime):
    return and_(
        line.integration_status == IntegrationStatus.CONNECTED,
        line.consent_expires_at.is_not(None),
        line.consent_expires_at < limit,
    )


def _status_rank(line):
    """Ascending, the ones needing someone first: Expirée, Déconnectée, Non connecté, Connectée."""
    return case(
        (line.integration_status.is_(None), 2),
        (line.integration_status == IntegrationStatus.EXPIRED, 0),
        (line.integration_status == IntegrationStatus.DISCONNECTED, 1),
        else_=3,
    )


def _base(user: User, *, joined: bool = True, searching: bool = False):
    """The dossiers the user may see, each joined to its line (unless `joined` is False, for a list
    that needs nothing of it): (select, D, S), D giving the dossier's id, sort_name and search_text.

    Someone who sees the whole cabinet reads its lines alone (the dossier table only for a search);
    otherwise visible_dossiers' conditions are used as they are when it reads the dossier table alone
    (the name order then walks the dossier index), or its query is a subquery the rest reads from."""
    line = _LINE
    if joined and not user.is_restricted and not viewed_as(user):
        # own_dossiers_condition for a user not restricted: the organisation's dossiers, all of them.
        query = select(line.dossier_id).select_from(line).where(line.organisation_id == user.organisation_id)
        if searching:
            query = query.join(Dossier, Dossier.id == line.dossier_id)
        return query, _LineKeys, line
    visible = visible_dossiers(user).order_by(None)
    froms = visible.get_final_froms()
    if len(froms) == 1 and froms[0] is Dossier.__table__:
        dossier, conditions = Dossier, [visible.whereclause] if visible.whereclause is not None else []
    else:
        dossier, conditions = aliased(Dossier, visible.subquery("visible")), []
    query = select(dossier.id).select_from(dossier).where(*conditions)
    if joined:
        query = query.outerjoin(line, line.dossier_id == dossier.id)
    return query, dossier, line


class _LineKeys:
    """A dossier's keys as its line holds them (its search text is the dossier's own)."""

    id = _LINE.dossier_id
    sort_name = _LINE.sort_name
    search_text = Dossier.search_text


def _needs_integration(filters: Filters) -> bool:
    return bool(
        filters.status
        or filters.software
        or filters.needs_me
        or filters.consent_this_month
        or filters.failed_invoices
        or filters.sort != "nom"
    )


def _conditions(filters: Filters, dossier, line, limit: datetime) -> list:
    conditions = list(matching_all(dossier.search_text, query_words(filters.q)))
    if filters.status:
        wanted = STATUSES[filters.status]
        conditions.append(
            line.integration_status.is_(None) if wanted is None else line.integration_status == wanted
        )
    if filters.software:
        conditions.append(line.software == filters.software)
    if filters.consent_this_month:
        conditions.append(_consent_this_month(line, limit))
    if filters.failed_invoices:
        conditions.append(line.invoices_failed > 0)
    if filters.needs_me:
        conditions.append(
            or_(
                line.integration_status == IntegrationStatus.EXPIRED,
                _consent_this_month(line, limit),
                line.lists_failed > 0,
                line.invoices_failed > 0,
            )
        )
    return conditions


def _order(filters: Filters, dossier, line) -> list:
    descending = filters.order == "desc"

    def directed(expression):
        return expression.desc() if descending else expression.asc()

    def nulls_last(expression):
        # Without a value (never loaded, no end known): last, whichever the direction.
        return [case((expression.is_(None), 1), else_=0), directed(expression)]

    ties = [dossier.sort_name.asc(), dossier.id.asc()]
    if filters.sort == "statut":
        return [directed(_status_rank(line)), *ties]
    if filters.sort == "fin-acces":
        return [*nulls_last(line.consent_expires_at), *ties]
    if filters.sort == "actualisation":
        return [*nulls_last(line.last_loaded_at), *ties]
    if filters.sort == "echecs":
        # A line is always there: read as it is, the order walks ix_dossier_summary_failed_first.
        failed = line.invoices_failed if dossier is _LineKeys else func.coalesce(line.invoices_failed, 0)
        return [directed(failed), *ties]
    return [directed(dossier.sort_name), directed(dossier.id)]


def portfolio_page(user: User, filters: Filters, *, now: datetime | None = None) -> PortfolioPage:
    """The page of dossiers `filters` asks for (a page past the last one shows the last one), and the
    counts at the top."""
    # What this session changed and has not committed yet shows too.
    bring_up_to_date(db.session)
    limit = month_end(now)
    joined = _needs_integration(filters)
    query, dossier, line = _base(user, joined=joined, searching=bool(filters.q))
    filtered = query.where(*_conditions(filters, dossier, line, limit))
    ordered = filtered.order_by(*_order(filters, dossier, line))

    def read(page: int) -> list:
        return db.session.execute(ordered.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()

    # The number of matches apart: counting the lines (or walking an index) costs less than a window
    # over the sorted page, which has to keep every match.
    total = db.session.scalar(filtered.with_only_columns(func.count(), maintain_column_froms=False)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(filters.page, pages)
    found = read(page) if total else []
    return PortfolioPage(
        rows=labelled(rows_for([row[0] for row in found])),
        total=total,
        page=page,
        pages=pages,
        filters=replace(filters, page=page),
        counts=counts_for(user, limit),
    )


def rows_for(ids: list[int]) -> list[Row]:
    """The rows of these dossiers (already checked as visible), in this order, with their figures: one
    query whatever their number, of the columns the row shows (no entity to build)."""
    if not ids:
        return []
    line = _LINE
    query = (
        select(
            Dossier.id,
            Dossier.name,
            Dossier.siren,
            line.integration_id,
            line.software,
            line.company_name,
            line.integration_status,
            line.consent_expires_at,
            line.last_loaded_at,
            line.lists_failed,
            line.lists_running,
            line.invoices_failed,
            line.invoices_ready,
            line.invoices_to_review,
        )
        .outerjoin(line, line.dossier_id == Dossier.id)
        .where(Dossier.id.in_(ids))
    )
    found = {
        row.id: Row(
            dossier=DossierView(row.id, row.name, row.siren),
            integration=None
            if row.integration_id is None
            else IntegrationView(
                row.integration_id,
                row.software,
                row.company_name,
                row.integration_status,
                row.consent_expires_at,
            ),
            last_refresh=row.last_loaded_at,
            lists_failed=row.lists_failed or 0,
            lists_running=row.lists_running or 0,
            invoices_failed=row.invoices_failed or 0,
            invoices_ready=row.invoices_ready or 0,
            invoices_to_review=row.invoices_to_review or 0,
        )
        for row in db.session.execute(query)
    }
    return [found[i] for i in ids if i in found]


def counts_for(user: User, limit: datetime) -> Counts:
    """The counts at the top, over every dossier the user sees (whatever the filters): one aggregate
    over their lines."""
    query, _dossier, line = _base(user)
    row = db.session.execute(
        query.with_only_columns(
            func.coalesce(
                func.sum(case((line.integration_status == IntegrationStatus.EXPIRED, 1), else_=0)), 0
            ),
            func.coalesce(func.sum(case((_consent_this_month(line, limit), 1), else_=0)), 0),
            func.coalesce(func.sum(line.invoices_failed), 0),
            maintain_column_froms=False,
        )
    ).one()
    return Counts(to_reconnect=int(row[0]), consent_this_month=int(row[1]), invoices_failed=int(row[2]))


def visible_among(user: User, ids: list[int]) -> list[Dossier]:
    """The dossiers of `ids` the user may see, in the order given: an id of another organisation, or
    of no dossier, is dropped (and never acted on)."""
    if not ids:
        return []
    found = {d.id: d for d in db.session.scalars(visible_dossiers(user).where(Dossier.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


# --- the bulk action « Actualiser les données de l'intégration » -----------------------------------


def current_integrations(dossiers: list[Dossier]) -> dict[int, Integration]:
    """Each dossier's integration in use (the newest not disconnected), in one query."""
    found: dict[int, Integration] = {}
    for integration in db.session.scalars(
        select(Integration)
        .where(
            Integration.dossier_id.in_([d.id for d in dossiers]),
            Integration.status != IntegrationStatus.DISCONNECTED,
        )
        .order_by(Integration.created_at.desc(), Integration.id.desc())
    ):
        found.setdefault(integration.dossier_id, integration)
    return found


def refresh_selected(dossiers: list[Dossier], user: User) -> dict[str, str]:
    """For each dossier connected, the refresh of the page 'Intégration' (services.lists.request_refresh:
    every list, in jobs, a list already loading joined); the others are left as they are. The toast
    says how many started, how many were left out, and why."""
    from webapp.services.lists import request_refresh

    integrations = current_integrations(dossiers)
    started = expired = unconnected = 0
    refused: list[str] = []
    for dossier in dossiers:
        integration = integrations.get(dossier.id)
        if integration is None:
            unconnected += 1
        elif integration.status is IntegrationStatus.EXPIRED:
            expired += 1
        else:
            answer = request_refresh(integration, None, user)
            if answer["level"] == "error":
                refused.append(_("« %(name)s » : %(reason)s", name=dossier.name, reason=answer["message"]))
            else:
                started += 1
    parts = []
    if started:
        parts.append(
            ngettext(
                "Actualisation lancée pour %(num)d dossier.",
                "Actualisation lancée pour %(num)d dossiers.",
                started,
            )
        )
    else:
        parts.append(_("Aucune actualisation lancée."))
    if expired:
        parts.append(
            ngettext(
                "%(num)d dossier passé : son intégration a expiré (« Se reconnecter » d'abord).",
                "%(num)d dossiers passés : leur intégration a expiré (« Se reconnecter » d'abord).",
                expired,
            )
        )
    if unconnected:
        parts.append(
            ngettext(
                "%(num)d dossier passé : il n'est relié à aucun logiciel comptable.",
                "%(num)d dossiers passés : ils ne sont reliés à aucun logiciel comptable.",
                unconnected,
            )
        )
    if refused:
        parts.append(
            ngettext(
                "%(num)d actualisation n'a pas pu commencer :",
                "%(num)d actualisations n'ont pas pu commencer :",
                len(refused),
            )
        )
        parts.extend(refused[:3])
    level = "error" if refused or not started else ("info" if expired or unconnected else "success")
    return {"message": " ".join(parts), "level": level}
