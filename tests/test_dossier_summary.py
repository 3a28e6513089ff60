"""'Mes dossiers' reads each dossier's line (models.DossierSummary): after every kind of write the app
does, each line says what the live figures say (services.portfolio.summary_select), in the same
transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, event, insert, select, text, update
from sqlalchemy.orm import Session

from tests.factories import make_dossier, make_integration, make_organisation, make_user
from tests.summary_helpers import assert_summaries_true, live_summaries, stored_summaries
from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Dossier,
    DossierSummary,
    Integration,
    IntegrationStatus,
    ListKind,
    ListSync,
    Role,
)
from webapp.models.lists import SyncStatus
from webapp.services import summaries
from webapp.services.integrations import mark_expired
from webapp.services.portfolio import Filters, portfolio_page
from webapp.services.team import grant


def _document(integration: Integration, status: DocumentStatus, number: str) -> dict:
    return {
        "dossier_id": integration.dossier_id,
        "integration_id": integration.id,
        "direction": Direction.PURCHASE,
        "party_name": "EDF Entreprises",
        "number": number,
        "issue_date": date(2026, 11, 2),
        "amount_ht": Decimal("10.00"),
        "amount_tva": Decimal("2.00"),
        "amount_ttc": Decimal("12.00"),
        "status": status,
    }


def _line(dossier_id: int) -> DossierSummary:
    db.session.expire_all()
    return db.session.get(DossierSummary, dossier_id)


def _committed_and_true() -> None:
    db.session.commit()
    assert_summaries_true()


def test_every_kind_of_write_keeps_the_lines_true(app_ctx):
    cabinet = make_organisation("Cabinet Lefèvre")
    other = make_organisation("Cabinet Durand")
    dossier = make_dossier(cabinet, "Boulangerie Martin")  # dossier created: « Non connecté »
    assert_summaries_true()
    line = _line(dossier.id)
    assert (line.organisation_id, line.integration_id, line.integration_status) == (cabinet.id, None, None)

    first = make_integration(dossier, "xero")  # connected
    assert_summaries_true()
    assert (_line(dossier.id).integration_id, _line(dossier.id).software) == (first.id, "xero")

    # Lists: created, loaded, failed by a statement, loading again as an object.
    loaded = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    accounts = ListSync(integration_id=first.id, kind=ListKind.ACCOUNTS, status=SyncStatus.SUCCEEDED)
    accounts.last_loaded_at = loaded
    suppliers = ListSync(integration_id=first.id, kind=ListKind.SUPPLIERS, status=SyncStatus.SUCCEEDED)
    db.session.add_all([accounts, suppliers])
    _committed_and_true()
    assert _line(dossier.id).last_loaded_at == loaded
    db.session.execute(
        update(ListSync).where(ListSync.id == suppliers.id).values(status=SyncStatus.FAILED, last_error="x")
    )
    _committed_and_true()
    assert _line(dossier.id).lists_failed == 1
    accounts.status = SyncStatus.RUNNING
    _committed_and_true()
    assert _line(dossier.id).lists_running == 1

    # Invoices: created as objects and by a bulk INSERT, edited, published by statements, deleted.
    db.session.add_all(
        [Document(**_document(first, status, f"F-{i}")) for i, status in enumerate(DocumentStatus)]
    )
    _committed_and_true()
    db.session.execute(
        insert(Document), [_document(first, DocumentStatus.FAILED, f"G-{i}") for i in range(3)]
    )
    _committed_and_true()
    assert _line(dossier.id).invoices_failed == 4
    ready = db.session.scalar(select(Document).where(Document.status == DocumentStatus.READY))
    ready.status = DocumentStatus.TO_REVIEW  # edited
    _committed_and_true()
    db.session.execute(
        update(Document)
        .where(Document.dossier_id == dossier.id, Document.status == DocumentStatus.FAILED)
        .values(status=DocumentStatus.IN_PROGRESS)
    )
    _committed_and_true()
    in_progress = db.session.scalars(select(Document.id).where(Document.status == DocumentStatus.IN_PROGRESS))
    db.session.execute(  # by primary key, as a transfer does
        update(Document), [{"id": i, "status": DocumentStatus.FAILED} for i in in_progress]
    )
    _committed_and_true()
    assert _line(dossier.id).invoices_failed == 5
    db.session.delete(db.session.scalar(select(Document).where(Document.status == DocumentStatus.FAILED)))
    _committed_and_true()
    db.session.execute(delete(Document).where(Document.number.like("G-%")))
    _committed_and_true()
    assert _line(dossier.id).invoices_failed == 1

    # The connection: expired, its access end known, reconnected, then another software.
    mark_expired(first.id)
    assert_summaries_true()
    assert _line(dossier.id).integration_status is IntegrationStatus.EXPIRED
    ending = datetime(2027, 1, 3, tzinfo=UTC)
    db.session.execute(
        update(Integration)
        .where(Integration.id == first.id)
        .values(status=IntegrationStatus.CONNECTED, consent_expires_at=ending)
    )
    _committed_and_true()
    assert _line(dossier.id).consent_expires_at == ending
    second = make_integration(dossier, "pennylane")  # changed software: the new one is shown
    assert_summaries_true()
    db.session.execute(
        update(Integration).where(Integration.id == first.id).values(status=IntegrationStatus.DISCONNECTED)
    )
    _committed_and_true()
    line = _line(dossier.id)
    assert (line.integration_id, line.software, line.lists_failed, line.invoices_failed) == (
        second.id,
        "pennylane",
        0,
        0,
    )
    # Documents carried to the new integration (a transfer), then disconnected: shown all the same.
    db.session.execute(
        update(Document).where(Document.dossier_id == dossier.id).values(integration_id=second.id)
    )
    _committed_and_true()
    db.session.get(Integration, second.id).status = IntegrationStatus.DISCONNECTED
    _committed_and_true()
    assert _line(dossier.id).integration_status is IntegrationStatus.DISCONNECTED

    # The dossier renamed (its name order follows), moved to another cabinet, then a dossier deleted.
    db.session.get(Dossier, dossier.id).name = "Zola Boulangerie"
    _committed_and_true()
    assert _line(dossier.id).sort_name.startswith("zola")
    db.session.execute(update(Dossier).where(Dossier.id == dossier.id).values(organisation_id=other.id))
    _committed_and_true()
    assert _line(dossier.id).organisation_id == other.id
    db.session.execute(  # dossiers made in bulk, their ids unknown before
        insert(Dossier),
        [{"organisation_id": cabinet.id, "name": f"Atelier {i}", "siren": None} for i in range(3)],
    )
    _committed_and_true()
    assert len(stored_summaries()) == 4
    gone = make_dossier(cabinet, "Garage Lemoine")
    db.session.delete(gone)
    _committed_and_true()
    assert _line(gone.id) is None


@pytest.mark.parametrize("hook", ["after_flush", "do_orm_execute", "before_commit"])
def test_a_missing_hook_leaves_a_line_wrong_and_is_caught(app_ctx, hook):
    dossier = make_dossier(make_organisation())
    integration = make_integration(dossier)
    listener = {
        "after_flush": summaries._after_flush,
        "do_orm_execute": summaries._do_orm_execute,
        "before_commit": summaries._before_commit,
    }[hook]
    event.remove(Session, hook, listener)
    wrong = []
    try:
        integration.status = IntegrationStatus.EXPIRED  # an object changed
        db.session.commit()
        wrong.append(stored_summaries() != live_summaries())
        db.session.execute(  # a statement
            update(Integration).where(Integration.id == integration.id).values(software="xero")
        )
        db.session.commit()
        wrong.append(stored_summaries() != live_summaries())
    finally:
        event.listen(Session, hook, listener)
    assert (
        wrong
        == {
            "after_flush": [True, False],  # the statement's dossier made the line true again
            "do_orm_execute": [False, True],
            "before_commit": [True, True],
        }[hook]
    )
    if wrong[-1]:  # the helper the flows' tests call says so too
        with pytest.raises(AssertionError, match="out of step"):
            assert_summaries_true()


def test_the_page_shows_what_its_own_session_has_not_committed_yet(app_ctx):
    cabinet = make_organisation()
    user = make_user(cabinet, "claire@lefevre.test", "bon-mot-de-passe")
    dossier = make_dossier(cabinet, "Boulangerie Martin")
    integration = make_integration(dossier)
    integration.status = IntegrationStatus.EXPIRED
    db.session.execute(insert(Document), [_document(integration, DocumentStatus.FAILED, "F-1")])
    page = portfolio_page(user, Filters())
    (row,) = page.rows
    assert (row.integration.status, row.invoices_failed) == (IntegrationStatus.EXPIRED, 1)
    assert (page.counts.to_reconnect, page.counts.invoices_failed) == (1, 1)
    db.session.rollback()  # and nothing of it once rolled back
    assert_summaries_true()
    assert _line(dossier.id).integration_status is IntegrationStatus.CONNECTED


def test_the_migration_makes_the_lines_the_app_makes(app_ctx):
    """0027's statement, then 0032's, run on dossiers in every state, write what summary_select says."""
    cabinet = make_organisation()
    connected = make_integration(make_dossier(cabinet), "xero")
    make_dossier(cabinet)  # never connected
    old = make_integration(dossier := make_dossier(cabinet), "sage", status=IntegrationStatus.DISCONNECTED)
    make_integration(dossier, "pennylane", status=IntegrationStatus.EXPIRED)
    db.session.add(ListSync(integration_id=connected.id, kind=ListKind.ACCOUNTS, status=SyncStatus.FAILED))
    db.session.add(
        ListSync(
            integration_id=old.id,
            kind=ListKind.ACCOUNTS,
            status=SyncStatus.SUCCEEDED,
            last_loaded_at=datetime(2026, 11, 2, tzinfo=UTC) + timedelta(hours=3),
        )
    )
    db.session.add_all(
        [Document(**_document(connected, status, f"F-{i}")) for i, status in enumerate(DocumentStatus)]
    )
    db.session.commit()
    expected = live_summaries()
    backfills = []
    for name in ("0027_dossier_summary", "0032_summary_publications_running"):
        path = Path(__file__).parent.parent / "migrations" / "versions" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        backfills.append(migration._BACKFILL)
    with db.engine.begin() as connection:  # outside the session: no hook writes the lines
        connection.execute(DossierSummary.__table__.delete())
        for backfill in backfills:
            connection.execute(text(backfill))
    assert stored_summaries() == expected


@pytest.mark.parametrize(
    "filters",
    [Filters(), Filters(sort="statut"), Filters(failed_invoices=True), Filters(q="garage", sort="echecs")],
)
def test_a_restricted_member_sees_only_their_dossiers_whatever_the_filters(app_ctx, filters):
    """The lines hold every dossier of the cabinet: the page and its counts still keep to those a
    restricted member was given, and never show another cabinet's."""
    cabinet, other = make_organisation(), make_organisation()
    admin = make_user(cabinet, role=Role.ADMIN)
    member = make_user(cabinet)
    given = make_dossier(cabinet, "Garage Lemoine")
    kept = make_dossier(cabinet, "Garage Martin")
    stranger = make_dossier(other, "Garage Durand")
    for dossier in (given, kept, stranger):
        integration = make_integration(dossier, status=IntegrationStatus.EXPIRED)
        db.session.execute(insert(Document), [_document(integration, DocumentStatus.FAILED, "F-1")])
    member.dossiers_restricted = True
    grant(member.id, [given.id])
    db.session.commit()

    page = portfolio_page(member, filters)
    assert [row.dossier.id for row in page.rows] == [given.id]
    assert (page.total, page.counts.to_reconnect, page.counts.invoices_failed) == (1, 1, 1)
    page = portfolio_page(admin, filters)
    assert [row.dossier.id for row in page.rows] == [given.id, kept.id]
    assert (page.total, page.counts.to_reconnect, page.counts.invoices_failed) == (2, 2, 2)


