"""The rules of a list refresh, on SQLite and PostgreSQL, with a scripted software in place of a real one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.conftest import plain_spaces
from tests.factories import make_dossier, make_integration, make_organisation
from webapp.connectors.base import (
    Company,
    Connector,
    IntegrationExpired,
    NormalisedItem,
    ProviderError,
    TokenSet,
)
from webapp.extensions import db
from webapp.models import Event, Integration, IntegrationStatus, ListItem, ListItemStaging, ListKind, ListSync
from webapp.models.lists import SyncStatus
from webapp.services.integrations import fresh_tokens, load_tokens, store_tokens
from webapp.services.jobs import UserFacingJobError
from webapp.services.lists import EarlyInserts, run_refresh, search_items


class ScriptedSoftware(Connector):
    """A software whose answers the test writes: pages of items, then maybe a failure."""

    key = "sandbox"
    name = "Compta Démo"

    def __init__(self):
        self.pages: list[list[NormalisedItem]] = []
        self.fail_after_pages: Exception | None = None
        self.refreshes = 0
        self.refresh_error: Exception | None = None
        self.refresh_delay = 0.0
        self.asked_since = None
        self.asked: list[tuple[ListKind, object]] = []  # each list read: its kind and `since`
        self.failing: dict[ListKind, Exception] = {}  # lists whose read fails

    def authorization_url(self, **_):  # pragma: no cover - not used here
        raise NotImplementedError

    def exchange_code(self, **_):  # pragma: no cover
        raise NotImplementedError

    def company(self, tokens):  # pragma: no cover
        return Company("c", "C")

    def refresh(self, tokens: TokenSet) -> TokenSet:
        time.sleep(self.refresh_delay)
        self.refreshes += 1
        if self.refresh_error:
            raise self.refresh_error
        return TokenSet(f"access-{self.refreshes}", f"refresh-{self.refreshes}", time.time() + 1800)

    def iter_pages(self, tokens, kind, *, since=None) -> Iterator[list[NormalisedItem]]:
        self.asked_since = since
        self.asked.append((kind, since))
        if kind in self.failing:
            raise self.failing[kind]
        yield from self.pages
        if self.fail_after_pages:
            raise self.fail_after_pages

    def publish_invoice(self, tokens, invoice, *, idempotency_key, attachment=None):  # pragma: no cover
        raise NotImplementedError

    def find_parties(self, tokens, kind, *, term):  # pragma: no cover
        raise NotImplementedError

    def create_party(self, tokens, kind, **_):  # pragma: no cover
        raise NotImplementedError

    def revoke(self, tokens):  # pragma: no cover
        pass


def supplier(external_id: str, name: str, active: bool = True, vat: str | None = None) -> NormalisedItem:
    return NormalisedItem(
        external_id=external_id, name=name, code=external_id.upper(), vat_number=vat, active=active
    )


@pytest.fixture
def software(monkeypatch) -> ScriptedSoftware:
    scripted = ScriptedSoftware()
    monkeypatch.setattr("webapp.services.lists.get_connector", lambda key, **_kw: scripted)
    monkeypatch.setattr("webapp.services.integrations.get_connector", lambda key, **_kw: scripted)
    return scripted


@pytest.fixture
def integration_id(app_ctx) -> int:
    dossier = make_dossier(make_organisation())
    integration = make_integration(dossier)
    store_tokens(integration, TokenSet("access-0", "refresh-0", time.time() + 3600))
    db.session.commit()
    return integration.id


def suppliers_in_db(integration_id: int) -> dict[str, tuple[str, bool]]:
    rows = db.session.execute(
        select(ListItem.external_id, ListItem.name, ListItem.active).where(
            ListItem.integration_id == integration_id, ListItem.kind == ListKind.SUPPLIERS
        )
    ).all()
    return {external_id: (name, active) for external_id, name, active in rows}


def test_a_refresh_adds_updates_and_makes_inactive_but_never_deletes(software, integration_id):
    software.pages = [
        [supplier("s1", "EDF Entreprises"), supplier("s2", "Orange Business")],
        [supplier("s3", "Metro")],
    ]
    first = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="run-1")
    assert (first.added, first.updated, first.deactivated, first.received) == (3, 0, 0, 3)

    software.pages = [
        [supplier("s1", "EDF Entreprises"), supplier("s2", "Orange Business SA")],
        [supplier("s4", "Bureau Vallée"), supplier("s5", "Lyreco", active=False)],
    ]
    second = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="run-2")
    assert (second.added, second.updated, second.deactivated) == (2, 1, 1)
    assert suppliers_in_db(integration_id) == {
        "s1": ("EDF Entreprises", True),
        "s2": ("Orange Business SA", True),
        "s3": ("Metro", False),  # gone upstream: kept, inactive
        "s4": ("Bureau Vallée", True),
        "s5": ("Lyreco", False),  # archived upstream
    }
    sync = db.session.scalar(select(ListSync).where(ListSync.integration_id == integration_id))
    assert sync.status is SyncStatus.SUCCEEDED
    assert (sync.item_count, sync.active_count) == (5, 3)
    assert sync.last_counts == {"added": 2, "updated": 1, "deactivated": 1, "received": 4}
    events = db.session.scalars(select(Event).where(Event.kind == "lists.refreshed").order_by(Event.id)).all()
    assert (
        plain_spaces(events[-1].message)
        == "Liste « Fournisseurs » chargée : 2 ajoutés, 1 modifié, 1 rendu inactif."
    )


def test_an_item_back_upstream_becomes_active_again(software, integration_id):
    software.pages = [[supplier("s1", "EDF")]]
    run_refresh(integration_id, ListKind.SUPPLIERS, run_key="a")
    software.pages = [[]]
    run_refresh(integration_id, ListKind.SUPPLIERS, run_key="b")
    assert suppliers_in_db(integration_id) == {"s1": ("EDF", False)}
    software.pages = [[supplier("s1", "EDF")]]
    counts = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="c")
    assert counts.updated == 1 and suppliers_in_db(integration_id) == {"s1": ("EDF", True)}


def test_an_item_sent_twice_is_kept_once_with_its_last_values(software, integration_id):
    software.pages = [
        [supplier("s1", "Ancien nom")],
        [supplier("s1", "Nouveau nom"), supplier("s2", "Autre")],
    ]
    counts = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="dup")
    assert counts.added == 2
    assert suppliers_in_db(integration_id)["s1"] == ("Nouveau nom", True)


def test_a_failure_part_way_leaves_the_previous_list_whole(software, integration_id):
    software.pages = [[supplier("s1", "EDF"), supplier("s2", "Orange")]]
    run_refresh(integration_id, ListKind.SUPPLIERS, run_key="good")
    before = suppliers_in_db(integration_id)

    software.pages = [[supplier("s1", "EDF renommé")], [supplier("s9", "Nouveau")]]
    software.fail_after_pages = ProviderError(
        "Le logiciel comptable est indisponible (erreur 503). Réessayez plus tard."
    )
    with pytest.raises(UserFacingJobError, match="indisponible \\(erreur 503\\)"):
        run_refresh(integration_id, ListKind.SUPPLIERS, run_key="broken")

    assert suppliers_in_db(integration_id) == before
    assert db.session.scalar(select(func.count()).select_from(ListItemStaging)) == 0
    sync = db.session.scalar(select(ListSync).where(ListSync.integration_id == integration_id))
    assert sync.status is SyncStatus.FAILED
    assert sync.last_error == "Le logiciel comptable est indisponible (erreur 503). Réessayez plus tard."
    assert sync.item_count == 2  # the figures of the last good load
    failed = db.session.scalar(select(Event).where(Event.kind == "lists.refresh_failed"))
    assert failed.outcome == "failed" and "Fournisseurs" in failed.message


def test_an_item_the_lists_cannot_hold_is_the_softwares_error_and_changes_nothing(software, integration_id):
    """Whatever connector read it: an id longer than Raccord keeps is said in the software's name,
    not left to the database (PostgreSQL refuses it, SQLite would keep it)."""
    software.pages = [[supplier("s1", "EDF")]]
    run_refresh(integration_id, ListKind.SUPPLIERS, run_key="good")
    before = suppliers_in_db(integration_id)
    software.pages = [[supplier("s2", "Orange"), supplier("x" * 121, "Trop long")]]
    with pytest.raises(UserFacingJobError, match="Compta Démo a renvoyé un élément de liste illisible"):
        run_refresh(integration_id, ListKind.SUPPLIERS, run_key="long")
    assert suppliers_in_db(integration_id) == before
    sync = db.session.scalar(select(ListSync).where(ListSync.integration_id == integration_id))
    assert (
        sync.last_error
        == "Compta Démo a renvoyé un élément de liste illisible (champ external_id trop long)."
    )


def test_leftovers_of_a_killed_refresh_are_cleared_by_the_next(software, integration_id):
    db.session.execute(
        ListItemStaging.__table__.insert(),
        [
            {
                "run_key": "dead",
                "integration_id": integration_id,
                "kind": ListKind.SUPPLIERS.value,
                "external_id": "ghost",
                "name": "Fantôme",
                "active": True,
                "extras": {},
            }
        ],
    )
    db.session.commit()
    software.pages = [[supplier("s1", "EDF")]]
    run_refresh(integration_id, ListKind.SUPPLIERS, run_key="next")
    assert set(suppliers_in_db(integration_id)) == {"s1"}
    assert db.session.scalar(select(func.count()).select_from(ListItemStaging)) == 0


def test_tokens_are_refreshed_ahead_of_expiry_and_stored_encrypted(software, integration_id, app):
    integration = db.session.get(Integration, integration_id)
    store_tokens(
        integration, TokenSet("access-0", "refresh-0", time.time() + 120)
    )  # inside the 5-minute margin
    db.session.commit()
    tokens = fresh_tokens(integration_id)
    assert tokens.access_token == "access-1" and software.refreshes == 1
    db.session.expire_all()
    stored = db.session.get(Integration, integration_id)
    assert "access-1" not in stored.token_ciphertext and "refresh-1" not in stored.token_ciphertext
    assert load_tokens(stored).refresh_token == "refresh-1"
    assert "refresh-1" not in repr(stored) and "refresh-1" not in repr(load_tokens(stored))
    assert fresh_tokens(integration_id).access_token == "access-1" and software.refreshes == 1  # still fresh


def test_two_workers_refreshing_at_once_refresh_only_once(software, integration_id, app):
    integration = db.session.get(Integration, integration_id)
    store_tokens(integration, TokenSet("access-0", "refresh-0", time.time() + 10))
    db.session.commit()
    software.refresh_delay = 0.3
    results: list[str] = []
    errors: list[BaseException] = []

    def worker():
        try:
            with app.app_context():
                results.append(fresh_tokens(integration_id).access_token)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert software.refreshes == 1
    assert results == ["access-1"] * 4


def test_a_refused_refresh_token_marks_the_integration_expired(software, integration_id):
    integration = db.session.get(Integration, integration_id)
    store_tokens(integration, TokenSet("access-0", "refresh-0", time.time() + 10))
    db.session.commit()
    software.refresh_error = IntegrationExpired(detail="invalid_grant: refresh token expired")
    software.pages = [[supplier("s1", "EDF")]]
    with pytest.raises(UserFacingJobError, match="L'intégration avec Compta Démo a expiré"):
        run_refresh(integration_id, ListKind.SUPPLIERS, run_key="x")
    db.session.expire_all()
    integration = db.session.get(Integration, integration_id)
    assert integration.status is IntegrationStatus.EXPIRED
    expired = db.session.scalar(select(Event).where(Event.kind == "integration.expired"))
    assert (
        plain_spaces(expired.message)
        == "L'intégration avec Compta Démo a expiré. Reconnectez-vous pour reprendre."
    )
    assert expired.details == {"answer": "invalid_grant: refresh token expired"}
    assert suppliers_in_db(integration_id) == {}
    # Refreshes stop: the next one fails at once, without calling the software.
    software.refresh_error = None
    with pytest.raises(UserFacingJobError, match="a expiré"):
        run_refresh(integration_id, ListKind.SUPPLIERS, run_key="y")
    assert software.refreshes == 1


def test_a_changes_only_refresh_asks_since_the_last_load_and_makes_nothing_inactive(software, integration_id):
    from webapp.models import ListSync

    software.pages = [
        [supplier("s1", "EDF Entreprises"), supplier("s2", "Orange Business"), supplier("s3", "Metro")]
    ]
    first = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="full", changes_only=True)
    assert software.asked_since is None and first.added == 3  # never loaded: read in full
    loaded_at = db.session.scalar(
        select(ListSync.last_loaded_at).where(ListSync.integration_id == integration_id)
    )

    software.pages = [[supplier("s2", "Orange Business SA")]]  # only what changed since
    counts = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="changes", changes_only=True)
    assert software.asked_since == loaded_at - timedelta(hours=1)  # an hour of overlap: nothing missed
    assert (counts.received, counts.updated, counts.added, counts.deactivated) == (1, 1, 0, 0)
    assert suppliers_in_db(integration_id) == {
        "s1": ("EDF Entreprises", True),
        "s2": ("Orange Business SA", True),
        "s3": ("Metro", True),
    }
    event = db.session.scalar(select(Event).where(Event.kind == "lists.refreshed").order_by(Event.id.desc()))
    assert "mise à jour (changements seulement)" in event.message and event.details["changes_since"]

    # A full read (the user's click) finds what was deleted upstream.
    full = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="again")
    assert software.asked_since is None and full.deactivated == 2


@contextmanager
def _write_statements(engine) -> Iterator[list[str]]:
    """The INSERT, UPDATE, DELETE and COPY statements the engine sends inside the block."""
    from sqlalchemy import event

    sent: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "COPY"):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _list_state(integration_id: int) -> tuple:
    from webapp.live import dossier_version
    from webapp.models import DossierSummary

    integration = db.session.get(Integration, integration_id)
    syncs = db.session.execute(
        select(
            ListSync.kind,
            ListSync.status,
            ListSync.last_loaded_at,
            ListSync.last_counts,
            ListSync.item_count,
            ListSync.job_run_id,
        ).where(ListSync.integration_id == integration_id)
    ).all()
    items = db.session.execute(
        select(ListItem.external_id, ListItem.name, ListItem.updated_at).where(
            ListItem.integration_id == integration_id
        )
    ).all()
    summary = db.session.get(DossierSummary, integration.dossier_id)
    return (
        sorted(syncs),
        sorted(items),
        dossier_version(integration.dossier_id),
        summary.last_loaded_at,
        summary.lists_running,
    )


def test_a_background_look_that_finds_no_change_writes_nothing_and_asks_from_there_next_time(
    software, integration_id
):
    software.pages = [[supplier("s1", "EDF Entreprises"), supplier("s2", "Orange Business")]]
    run_refresh(integration_id, ListKind.SUPPLIERS, run_key="full")
    loaded_at = db.session.scalar(
        select(ListSync.last_loaded_at).where(ListSync.integration_id == integration_id)
    )
    before = _list_state(integration_id)

    # The night's look: the software answers one empty page (nothing changed), or sends again an
    # item of the overlap hour as it is.
    for pages in ([[]], [[supplier("s2", "Orange Business")]]):
        software.pages, software.asked = pages, []
        with _write_statements(db.engine) as writes:
            counts = run_refresh(
                integration_id, ListKind.SUPPLIERS, run_key="night", changes_only=True, background=True
            )
        assert (counts.added, counts.updated, counts.deactivated) == (0, 0, 0)
        assert len(software.asked) == 1  # one read of the list, changes only
        assert _list_state(integration_id) == before  # same list state, rows, version and line
        if pages == [[]]:
            assert writes == []  # not one row written
            first_look = software.asked[0][1]
            assert first_look == loaded_at - timedelta(hours=1)
        else:
            # The next look asks from the previous look, not from the last load: it stays short.
            assert software.asked[0][1] > first_look
            # Only the staging of what came (the merge finds no row to change: the rows above are the same).
            assert not [w for w in writes if "list_sync" in w or "event" in w or "dossier_summary" in w]

    # A change is merged, dated and told like any other.
    software.pages = [[supplier("s2", "Orange Business SA")]]
    counts = run_refresh(
        integration_id, ListKind.SUPPLIERS, run_key="next", changes_only=True, background=True
    )
    assert (counts.received, counts.updated) == (1, 1)
    assert suppliers_in_db(integration_id)["s2"] == ("Orange Business SA", True)
    after = _list_state(integration_id)
    assert after[2] != before[2]  # the dossier's pages wake for it
    event_ = db.session.scalar(select(Event).where(Event.kind == "lists.refreshed").order_by(Event.id.desc()))
    assert "mise à jour (changements seulement)" in event_.message
    assert (
        db.session.scalar(select(ListSync.last_loaded_at).where(ListSync.integration_id == integration_id))
        > loaded_at
    )


def test_the_nightly_look_leaves_a_list_being_loaded_to_its_load_and_goes_on_past_a_failure(
    software, integration_id
):
    from webapp.services.lists import check_changes

    software.pages = [[supplier("s1", "EDF")]]
    first = check_changes(integration_id, run_key="first")  # never loaded: each list read in full
    assert [since for _kind, since in software.asked] == [None] * len(ListKind)
    assert len(first.counts) == len(ListKind) and not first.busy and not first.failed

    # A user's reload of the suppliers is under way; the accounts cannot be read tonight.
    db.session.execute(
        update(ListSync)
        .where(ListSync.integration_id == integration_id, ListSync.kind == ListKind.SUPPLIERS)
        .values(status=SyncStatus.RUNNING)
    )
    db.session.commit()
    software.pages, software.asked = [[]], []
    software.failing = {
        ListKind.ACCOUNTS: ProviderError(
            "Le logiciel comptable est indisponible (erreur 503). Réessayez plus tard."
        )
    }
    report = check_changes(integration_id, run_key="night")

    assert report.busy == [ListKind.SUPPLIERS]
    assert ListKind.SUPPLIERS not in [kind for kind, _since in software.asked]
    assert len(software.asked) == len(ListKind) - 1  # the lists after the failed one are still asked
    assert [kind for kind, _reason in report.failed] == [ListKind.ACCOUNTS]
    assert set(report.counts) == set(ListKind) - {ListKind.SUPPLIERS, ListKind.ACCOUNTS}
    assert report.changed() == {}
    states = dict(
        db.session.execute(
            select(ListSync.kind, ListSync.status).where(ListSync.integration_id == integration_id)
        ).all()
    )
    # The failure is said in its list (and its dossier), the load under way is left as it is.
    assert states[ListKind.ACCOUNTS] is SyncStatus.FAILED
    assert states[ListKind.SUPPLIERS] is SyncStatus.RUNNING
    failed = db.session.scalar(select(Event).where(Event.kind == "lists.refresh_failed"))
    assert "indisponible" in failed.message


# --- PostgreSQL: new items written while the later pages are read ----------------------------


class PacedSoftware(ScriptedSoftware):
    """Gives its next page only once the items of the pages before are written to the list, in the
    load's own transaction (PostgreSQL; on SQLite the merge does it all after the last page)."""

    def __init__(self):
        super().__init__()
        self.early: list[EarlyInserts] = []

    def iter_pages(self, tokens, kind, *, since=None) -> Iterator[list[NormalisedItem]]:
        self.asked_since = since
        given = 0
        for page in self.pages:
            if given and db.engine.dialect.name == "postgresql":
                self._wait_for_early_inserts(given)
            yield page
            given += len(page)
        if self.fail_after_pages:
            if db.engine.dialect.name == "postgresql":
                self._wait_for_early_inserts(given)
            raise self.fail_after_pages

    def _wait_for_early_inserts(self, given: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            early = self.early[-1] if self.early else None
            if early is not None:
                staged = db.session.execute(
                    select(func.count(), func.max(ListItemStaging.id)).where(
                        ListItemStaging.run_key == early.params["run_key"]
                    )
                ).one()
                db.session.rollback()
                if staged[0] == given and early.after == staged[1]:
                    return
            time.sleep(0.01)
        raise AssertionError("the items of the pages read were never written")


@pytest.fixture
def paced(monkeypatch) -> PacedSoftware:
    scripted = PacedSoftware()
    monkeypatch.setattr("webapp.services.lists.get_connector", lambda key, **_kw: scripted)
    monkeypatch.setattr("webapp.services.integrations.get_connector", lambda key, **_kw: scripted)
    start = EarlyInserts.__init__

    def recorded(self, *args, **kwargs):
        start(self, *args, **kwargs)
        scripted.early.append(self)

    monkeypatch.setattr(EarlyInserts, "__init__", recorded)
    return scripted


def found(integration_id: int, query: str) -> list[str]:
    integration = db.session.get(Integration, integration_id)
    page = search_items(integration, ListKind.SUPPLIERS, query=query, status="tous", page=1)
    return [item.external_id for item in page.items]


def test_items_written_while_the_pages_are_read_give_the_same_list_counts_and_searches(paced, integration_id):
    paced.pages = [
        [supplier("s1", "EDF Entreprises", vat="FR40552081317"), supplier("s2", "Orange Business")],
        [supplier("s3", "Metro Cash")],
    ]
    first = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="first")
    assert (first.added, first.updated, first.deactivated, first.received) == (3, 0, 0, 3)
    if db.engine.dialect.name == "postgresql":
        assert paced.early[-1].added == 3  # every item written before the merge
    assert found(integration_id, "orange") == ["s2"]
    assert found(integration_id, "552081317") == ["s1"]

    paced.pages = [
        [supplier("s1", "EDF Entreprises", vat="FR40552081317"), supplier("s2", "Orange Business SA")],
        [supplier("s4", "Bureau Vallée"), supplier("s5", "Lyreco", active=False)],
    ]
    second = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="second")
    assert (second.added, second.updated, second.deactivated) == (2, 1, 1)
    if db.engine.dialect.name == "postgresql":
        assert paced.early[-1].added == 2  # the new ones only; the rest waits for the merge
    assert suppliers_in_db(integration_id) == {
        "s1": ("EDF Entreprises", True),
        "s2": ("Orange Business SA", True),
        "s3": ("Metro Cash", False),
        "s4": ("Bureau Vallée", True),
        "s5": ("Lyreco", False),
    }
    assert found(integration_id, "business sa") == ["s2"]
    assert found(integration_id, "vallee bureau") == ["s4"]
    sync = db.session.scalar(select(ListSync).where(ListSync.integration_id == integration_id))
    assert (sync.item_count, sync.active_count) == (5, 3)
    event = db.session.scalar(select(Event).where(Event.kind == "lists.refreshed").order_by(Event.id.desc()))
    assert (
        plain_spaces(event.message)
        == "Liste « Fournisseurs » chargée : 2 ajoutés, 1 modifié, 1 rendu inactif."
    )


