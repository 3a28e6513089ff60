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


def read_outside_transaction() -> dict:
    """Bind arguments for a lone read that needs no transaction around it (on PostgreSQL).

    Every page starts by reading its session (and its dossier) in one statement. In a transaction,
    psycopg sends BEGIN before it and the pool a ROLLBACK when the connection goes back: two round
    trips more than the read itself, and on a page served from kept parts the only other work. In
    autocommit they are not sent (psycopg does not roll back a connection with no transaction open).
    The objects read join the request's session like any other; what the request then writes goes
    through the session's own connection, in a transaction as ever. SQLite starts no transaction
    for a read: nothing to spare there.
    """
    from flask import current_app

    from webapp.extensions import db

    reading = current_app.extensions.get(_READING)
    if reading is None:
        engine = db.engine
        reading = {}
        if engine.dialect.name == "postgresql":
            reading = {"bind": engine.execution_options(isolation_level="AUTOCOMMIT")}
        current_app.extensions[_READING] = reading
    return reading
