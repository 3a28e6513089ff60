"""Refreshing the imported lists: one at a time per list, pages staged as they arrive, one atomic merge."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import bindparam, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.orm import Session

from webapp import metrics
from webapp.connectors.base import (
    ConnectorError,
    DailyBudgetSpent,
    IntegrationExpired,
    RateLimited,
    checked_item,
)
from webapp.connectors.catalogue import get_connector, software_name
from webapp.connectors.limits import when_words
from webapp.extensions import db
from webapp.models import (
    Integration,
    IntegrationStatus,
    JobRun,
    ListItem,
    ListItemStaging,
    ListKind,
    ListSync,
    SyncStatus,
    User,
)
from webapp.models.base import UTCDateTime, utcnow
from webapp.models.lists import item_search_text, item_sort_name
from webapp.search import matching_all, query_words
from webapp.services import summaries
from webapp.services.events import record_event
from webapp.services.integrations import LiveTokens, disconnected_message, expired_message, mark_expired
from webapp.services.jobs import (
    JobBackendUnavailable,
    JobDeferred,
    UserFacingJobError,
    get_redis,
    job_view,
    launch_job,
    report_progress,
)

log = logging.getLogger(__name__)

ALL_KINDS = list(ListKind)
T = TypeVar("T")
_ITEM_COLUMNS = (
    *("external_id", "code", "name", "vat_number", "siren", "rate", "active", "extras"),
    *("search_text", "sort_name"),  # computed when staged (webapp.search), copied as they are
)


# --- starting refreshes -----------------------------------------------------------------


def sync_for(integration: Integration, kind: ListKind) -> ListSync:
    sync = db.session.scalar(
        select(ListSync).where(ListSync.integration_id == integration.id, ListSync.kind == kind)
    )
    if sync is None:
        sync = ListSync(integration_id=integration.id, kind=kind, status=SyncStatus.NEVER)
        db.session.add(sync)
        try:
            db.session.commit()
        except Exception:  # another request made it first
            db.session.rollback()
            sync = db.session.scalar(
                select(ListSync).where(ListSync.integration_id == integration.id, ListSync.kind == kind)
            )
    return sync


def syncs_by_kind(integration: Integration) -> dict[ListKind, ListSync]:
    """Every list's load state, read in one query (a missing one is made as sync_for makes it)."""
    found = {
        sync.kind: sync
        for sync in db.session.scalars(select(ListSync).where(ListSync.integration_id == integration.id))
    }
    return {kind: found.get(kind) or sync_for(integration, kind) for kind in ALL_KINDS}


#: A list whose refresh is under way or waiting for its time: a second click joins it.
BUSY = (SyncStatus.RUNNING, SyncStatus.DEFERRED)


def _release_if_stale(sync: ListSync) -> None:
    """A sync left 'running' (or waiting for the next day) by a worker that died, or a job the queue
    lost: its job says failed, so the list is free again."""
    if sync.status not in BUSY or sync.job_run_id is None:
        return
    run = db.session.get(JobRun, sync.job_run_id)
    if run is not None and job_view(run).finished:
        db.session.execute(
            update(ListSync)
            .where(ListSync.id == sync.id, ListSync.status.in_(BUSY), ListSync.job_run_id == run.id)
            .values(status=SyncStatus.FAILED, last_error=run.message or _("Le chargement s'est interrompu."))
        )
        db.session.commit()


def start_refresh(
    integration: Integration, kind: ListKind, user: User | None, *, changes_only: bool = False
) -> JobRun | None:
    """Queue a refresh of one list, or join the one already running (a second click starts nothing).

    `changes_only` asks the software for what changed since the last load, where it can say so
    (the background refreshes); a user's click reads the whole list, which also finds deletions."""
    if integration.status is IntegrationStatus.DISCONNECTED:
        raise UserFacingJobError(disconnected_message(integration))
    if integration.status is not IntegrationStatus.CONNECTED:
        raise UserFacingJobError(expired_message(integration))
    sync = sync_for(integration, kind)
    _release_if_stale(sync)
    previous = {"status": sync.status, "last_error": sync.last_error, "job_run_id": sync.job_run_id}
    # Claim the list with one conditional UPDATE: of two concurrent clicks, only one wins. A refresh
    # put off to the next day is joined too: the company's calls for the day are spent.
    claimed = db.session.execute(
        update(ListSync)
        .where(ListSync.id == sync.id, ListSync.status.not_in(BUSY))
        .values(status=SyncStatus.RUNNING, last_attempt_at=utcnow(), last_error="", job_run_id=None)
    ).rowcount
    db.session.commit()
    if not claimed:
        db.session.refresh(sync)
        return db.session.get(JobRun, sync.job_run_id) if sync.job_run_id else None
    try:
        run = launch_job(
            "jobs.lists.refresh_list",
            integration.id,
            kind.value,
            changes_only,
            kind="list_refresh",
            description=_("Chargement : %(list)s", list=kind.label),
            owner=user,
            dossier=integration.dossier,
        )
    except Exception:
        # Not started (the job service is down): the list is left as it was, not shown in failure.
        db.session.execute(update(ListSync).where(ListSync.id == sync.id).values(**previous))
        db.session.commit()
        raise
    db.session.execute(update(ListSync).where(ListSync.id == sync.id).values(job_run_id=run.id))
    db.session.commit()
    return run


