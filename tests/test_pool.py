"""Connections that rested are checked before use (webapp.pool): one the database dropped meanwhile is
replaced without the user seeing an error; one that has just worked is used without a question."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import login, make_app, text_of
from tests.factories import make_dossier, make_organisation, make_user
from webapp import pool
from webapp.extensions import db


def _backend_pids(app) -> set[int]:
    with app.app_context():
        pids = set()
        for record in list(db.engine.pool._pool.queue):  # the connections resting in the pool
            pids.add(record.dbapi_connection.info.backend_pid)
        return pids


def test_a_connection_the_database_dropped_while_resting_is_replaced_unseen(postgres_schema, monkeypatch):
    app = make_app(postgres_schema)
    dossier_id = _cabinet(app)
    client = app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    assert "Boulangerie Martin" in text_of(client.get(f"/dossiers/{dossier_id}/documents"))
    resting = _backend_pids(app)
    assert resting

    # The database ends them (a restart, a firewall): the next page still works.
    admin = sa.create_engine(postgres_schema)
    with admin.begin() as conn:
        for pid in resting:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    monkeypatch.setattr(pool, "PING_AFTER_IDLE", 0.0)  # they have rested long enough to be asked
    response = client.get(f"/dossiers/{dossier_id}/documents")
    assert response.status_code == 200 and "Boulangerie Martin" in text_of(response)
    # New connections took the place of those the page used (a kept page needs only one: the others
    # rest on, to be asked in their turn).
    assert _backend_pids(app) - resting


def _cabinet(app) -> int:
    with app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        dossier = make_dossier(org, "Boulangerie Martin")
        make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
        return dossier.id


def test_a_connection_that_has_just_worked_is_used_without_a_question(postgres_schema, monkeypatch):
    app = make_app(postgres_schema)
    dossier_id = _cabinet(app)
    client = app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    questions = []

    def ask(dbapi_connection):
        questions.append(dbapi_connection)

    monkeypatch.setattr(pool, "_ask", ask)
    monkeypatch.setattr(pool, "PING_AFTER_IDLE", 3600.0)
    for _ in range(3):
        assert client.get(f"/dossiers/{dossier_id}/documents").status_code == 200
    assert questions == []
    monkeypatch.setattr(pool, "PING_AFTER_IDLE", 0.0)
    assert client.get(f"/dossiers/{dossier_id}/documents").status_code == 200
    assert len(questions) == 1


def test_a_page_served_from_kept_parts_opens_no_transaction(postgres_schema):
    """Its one read (the session with the dossier) runs in autocommit: no BEGIN before it, so no
    ROLLBACK after it when the request ends (psycopg sends neither for a connection left idle)."""
    from psycopg import pq

    app = make_app(postgres_schema)
    dossier_id = _cabinet(app)
    client = app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    url = f"/dossiers/{dossier_id}/documents"
    assert "Boulangerie Martin" in text_of(client.get(url))  # rendered, and kept
    after_each = []

    def read(conn, _cursor, _statement, *_args) -> None:
        after_each.append(conn.connection.dbapi_connection.info.transaction_status)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "after_cursor_execute", read)
    try:
        response = client.get(url)
    finally:
        sa.event.remove(engine, "after_cursor_execute", read)
    assert response.status_code == 200 and "Boulangerie Martin" in text_of(response)
    assert after_each == [pq.TransactionStatus.IDLE]  # INTRANS had a BEGIN gone before it


def test_a_page_that_writes_after_its_read_still_writes_in_a_transaction(postgres_schema):
    """The session's read is outside a transaction; what the request writes next is not: a session
    touched after its rest is stored."""
    from datetime import timedelta

    from webapp.models import UserSession

    app = make_app(postgres_schema)
    dossier_id = _cabinet(app)
    client = app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    with app.app_context():
        long_ago = db.session.scalar(sa.select(UserSession.last_seen_at)) - timedelta(minutes=5)
        db.session.execute(sa.update(UserSession).values(last_seen_at=long_ago))
        db.session.commit()
    assert client.get(f"/dossiers/{dossier_id}/documents").status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(UserSession.last_seen_at)) > long_ago


def test_a_request_holds_one_connection_at_a_time(postgres_schema):
    """The session's read gives its connection back before the page goes on: with a pool of one
    connection, a page that reads much more still works (holding both, it would wait for itself, and
    a burst of requests on a threaded server for each other, until the pool's timeout)."""
    app = make_app(
        postgres_schema, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 2}
    )
    dossier_id = _cabinet(app)
    client = app.test_client()
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    for url in (f"/dossiers/{dossier_id}/documents", f"/dossiers/{dossier_id}", "/dossiers", "/profil"):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "Boulangerie Martin" in text_of(client.get(f"/dossiers/{dossier_id}/documents"))