def test_two_writers_of_one_dossier_at_once_both_count(app_ctx, database_url):
    """PostgreSQL: a transaction whose line waits for another's writes its figures after the other
    committed, not figures computed without the other's change."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite writes one transaction at a time")
    dossier = make_dossier(make_organisation())
    integration = make_integration(dossier)
    engine = db.engine
    first, second = Session(engine), Session(engine)
    errors: list[BaseException] = []
    second_pid: list[int] = []

    def write_second() -> None:
        try:
            second_pid.append(second.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar())
            second.add(Document(**_document(integration, DocumentStatus.FAILED, "B-1")))
            second.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            second.close()

    thread = threading.Thread(target=write_second, daemon=True)
    try:
        first.add(Document(**_document(integration, DocumentStatus.FAILED, "A-1")))
        summaries.bring_up_to_date(first)  # its line written and locked, not committed
        thread.start()
        deadline = time.monotonic() + 30
        with engine.connect() as watcher:  # the second (its own backend) waits for the first's lock
            while not (
                second_pid
                and watcher.scalar(
                    text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": second_pid[0]},
                )
            ):
                assert time.monotonic() < deadline, "the second writer never waited for the line"
                time.sleep(0.02)
        first.commit()
    finally:
        # Whatever happened, the first gives its locks back: the second, and the suite, never hang.
        first.rollback()
        first.close()
        thread.join(timeout=30)
    assert not thread.is_alive() and not errors
    assert _line(dossier.id).invoices_failed == 2
    assert_summaries_true()