def test_an_item_sent_again_after_it_was_written_keeps_its_last_values_and_is_added_once(
    paced, integration_id
):
    paced.pages = [
        [supplier("s1", "Ancien nom")],
        [supplier("s1", "Nouveau nom", active=False), supplier("s2", "Autre")],
    ]
    counts = run_refresh(integration_id, ListKind.SUPPLIERS, run_key="dup")
    assert (counts.added, counts.updated, counts.deactivated) == (2, 0, 0)
    assert suppliers_in_db(integration_id) == {"s1": ("Nouveau nom", False), "s2": ("Autre", True)}


def test_a_failure_after_items_were_written_leaves_the_previous_list_whole(paced, integration_id):
    paced.pages = [[supplier("s1", "EDF"), supplier("s2", "Orange")]]
    run_refresh(integration_id, ListKind.SUPPLIERS, run_key="good")
    before = suppliers_in_db(integration_id)

    paced.pages = [[supplier("s9", "Nouveau")], [supplier("s1", "EDF renommé"), supplier("s10", "Autre")]]
    paced.fail_after_pages = ProviderError(
        "Le logiciel comptable est indisponible (erreur 503). Réessayez plus tard."
    )
    with pytest.raises(UserFacingJobError, match="indisponible"):
        run_refresh(integration_id, ListKind.SUPPLIERS, run_key="broken")
    if db.engine.dialect.name == "postgresql":
        assert paced.early[-1].added == 2  # s9 and s10 were written, then undone
    assert suppliers_in_db(integration_id) == before
    assert found(integration_id, "nouveau") == []
    assert db.session.scalar(select(func.count()).select_from(ListItemStaging)) == 0