def request_refresh(integration: Integration, kind: ListKind | None, user: User | None) -> dict[str, str]:
    """Start a refresh of one list (or of all when `kind` is None) and word the toast that says so.

    A refresh that cannot start (integration expired, job service down) is said in the toast instead.
    """
    try:
        if kind is None:
            start_refresh_all(integration, user)
            return {"message": _("Le chargement des listes a commencé."), "level": "info"}
        start_refresh(integration, kind, user)
        sync = sync_for(integration, kind)
        if sync.status is SyncStatus.DEFERRED:
            return {"message": sync.last_error, "level": "info"}
        return {
            "message": _("Le chargement de la liste « %(list)s » a commencé.", list=kind.label),
            "level": "info",
        }
    except (UserFacingJobError, JobBackendUnavailable) as exc:
        return {"message": str(exc), "level": "error"}


def start_refresh_all(integration: Integration, user: User | None) -> list[JobRun]:
    runs = [start_refresh(integration, kind, user) for kind in ALL_KINDS]
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        actor_id=user.id if user else None,
        kind="lists.refresh_requested",
        message=_("Actualisation des données de l'intégration demandée."),
    )
    db.session.commit()
    return [r for r in runs if r is not None]


# --- the refresh itself (inside the worker) ---------------------------------------------


