"""Connections to the database checked before use when they may have gone stale.

SQLAlchemy's `pool_pre_ping` asks the database on every checkout, a round trip on every request of
every page. A connection given back less than PING_AFTER_IDLE seconds ago has just worked: it is
used as is; one idle for longer (a database restarted meanwhile, a connection cut by a firewall)
is asked first and, if dead, replaced before anyone uses it. A database lost while connections are
in use fails the requests under way either way; SQLAlchemy then recognises the disconnection and
replaces the whole pool.
"""

from __future__ import annotations

import time

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import Pool

#: Seconds a connection may rest and still be used without being asked first.
PING_AFTER_IDLE = 1.0
_RETURNED = "raccord_returned_at"
_installed = False
_READING = "raccord_read_outside_transaction"


def _connected(_dbapi_connection, record) -> None:
    record.info[_RETURNED] = time.monotonic()


def _checked_in(_dbapi_connection, record) -> None:
    if record is not None:
        record.info[_RETURNED] = time.monotonic()


def _ask(dbapi_connection) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    finally:
        cursor.close()
    dbapi_connection.rollback()  # no transaction left open by the question


def _checked_out(dbapi_connection, record, _proxy) -> None:
    returned = record.info.get(_RETURNED)
    if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE:
        return
    try:
        _ask(dbapi_connection)
    except Exception as error:  # noqa: BLE001 - whatever the driver raises, the connection is not usable
        # The pool discards this connection and hands out another (SQLAlchemy's own retry).
        raise DisconnectionError("connection found dead before use") from error


def install() -> None:
    """For every pool of the process (the app's and the sandbox's), once."""
    global _installed
    if _installed:
        return
    event.listen(Pool, "connect", _connected)
    event.listen(Pool, "checkin", _checked_in)
    event.listen(Pool, "checkout", _checked_out)
    _installed = True


def read_alone(statement, params: dict):
    """The first row of an ORM `statement` that needs no transaction around it, read by the request's
    session (`db.session`) as any other.

    Every page starts by reading its session (and its dossier) in one statement. In a transaction,
    psycopg sends BEGIN before it and the request's end a ROLLBACK: two round trips more than the
    read itself, and on a page served from kept parts the only other work. On PostgreSQL the read
    runs instead on a connection in autocommit, and the session's transaction, which holds nothing
    else, ends at once: the connection goes back to the pool before the page goes on (held to the
    end of the request, each request would hold two connections at once, and a burst of requests on
    a threaded server would wait for each other's second one until they failed). The objects read
    stay loaded; what the request then reads or writes opens a transaction on a connection of the
    session's own, as ever. SQLite starts no transaction for a read: nothing to spare there. Nor when
    the session already holds a transaction or changes not yet written: it then reads as usual.
    """
    from webapp.extensions import db

    session = db.session()
    reading = _reading_engine()
    if reading is None or session.in_transaction() or session.new or session.dirty or session.deleted:
        return session.execute(statement, params).first()
    row = session.execute(statement, params, bind_arguments={"bind": reading}).first()
    expire_on_commit = session.expire_on_commit
    session.expire_on_commit = False  # nothing was written: what was just read stays as read
    try:
        session.commit()  # no COMMIT sent (autocommit): the connection is given back
    finally:
        session.expire_on_commit = expire_on_commit
    return row


def _reading_engine():
    from flask import current_app

    from webapp.extensions import db

    if _READING not in current_app.extensions:
        engine = db.engine
        reading = None
        if engine.dialect.name == "postgresql":
            reading = engine.execution_options(isolation_level="AUTOCOMMIT")
        current_app.extensions[_READING] = reading
    return current_app.extensions[_READING]