def prefetched(pages: Iterator[T], app: Flask, depth: int = 2) -> Iterator[T]:
    """Read the next pages from the software while this thread writes the current one.

    The reader runs in its own thread and app context (its own database session, used only if the
    access token must be renewed), and holds at most `depth` pages: memory stays flat.
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def read() -> None:
        with app.app_context():
            try:
                for page in pages:
                    while not stop.is_set():
                        try:
                            buffer.put(page, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                buffer.put(done)
            except BaseException as exc:  # handed to the writer, which raises it
                buffer.put(exc)

    reader = threading.Thread(target=read, name="raccord-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


@dataclass
class MergeCounts:
    added: int
    updated: int
    deactivated: int
    received: int

    def summary(self) -> str:
        """'47 ajoutés, 1 modifié, aucun rendu inactif': what the merge changed, in words."""
        return ", ".join(
            (
                _("aucun ajouté")
                if self.added == 0
                else ngettext("%(num)d ajouté", "%(num)d ajoutés", self.added),
                _("aucun modifié")
                if self.updated == 0
                else ngettext("%(num)d modifié", "%(num)d modifiés", self.updated),
                _("aucun rendu inactif")
                if self.deactivated == 0
                else ngettext("%(num)d rendu inactif", "%(num)d rendus inactifs", self.deactivated),
            )
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "deactivated": self.deactivated,
            "received": self.received,
        }


# Read again from a little before the last load: a change made while that load was running is not
# missed, and reading it twice changes nothing.
INCREMENTAL_OVERLAP = timedelta(hours=1)


def run_refresh(
    integration_id: int,
    kind: ListKind,
    run_key: str,
    job_run_id: int | None = None,
    *,
    changes_only: bool = False,
    background: bool = False,
) -> MergeCounts:
    """Read the list from the software, page by page, then merge it in one transaction.

    A full read also marks the items the software no longer has inactive. With `changes_only`, and
    a successful load before, only what changed since is asked for (each connector uses its
    software's way: If-Modified-Since, a changelog, an updated-since filter…) and nothing is made
    inactive for being absent.

    `background` is the night's or the hour's look at a list nobody claimed (check_changes): when
    it finds no change in a list loaded successfully, it writes nothing at all (no event that would
    wake the dossier's pages, no list state, no 'Mes dossiers' line); only the moment it asked is
    kept, in Redis, for the next look to ask from there. A change is merged and told as any other."""
    started = time.monotonic()
    integration = db.session.get(Integration, integration_id)
    if integration is None:
        raise UserFacingJobError(_("Cette intégration n'existe plus."))
    sync = sync_for(integration, kind)
    asked_at = utcnow()
    since = None
    if changes_only and sync.last_loaded_at is not None:
        # From the last look that found nothing new since that load, if one did (check_changes).
        asked = _last_check(integration_id, kind, sync.last_loaded_at) or sync.last_loaded_at
        since = asked - INCREMENTAL_OVERLAP
    mode = "full" if since is None else "changes"
    if sync.status is SyncStatus.DEFERRED:  # the next day has come: the refresh put off runs now
        db.session.execute(
            update(ListSync)
            .where(ListSync.id == sync.id, ListSync.status == SyncStatus.DEFERRED)
            .values(status=SyncStatus.RUNNING, last_attempt_at=utcnow(), last_error="")
        )
        db.session.commit()
    lock = _list_lock(integration_id, kind, run_key)
    connector = None
    try:
        # What a run that died left is cleared first; by a look for changes only once it has
        # something to stage (most find nothing, and then write nothing).
        clear_when_staging = since is not None
        if since is None:
            _clear_staging(integration_id, kind)
        received = 0
        try:
            if integration.status is not IntegrationStatus.CONNECTED:
                raise IntegrationExpired()
            connector = get_connector(integration.software, company_id=integration.company_id)
            _check_daily_budget(connector, sync, mode)
            tokens = LiveTokens(integration_id)
            pages = connector.iter_pages(tokens, kind, since=since)  # type: ignore[arg-type]
            # A full load on PostgreSQL adds its new items while the later pages are still read
            # (EarlyInserts); a look for changes brings a few items, merged at the end.
            early = EarlyInserts.start(integration_id, kind, run_key) if since is None else None
            try:
                for page in prefetched(pages, current_app._get_current_object()):  # type: ignore[attr-defined]
                    if page:
                        if clear_when_staging:
                            _clear_staging(integration_id, kind)
                            clear_when_staging = False
                        last_id = stage_page(
                            db.session,
                            [
                                {
                                    "run_key": run_key,
                                    "integration_id": integration_id,
                                    "kind": kind,
                                    # What the lists cannot hold is the software's error, in its name,
                                    # never the database's (whatever connector read it).
                                    **checked_item(i, connector.name).row(),
                                }
                                for i in page
                            ],
                        )
                        db.session.commit()
                        if early is not None and last_id is not None:
                            early.staged(last_id)
                    received += len(page)
                    lock.extend(120, replace_ttl=True)
                    report_progress(0, ngettext("%(num)d élément reçu", "%(num)d éléments reçus", received))
                fetched_at = time.monotonic()
                if since is not None and received == 0:
                    counts = MergeCounts(added=0, updated=0, deactivated=0, received=0)  # nothing to merge
                else:
                    counts = merge_staging(
                        db.session, integration_id, kind, run_key, full=since is None, early=early
                    )
            finally:
                if early is not None:
                    early.close()  # what was not merged is rolled back, never half-written
            counts.received = received
            timings = {
                "fetch_s": round(fetched_at - started, 2),
                "merge_s": round(time.monotonic() - fetched_at, 2),
            }
        except DailyBudgetSpent as exc:
            # Before reading, or half-way: nothing merged, the list stays as it was, and the same
            # refresh waits for the day's budget to come back.
            db.session.rollback()
            _clear_staging(integration_id, kind)
            message = _defer(integration, sync.id, kind, exc, job_run_id, received)
            raise JobDeferred(exc.resume_at, message) from None
        except ConnectorError as exc:
            db.session.rollback()
            _clear_staging(integration_id, kind)
            reason = _french_reason(exc, integration)
            if isinstance(exc, IntegrationExpired):
                mark_expired(integration_id, exc.detail)
            # The event and the list's end in one commit: a page told the load ended shows its event.
            record_event(
                dossier_id=integration.dossier_id,
                integration_id=integration_id,
                job_run_id=job_run_id,
                kind="lists.refresh_failed",
                outcome="failed",
                message=_(
                    "Échec du chargement de la liste « %(list)s » : %(reason)s",
                    list=kind.label,
                    reason=reason,
                ),
                details={"list": kind.value, "answer": exc.detail, "received": received},
            )
            _finish(sync.id, SyncStatus.FAILED, error=reason)
            raise UserFacingJobError(reason) from None
        except BaseException:
            db.session.rollback()
            _clear_staging(integration_id, kind)
            _finish(sync.id, SyncStatus.FAILED, error=_("Erreur inattendue pendant le chargement."))
            raise
    finally:
        try:
            lock.release()
        except Exception:  # the lock may have expired; nothing to undo
            log.warning("List refresh lock was already gone for %s/%s", integration_id, kind.value)

    duration = round(time.monotonic() - started, 2)
    metrics.observe(
        "raccord_list_refresh_seconds",
        duration,
        vendor=integration.software,
        list=kind.value,
        mode=mode,
    )
    unchanged = since is not None and not (counts.added or counts.updated or counts.deactivated)
    if background and unchanged and sync.status is SyncStatus.SUCCEEDED:
        _remember_check(integration_id, kind, sync.last_loaded_at, asked_at)
        return counts
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration_id,
        job_run_id=job_run_id,
        kind="lists.refreshed",
        message=(
            _(
                "Liste « %(list)s » mise à jour (changements seulement) : %(summary)s.",
                list=kind.label,
                summary=counts.summary(),
            )
            if since
            else _("Liste « %(list)s » chargée : %(summary)s.", list=kind.label, summary=counts.summary())
        ),
        details={
            "list": kind.value,
            **counts.as_dict(),
            "duration_s": duration,
            **timings,
            "changes_since": since.isoformat() if since else None,
        },
    )
    calls = _calls_made(connector)
    _finish(
        sync.id,
        SyncStatus.SUCCEEDED,
        counts=counts,
        integration_id=integration_id,
        kind=kind,
        # A look nobody claimed leaves a list another load has claimed since to that load.
        unless_claimed_by_another=(job_run_id or -1) if background else None,
        calls=None
        if calls is None
        else {
            **{k: v for k, v in (sync.last_counts or {}).items() if k.startswith("calls_")},
            f"calls_{mode}": calls,
        },
    )
    return counts


def _check_key(integration_id: int, kind: ListKind) -> str:
    return f"raccord:list-checked:{integration_id}:{kind.value}"


#: How long a check that found nothing is remembered; past it the next one asks from the last load.
CHECK_MEMORY = timedelta(days=40)


def _last_check(integration_id: int, kind: ListKind, loaded_at):
    """When a look at this list last asked the software and found nothing new since the load of
    `loaded_at` (None: not known, or made after another load, or before a database restored)."""
    from datetime import datetime

    try:
        value = get_redis().get(_check_key(integration_id, kind))
    except Exception:  # Redis lost: ask from the last load, which is only a longer read
        return None
    if not value:
        return None
    based_on, _sep, asked_at = value.decode().partition("|")
    if based_on != loaded_at.isoformat():
        return None
    return max(loaded_at, datetime.fromisoformat(asked_at))


def _remember_check(integration_id: int, kind: ListKind, loaded_at, asked_at) -> None:
    try:
        get_redis().set(
            _check_key(integration_id, kind),
            f"{loaded_at.isoformat()}|{asked_at.isoformat()}",
            ex=int(CHECK_MEMORY.total_seconds()),
        )
    except Exception:
        log.warning("Could not remember the check of %s/%s", integration_id, kind.value)


def check_changes(integration_id: int, run_key: str, job_run_id: int | None = None) -> CheckReport:
    """The night's (or the hour's) look at every list of one integration, changes only, in one job.

    A list being loaded already is left to that load. A list with no change costs the calls that
    ask and writes nothing (run_refresh's `background`); a failure is told in the list and its
    dossier as a user's refresh's would be, and the other lists are still looked at (but for an
    access that ended: the lists after it are not asked)."""
    from webapp.services.webhooks import after_refresh

    report = CheckReport()
    integration = db.session.get(Integration, integration_id)
    if integration is None or integration.status is not IntegrationStatus.CONNECTED:
        return report
    syncs = syncs_by_kind(integration)
    for kind in ALL_KINDS:
        sync = syncs[kind]
        if sync.status is SyncStatus.RUNNING or (
            sync.status is SyncStatus.DEFERRED and (job_run_id is None or sync.job_run_id != job_run_id)
        ):
            report.busy.append(kind)  # that load is as fresh
            continue
        try:
            counts = run_refresh(
                integration_id,
                kind,
                f"{run_key}:{kind.value}",
                job_run_id,
                changes_only=True,
                background=True,
            )
        except UserFacingJobError as exc:
            after_refresh(integration_id, kind, succeeded=False)
            report.failed.append((kind, str(exc)))
            db.session.expire_all()
            if db.session.get(Integration, integration_id).status is not IntegrationStatus.CONNECTED:
                break
            continue
        except BaseException:
            after_refresh(integration_id, kind, succeeded=False)
            raise
        after_refresh(integration_id, kind, succeeded=True)
        report.counts[kind] = counts
    return report


@dataclass
class CheckReport:
    """What check_changes found, list by list."""

    counts: dict[ListKind, MergeCounts] = field(default_factory=dict)
    busy: list[ListKind] = field(default_factory=list)
    failed: list[tuple[ListKind, str]] = field(default_factory=list)

    def changed(self) -> dict[ListKind, MergeCounts]:
        return {
            kind: counts
            for kind, counts in self.counts.items()
            if counts.added or counts.updated or counts.deactivated  # an item read again as it was is none
        }


def _calls_made(connector) -> int | None:
    """The calls the load made to the software (each attempt), where its connector counts them."""
    http = getattr(connector, "http", None)
    return None if http is None else int(http.calls)


def _check_daily_budget(connector, sync: ListSync, mode: str) -> None:
    """A refresh that would run out of the day's calls half-way waits for the next day instead.

    The calls it needs are guessed from its previous load in the same mode (recorded in the list's
    last_counts as calls_full / calls_changes), or 1 when it never ran."""
    budget = getattr(getattr(connector, "http", None), "budget", None)
    if budget is None:
        return
    remaining = budget.remaining_today()
    if remaining is None:
        return
    needed = max(1, int((sync.last_counts or {}).get(f"calls_{mode}") or 1))
    if needed > remaining:
        raise budget.daily_spent(budget.resets_at(needed))


def deferred_message(integration: Integration, exc: DailyBudgetSpent) -> str:
    return _(
        "La limite quotidienne de demandes de %(software)s pour cette société est atteinte : "
        "l'actualisation reprendra %(when)s.",
        software=software_name(integration.software),
        when=when_words(exc.resume_at),
    )


def _defer(
    integration: Integration, sync_id: int, kind: ListKind, exc: DailyBudgetSpent, job_run_id, received: int
) -> str:
    """The list put off to the day's reset, said in its events and its state; the message said."""
    message = deferred_message(integration, exc)
    record_event(
        dossier_id=integration.dossier_id,
        integration_id=integration.id,
        job_run_id=job_run_id,
        kind="lists.refresh_deferred",
        message=_(
            "Chargement de la liste « %(list)s » reporté : %(reason)s", list=kind.label, reason=message
        ),
        details={"list": kind.value, "resume_at": exc.resume_at.isoformat(), "received": received},
    )
    # The list keeps its job (scheduled again under the same run, services.jobs.tracked_job).
    db.session.execute(
        update(ListSync)
        .where(ListSync.id == sync_id)
        .values(
            status=SyncStatus.DEFERRED,
            last_error=message,
            **({"job_run_id": job_run_id} if job_run_id is not None else {}),
        )
    )
    db.session.commit()
    metrics.inc("raccord_budget_deferred", vendor=integration.software)
    return message


def _list_lock(integration_id: int, kind: ListKind, run_key: str):
    """The lock that keeps two runs of one list apart, held under the run's RQ job id.

    A run killed mid-way (its work horse gone) leaves the lock behind until it times out; the
    next run looks whether the holder's job is still alive, and takes the lock over if not.
    """
    connection = get_redis()
    name = f"raccord:list-refresh:{integration_id}:{kind.value}"
    lock = connection.lock(name, timeout=120)
    deadline = time.monotonic() + 30
    while not lock.acquire(blocking=False, token=run_key):
        holder = connection.get(name)
        if holder is not None and not _job_alive(holder.decode()):
            connection.delete(name)
            continue
        if time.monotonic() > deadline:
            raise UserFacingJobError(_("Un chargement de cette liste est déjà en cours."))
        time.sleep(0.5)
    return lock


def _job_alive(job_id: str) -> bool:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        status = Job.fetch(job_id, connection=get_redis()).get_status()
    except NoSuchJobError:
        return False
    return status in (JobStatus.STARTED, JobStatus.QUEUED)


def _french_reason(exc: ConnectorError, integration: Integration) -> str:
    if integration.status is IntegrationStatus.DISCONNECTED:
        return disconnected_message(integration)
    if isinstance(exc, IntegrationExpired):
        return expired_message(integration)
    if isinstance(exc, RateLimited):
        minutes = max(1, round(exc.retry_after / 60))
        return ngettext(
            "Le logiciel comptable limite le nombre de demandes. Réessayez dans %(num)d minute.",
            "Le logiciel comptable limite le nombre de demandes. Réessayez dans %(num)d minutes.",
            minutes,
        )
    return exc.message


def _clear_staging(integration_id: int, kind: ListKind) -> None:
    db.session.execute(
        delete(ListItemStaging).where(
            ListItemStaging.integration_id == integration_id, ListItemStaging.kind == kind
        )
    )
    db.session.commit()


def _finish(
    sync_id: int,
    status: SyncStatus,
    *,
    error: str = "",
    counts: MergeCounts | None = None,
    integration_id: int | None = None,
    kind: ListKind | None = None,
    calls: dict[str, int] | None = None,
    unless_claimed_by_another: int | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "last_error": error}
    if counts is not None and integration_id is not None and kind is not None:
        total, active = db.session.execute(
            select(func.count(), func.count().filter(ListItem.active.is_(True))).where(
                ListItem.integration_id == integration_id, ListItem.kind == kind
            )
        ).one()
        values.update(
            item_count=total,
            active_count=active,
            last_loaded_at=utcnow(),
            last_counts={**counts.as_dict(), **(calls or {})},
        )
    statement = update(ListSync).where(ListSync.id == sync_id)
    if unless_claimed_by_another is not None:
        statement = statement.where(
            or_(ListSync.status.not_in(BUSY), ListSync.job_run_id == unless_claimed_by_another)
        )
    db.session.execute(statement.values(**values))
    db.session.commit()


_STAGED_COLUMNS = ("run_key", "integration_id", "kind", *_ITEM_COLUMNS)


def stage_page(session: Session, rows: list[dict[str, Any]]) -> int | None:
    """Write one page of a refresh to the staging area, in the session's transaction.

    PostgreSQL takes the page through COPY (psycopg's `cursor.copy`), the search copies computed here
    as the column defaults compute them elsewhere, and the page's last id is returned; other databases
    through one Core executemany (no ORM object per row)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(ListItemStaging.__table__.insert(), rows)
        return None
    driver = connection.connection.driver_connection
    columns = ", ".join(_STAGED_COLUMNS)
    statement = f"COPY {ListItemStaging.__tablename__} ({columns}) FROM STDIN"
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    (
                        row["run_key"],
                        row["integration_id"],
                        ListKind(row["kind"]).value,
                        row["external_id"],
                        row["code"],
                        row["name"],
                        row["vat_number"],
                        row["siren"],
                        row["rate"],
                        bool(row["active"]),
                        json.dumps(row["extras"] if row["extras"] is not None else {}),
                        item_search_text(row.get),
                        item_sort_name(row.get),
                    )
                )
        # The ids this session just took: the page's rows are the run's rows up to this one.
        cursor.execute("SELECT currval(pg_get_serial_sequence(%s, 'id'))", (ListItemStaging.__tablename__,))
        return int(cursor.fetchone()[0])  # type: ignore[index]


def merge_staging(
    session: Session,
    integration_id: int,
    kind: ListKind,
    run_key: str,
    *,
    full: bool,
    early: EarlyInserts | None = None,
) -> MergeCounts:
    """Apply a staged list to list_item in one transaction: add new items, update changed ones, and
    (for a full read) mark items no longer in the software inactive. Nothing is ever deleted.

    With `early` (PostgreSQL), the new items of the pages staged so far are already written in that
    transaction, still open: the merge ends there."""
    if session.get_bind().dialect.name == "postgresql":
        return _merge_staging_postgresql(session, integration_id, kind, run_key, full=full, early=early)
    staging = ListItemStaging.__table__
    items = ListItem.__table__
    now = utcnow()
    mine = (items.c.integration_id == integration_id) & (items.c.kind == kind.value)
    this_run = staging.c.run_key == run_key

    # A software that returns an item twice (a page boundary moving under a cursor) keeps the last copy.
    newest = select(func.max(staging.c.id)).where(this_run).group_by(staging.c.external_id)
    session.execute(delete(staging).where(this_run, staging.c.id.not_in(newest)))

    same_item = items.c.external_id == staging.c.external_id
    changed = or_(
        items.c.name != staging.c.name,
        items.c.code.is_distinct_from(staging.c.code),
        items.c.vat_number.is_distinct_from(staging.c.vat_number),
        items.c.siren.is_distinct_from(staging.c.siren),
        items.c.rate.is_distinct_from(staging.c.rate),
        items.c.active != staging.c.active,
    )
    # An item the software archived is said 'rendu inactif', not 'modifié' (counted before the update).
    archived = (
        session.scalar(
            select(func.count())
            .select_from(items.join(staging, same_item))
            .where(mine, this_run, items.c.active.is_(True), staging.c.active.is_(False))
        )
        or 0
    )
    updated = session.execute(
        update(items)
        .where(mine, this_run, same_item, changed)
        .values(
            name=staging.c.name,
            code=staging.c.code,
            vat_number=staging.c.vat_number,
            siren=staging.c.siren,
            rate=staging.c.rate,
            active=staging.c.active,
            extras=staging.c.extras,
            search_text=staging.c.search_text,
            sort_name=staging.c.sort_name,
            updated_at=literal(now, UTCDateTime()),
        )
    ).rowcount

    known = select(items.c.id).where(mine, same_item).exists()
    # Counted first: INSERT … SELECT reports no row count on every driver.
    added = session.scalar(select(func.count()).select_from(staging).where(this_run, ~known)) or 0
    session.execute(
        insert(items).from_select(
            ["integration_id", "kind", *_ITEM_COLUMNS, "visible", "created_at", "updated_at"],
            select(
                literal(integration_id),
                literal(kind.value),
                *(staging.c[c] for c in _ITEM_COLUMNS),
                literal(True),
                literal(now, UTCDateTime()),
                literal(now, UTCDateTime()),
            ).where(this_run, ~known),
        )
    )

    updated = (updated or 0) - archived
    deactivated = archived
    if full:
        still_there = (
            select(staging.c.id).where(this_run, staging.c.external_id == items.c.external_id).exists()
        )
        deactivated += (
            session.execute(
                update(items)
                .where(mine, items.c.active.is_(True), ~still_there)
                .values(active=False, updated_at=literal(now, UTCDateTime()))
            ).rowcount
            or 0
        )

    session.execute(delete(staging).where(this_run))
    if added or updated or deactivated:
        summaries.touch(session, integrations=[integration_id])  # the list's pages change with its items
    session.commit()
    return MergeCounts(added=added or 0, updated=updated or 0, deactivated=deactivated or 0, received=0)


_CHANGED_COLUMNS = ("name", "code", "vat_number", "siren", "rate", "active")


def _merge_staging_postgresql(
    session: Session,
    integration_id: int,
    kind: ListKind,
    run_key: str,
    *,
    full: bool,
    early: EarlyInserts | None = None,
) -> MergeCounts:
    """merge_staging on PostgreSQL: one set-based statement per kind of change (UPDATE … FROM, then
    INSERT … SELECT of the items not there, counted by what it returns), the same counts and the same
    updated_at as the generic path."""
    # The staging rows just written are unknown to the planner: without their statistics it joins a
    # second full load of a large list to its items row by row (minutes, not a second). In its own
    # short transaction: its lock is not held through the merge, which other lists' merges would wait on.
    session.execute(text(f"ANALYZE {ListItemStaging.__tablename__}"))
    session.commit()
    if early is not None:
        counts = early.finish(full=full)
        if counts is not None:
            if counts.added or counts.updated or counts.deactivated:
                # Committed on the load's own connection: the list's pages change with its items.
                summaries.touch(session, integrations=[integration_id])
                session.commit()
            return counts
    params = {"run_key": run_key, "integration_id": integration_id, "kind": kind.value}
    counts = _merge_statements(session, params, utcnow(), full=full)
    if counts.added or counts.updated or counts.deactivated:
        summaries.touch(session, integrations=[integration_id])  # the list's pages change with its items
    session.commit()
    return counts


def _merge_statements(
    executor,
    params: dict[str, Any],
    now_value,
    *,
    full: bool,
    early: bool = False,
    early_added: int = 0,
    before: bool = True,
) -> MergeCounts | None:
    """The PostgreSQL merge's statements, in the caller's transaction (a Session or a Connection).

    `early`: every staged row was already offered to the list in this transaction, page by page,
    `early_added` of them added (stamped `now_value`). None when an item was sent twice by the software
    and some were added: the counts would be wrong, and the caller merges from scratch. `before`: the
    list had items before this load (if not, nothing can be modified or made inactive, and the
    statements that look for them are skipped)."""
    staging = ListItemStaging.__tablename__
    items = ListItem.__tablename__
    now = bindparam("now", now_value, type_=UTCDateTime())
    # A software that returns an item twice (a page boundary moving under a cursor) keeps the last copy.
    doubles = executor.execute(
        text(
            f"DELETE FROM {staging} s WHERE s.run_key = :run_key AND EXISTS ("  # noqa: S608 - table names, values bound
            f"SELECT 1 FROM {staging} t WHERE t.run_key = :run_key"
            " AND t.external_id = s.external_id AND t.id > s.id)"
        ),
        params,
    ).rowcount
    if doubles and early_added:
        return None
    mine = "i.integration_id = :integration_id AND i.kind = :kind"
    archived = updated = 0
    if before:
        # An item the software archived is said 'rendu inactif', not 'modifié' (counted before the update).
        archived = (
            executor.scalar(
                text(
                    f"SELECT count(*) FROM {items} i JOIN {staging} s ON s.external_id = i.external_id"  # noqa: S608 - table names, values bound
                    f" WHERE {mine} AND s.run_key = :run_key AND i.active AND NOT s.active"
                ),
                params,
            )
            or 0
        )
        changed = " OR ".join(f"i.{c} IS DISTINCT FROM s.{c}" for c in _CHANGED_COLUMNS)
        copied = ", ".join(f"{c} = s.{c}" for c in _ITEM_COLUMNS[1:])
        updated = (
            executor.execute(
                text(
                    f"UPDATE {items} i SET {copied}, updated_at = :now FROM {staging} s"  # noqa: S608 - table names, values bound
                    f" WHERE {mine} AND s.run_key = :run_key AND s.external_id = i.external_id"
                    f" AND ({changed})"
                ).bindparams(now),
                params,
            ).rowcount
            or 0
        )
    # Early, every staged item was offered to the list already (those there or sent twice skipped).
    added = early_added if early else executor.scalar(text(_insert_staged()).bindparams(now), params) or 0
    deactivated = archived
    if full and before:
        deactivated += (
            executor.execute(
                text(
                    f"UPDATE {items} i SET active = false, updated_at = :now WHERE {mine} AND i.active"  # noqa: S608 - table names, values bound
                    f" AND NOT EXISTS (SELECT 1 FROM {staging} s WHERE s.run_key = :run_key"
                    " AND s.external_id = i.external_id)"
                ).bindparams(now),
                params,
            ).rowcount
            or 0
        )
    executor.execute(text(f"DELETE FROM {staging} WHERE run_key = :run_key"), params)  # noqa: S608 - table names, values bound
    return MergeCounts(added=added, updated=updated - archived, deactivated=deactivated, received=0)


# While the load is read: the rows staged since the last batch, by their ids (the run's own rows picked
# among them, its name kept out of the index choice so that the rows are found by id, whatever the
# planner knows of the staging area), each item offered to the list through its unique index (never a
# scan of the list): one already there, or sent twice, is left to the merge.
_EARLY_INSERT = (
    f"WITH added AS (INSERT INTO list_item (integration_id, kind, {', '.join(_ITEM_COLUMNS)}, visible,"  # noqa: S608 - names, values bound
    f" created_at, updated_at) SELECT s.integration_id, s.kind, {', '.join(f's.{c}' for c in _ITEM_COLUMNS)},"
    " true, :now, :now FROM list_item_staging s WHERE s.id > :after AND s.id <= :upto"
    " AND s.run_key || '' = :run_key ORDER BY s.sort_name"
    " ON CONFLICT (integration_id, kind, external_id) DO NOTHING RETURNING 1) SELECT count(*) FROM added"
)


def _insert_staged() -> str:
    """The staged items not in the list yet, added in their list's order (the search index, sort_name
    first, is filled in order), counted by what the insert returns."""
    columns = ", ".join(_ITEM_COLUMNS)
    selected = ", ".join(f"s.{c}" for c in _ITEM_COLUMNS)
    return (
        f"WITH added AS (INSERT INTO list_item (integration_id, kind, {columns}, visible, created_at,"  # noqa: S608 - names, values bound
        f" updated_at) SELECT s.integration_id, s.kind, {selected}, true, :now, :now FROM list_item_staging s"
        " WHERE s.run_key = :run_key AND NOT EXISTS (SELECT 1 FROM list_item i"
        " WHERE i.integration_id = :integration_id AND i.kind = :kind AND i.external_id = s.external_id)"
        " ORDER BY s.sort_name RETURNING 1) SELECT count(*) FROM added"
    )


class EarlyInserts:
    """PostgreSQL: the new items of a load written while its later pages are still being read.

    Adding a large list's items to list_item (and to its search indexes) is most of a first load's
    merge. A thread of the worker adds the new items of the pages staged so far, on a connection of its
    own, in a transaction that stays open until the merge ends there: nobody sees the list half-loaded,
    a failed or killed load leaves nothing, and the merge after the last page only has the rest to do
    (modified items, items made inactive, the last pages' new items)."""

    def __init__(self, integration_id: int, kind: ListKind, run_key: str) -> None:
        self.params: dict[str, Any] = {
            "run_key": run_key,
            "integration_id": integration_id,
            "kind": kind.value,
        }
        self.now = utcnow()
        self.connection = db.engine.connect()
        self.transaction = self.connection.begin()
        self.before = bool(
            self.connection.scalar(
                select(
                    select(ListItem.id)
                    .where(ListItem.integration_id == integration_id, ListItem.kind == kind)
                    .exists()
                )
            )
        )
        self.after = 0
        self.upto = 0
        self.added = 0
        self.error: BaseException | None = None
        self._wake = threading.Event()
        self._last = threading.Event()
        self._abandoned = False
        self._insert = text(_EARLY_INSERT).bindparams(bindparam("now", self.now, type_=UTCDateTime()))
        self._thread = threading.Thread(target=self._run, name="raccord-early-inserts", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, integration_id: int, kind: ListKind, run_key: str) -> EarlyInserts | None:
        if db.engine.dialect.name != "postgresql":
            return None  # SQLite has one writer at a time: the merge waits for the last page
        return cls(integration_id, kind, run_key)

    def staged(self, last_id: int) -> None:
        """A page was committed to the staging area, up to `last_id`: its new items can be added."""
        if self.error is not None:
            raise self.error
        self.upto = last_id
        self._wake.set()

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._abandoned:
                    return
                last = self._last.is_set()
                self._add_staged()
                if last:
                    return
        except BaseException as exc:  # raised in the worker's thread, by staged() or finish()
            self.error = exc

    def _add_staged(self) -> None:
        upto = self.upto
        if upto <= self.after:
            return
        self.added += (
            self.connection.scalar(self._insert, {**self.params, "after": self.after, "upto": upto}) or 0
        )
        self.after = upto

    def _stop(self) -> None:
        self._last.set()
        self._wake.set()
        self._thread.join()

    def finish(self, *, full: bool) -> MergeCounts | None:
        """The merge, in the transaction that holds the items added so far, then committed. None if it
        must be done again from scratch (an item the software sent twice)."""
        self._stop()
        if self.error is not None:
            raise self.error
        counts = _merge_statements(
            self.connection,
            self.params,
            self.now,
            full=full,
            early=True,
            early_added=self.added,
            before=self.before,
        )
        if counts is None:
            self.transaction.rollback()
            return None
        self.transaction.commit()
        return counts

    def close(self) -> None:
        """Rolls back what was not committed (a failed load) and gives the connection back."""
        if self._thread.is_alive():
            self._abandoned = True
            self._stop()
        try:
            if self.transaction.is_active:
                self.transaction.rollback()
        except Exception:  # a broken connection: its transaction is gone with it, the load's error is said
            log.warning("The early inserts of a list load could not be rolled back", exc_info=True)
        finally:
            self.connection.close()


# --- reading lists ------------------------------------------------------------------------

PAGE_SIZE = 50
# A search counts its matches up to this many: past it the page says "plus de 1 000" and asks for a
# narrower search, instead of reading a 200 000-supplier list to the end to count them all.
COUNT_CAP = 1000


@dataclass
class ItemPage:
    items: list[ListItem]
    total: int
    page: int
    pages: int
    capped: bool = False
    cap: int = COUNT_CAP


def search_items(integration: Integration, kind: ListKind, *, query: str, status: str, page: int) -> ItemPage:
    """A page of a list, searched by every word of `query` (in any order, case and accents ignored,
    in the name, code, VAT number or SIREN), in French order of the names (accounts: by number)."""
    conditions = [ListItem.integration_id == integration.id, ListItem.kind == kind]
    if status == "actifs":
        conditions.append(ListItem.active.is_(True))
    elif status == "inactifs":
        conditions.append(ListItem.active.is_(False))
    words = query_words(query)
    if words:
        conditions.extend(matching_all(ListItem.search_text, words))
        matches = select(ListItem.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
        total = db.session.scalar(select(func.count()).select_from(matches)) or 0
    else:
        total = db.session.scalar(select(func.count()).select_from(ListItem).where(*conditions)) or 0
    capped = total > COUNT_CAP and bool(words)
    if capped:
        total = COUNT_CAP
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    order = list_order(kind)
    shown = ids_in_order(
        conditions, order, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, few=bool(words) and not capped
    )
    items = db.session.scalars(select(ListItem).where(ListItem.id.in_(shown)).order_by(*order)).all()
    return ItemPage(items=list(items), total=total, page=page, pages=pages, capped=capped)


def list_order(kind: ListKind) -> tuple:
    """Accounts by number; the other lists by name in French order (accents and case ignored)."""
    if kind is ListKind.ACCOUNTS:
        return (ListItem.code, ListItem.sort_name, ListItem.id)
    return (ListItem.sort_name, ListItem.id)


def _finds_words_by_index() -> bool:
    """PostgreSQL finds words through its trigram index (migration 0020); SQLite has none, and walking
    the search index in page order is always its quickest way."""
    return db.session.get_bind().dialect.name == "postgresql"


def ids_in_order(conditions: list, order: tuple, *, offset: int, limit: int, few: bool):
    """The ids of one page of the items meeting `conditions`, as a subquery; the rows are read after,
    only those shown.

    In general the search index is walked in page order (every column a search tests is in it,
    migration 0020), stopping at the page: quick when matches are many. When they are known to be
    `few` (counted, at most COUNT_CAP), PostgreSQL finds them all first through its trigram index,
    then sorts them (MATERIALIZED tells it to): else it would walk the whole index in order looking
    for them, matches sitting together far down the order ('garage centre' at the G)."""
    if not (few and _finds_words_by_index()):
        query = select(ListItem.id).where(*conditions).order_by(*order)
        return query.offset(offset).limit(limit).scalar_subquery()
    found = (
        select(ListItem.id, *(c for c in order if c.key != "id"))
        .where(*conditions)
        .cte("found")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    query = select(found.c.id).order_by(*(found.c[c.key] for c in order))
    return query.offset(offset).limit(limit).scalar_subquery()


def first_in_order(conditions: list, order: tuple, limit: int) -> list[int]:
    """The ids of the first `limit` items meeting `conditions`, in `order`. On PostgreSQL the matches
    are counted up to COUNT_CAP with the first ones, in one query, and only past it is the search
    index walked in order (see ids_in_order)."""
    walk = select(ListItem.id).where(*conditions).order_by(*order).limit(limit)
    if not _finds_words_by_index():
        return list(db.session.scalars(walk))
    found = (
        select(ListItem.id, *(c for c in order if c.key != "id"))
        .where(*conditions)
        .limit(COUNT_CAP + 1)
        .cte("found")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    rows = db.session.execute(
        select(found.c.id, func.count().over()).order_by(*(found.c[c.key] for c in order)).limit(limit)
    ).all()
    if not rows or rows[0][1] <= COUNT_CAP:
        return [row[0] for row in rows]
    return list(db.session.scalars(walk))


@dataclass
class SyncView:
    """A list's load state as the screens show it."""

    kind: ListKind
    sync: ListSync
    running: bool
    progress_message: str
    error: str
    waiting: str = ""  # put off to the next day (the company's daily budget): when it resumes


def sync_views(integration: Integration, kinds: list[ListKind] | None = None) -> list[SyncView]:
    views = []
    syncs = {kind: sync_for(integration, kind) for kind in kinds} if kinds else syncs_by_kind(integration)
    for kind in kinds or ALL_KINDS:
        sync = syncs[kind]
        _release_if_stale(sync)
        message = ""
        if sync.status is SyncStatus.RUNNING and sync.job_run_id:
            run = db.session.get(JobRun, sync.job_run_id)
            if run is not None:
                message = job_view(run).message
        views.append(
            SyncView(
                kind=kind,
                sync=sync,
                running=sync.status is SyncStatus.RUNNING,
                progress_message=message,
                error=sync.last_error if sync.status is SyncStatus.FAILED else "",
                waiting=sync.last_error if sync.status is SyncStatus.DEFERRED else "",
            )
        )
    return views


def refresh_outcome_toast(views: list[SyncView]) -> dict[str, str]:
    """The toast shown when the refreshes being watched have all ended."""
    failed = [v for v in views if v.error]
    waiting = [v for v in views if v.waiting]
    if waiting and not failed:
        return {"message": waiting[0].waiting, "level": "info"}
    if not failed:
        if len(views) == 1:
            return {
                "message": _("La liste « %(list)s » est à jour.", list=views[0].kind.label),
                "level": "success",
            }
        return {"message": _("Les listes sont à jour."), "level": "success"}
    names = ", ".join(_("« %(list)s » (%(error)s)", list=v.kind.label, error=v.error) for v in failed)
    return {"message": _("Échec du chargement : %(lists)s", lists=names), "level": "error"}
