"""Fixtures: an app per test on SQLite and PostgreSQL, clients, login, real Redis and RQ workers."""

from __future__ import annotations

import contextvars
import html
import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.processes import close_zygote, flask_command, run_flask_command, stop_leftovers
from webapp import create_app
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: Under pytest-xdist, "gw0", "gw1"...: each worker has its own Redis database, PostgreSQL schema,
#: instance folder, SQLite file and ports, so that no test sees another's data.
TEST_SECRET = "test-secret-key-that-is-long-enough-for-the-config-check"
TEST_TOKEN_KEY = "kq0kHj1bBv0c4QnQW2vM0QzXo8p8dJvS7bq9v2p6bWk="
#: The sandbox controls' JSON API token of the tests' apps (tests.http_user.controls_api sends it).
SANDBOX_CONTROL_TOKEN = "test-sandbox-control-token-long-enough-0123456789"


def pytest_configure(config) -> None:
    """The compiled catalogues are not in git: built here as `make` builds them, so that `pytest`
    alone works after a fresh clone (only the .mo older than their .po are written)."""
    from webapp.i18n import compile_catalogues

    compile_catalogues()


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one process more than the cores. A test spends much of its time waiting for the RQ
    workers, servers and browser it started (which run on the cores meanwhile): with one process per
    core, a third of the machine was idle."""
    return min((os.cpu_count() or 1) + 1, 15)


def missing_service(what: str) -> None:
    """In CI a missing service is a failure; on a developer's machine, a skip that says why."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not reachable")
    pytest.skip(f"{what} is not reachable")


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No setting of the developer's shell leaks into the tests."""
    saved = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "RACCORD_ENV", "JOB_QUEUE"):
        os.environ.pop(name, None)
    os.environ["RACCORD_INSTANCE_PATH"] = str(tmp_path_factory.mktemp("instance"))
    # Thousands of throwaway accounts are made and signed in: hashed at a fraction of production's
    # cost (PASSWORD_HASH_METHOD, refused in production; tests/test_config.py checks the default).
    os.environ["PASSWORD_HASH_METHOD"] = "scrypt:1024:8:1"
    yield
    os.environ.clear()
    os.environ.update(saved)


# --- databases --------------------------------------------------------------------------


def _postgres_schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema of its own in the `test` database, so parallel runs never meet."""
    schema = f"raccord_test_{uuid.uuid4().hex[:10]}"
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            # pg_trgm is one per database: made once in `public`, under a lock, by whichever worker
            # comes first (made by a migration inside a worker's schema, it would go with that schema).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(72100001)"))
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError:
        missing_service("PostgreSQL (TEST_POSTGRES_URL)")
    yield _postgres_schema_url(schema)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'raccord-test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_schema")
    return request.getfixturevalue("sqlite_file")


_schemas_made: set[str] = set()


def _has_rows(table: sa.Table) -> str:
    return f"SELECT '{table.name}' WHERE EXISTS (SELECT 1 FROM \"{table.name}\")"  # noqa: S608 - the schema's own name


def _reset_database(app) -> None:
    import sandbox.models  # noqa: F401 - the sandbox's tables are part of the schema, sandbox on or off

    with app.app_context():
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        if url not in _schemas_made:
            db.drop_all()
            db.create_all()
            _schemas_made.add(url)
            return
        tables = list(reversed(db.metadata.sorted_tables))
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Only the tables the last test wrote, and their numbering started again: a TRUNCATE
                # of every table costs a new file per table and index, most of them already empty.
                written = set(conn.scalars(sa.text(" UNION ALL ".join(map(_has_rows, tables)))))
                tables = [t for t in tables if t.name in written]
            for table in tables:
                conn.execute(table.delete())
            if conn.dialect.name == "postgresql" and tables:
                conn.execute(
                    sa.text(
                        "SELECT setval(s, 1, false) FROM (SELECT pg_get_serial_sequence(t, 'id') AS s "
                        "FROM unnest(CAST(:tables AS text[])) AS t) AS found WHERE s IS NOT NULL"
                    ),
                    {"tables": [f'"{t.name}"' for t in tables if "id" in t.c]},
                )
        db.engine.dispose()


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production.

    Without this, a request made while a test holds an app context would share that context's
    `g` and database session with the test, and with the requests before it.
    """

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def make_app(database_url: str, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "LOGIN_FAILURE_DELAY": 0,
        "JOB_POLL_SECONDS": 0.3,
        "TOKEN_ENCRYPTION_KEYS": [TEST_TOKEN_KEY],
        "PROVIDER_BACKOFF_SECONDS": 0.01,
        "SERVER_NAME": None,
        "SANDBOX_CONTROL_TOKEN": SANDBOX_CONTROL_TOKEN,
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = IsolatedClient
    _apps_made.append(app)
    _reset_database(app)
    return app


_apps_made: list = []


@pytest.fixture(scope="session", autouse=True)
def _worker_zygote() -> Iterator[None]:
    """The process that forks the tests' RQ workers ends with the session (tests/processes.py)."""
    yield
    stop_leftovers()
    close_zygote()


@pytest.fixture(autouse=True)
def _stop_processes() -> Iterator[None]:
    """Whatever a test started and did not stop (it failed, or timed out) is stopped when it ends."""
    yield
    from tests.http_user import close_browsers

    close_browsers()
    left = stop_leftovers()
    assert not left, f"processes still running when the test ended, now stopped: {left}"


@pytest.fixture(autouse=True)
def _close_apps() -> Iterator[None]:
    """Every app a test made gives its database connections back when the test ends. One still in
    use then would be closed later by the garbage collector, warning in whichever test runs: it is
    reported here, in the test that left it."""
    yield
    left = []
    while _apps_made:
        app = _apps_made.pop()
        for each in (app, app.extensions.get("raccord.sandbox")):
            if each is not None:
                with each.app_context():
                    db.session.remove()
                    if db.engine.pool.checkedout():
                        left.append(f"{db.engine.url.drivername}: {db.engine.pool.checkedout()}")
                    db.engine.dispose()
    assert not left, f"database connections still in use when the test ended: {left}"


@pytest.fixture
def app(database_url: str):
    return make_app(database_url)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield


#: The no-break spaces French typography puts before « : ; ? ! », inside « » and in numbers.
_TYPOGRAPHIC_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})


def plain_spaces(text: str) -> str:
    """`text` with the no-break spaces of French typography turned into ordinary ones."""
    return text.translate(_TYPOGRAPHIC_SPACES)


def unescaped(page: str) -> str:
    """A page's HTML with its entities decoded and the typography's no-break spaces made ordinary
    (see text_of)."""
    return plain_spaces(html.unescape(page))


def text_of(response) -> str:
    """The page as the user reads it: entities such as &#39; turned back into characters, and the
    no-break spaces of French typography (« Documents : », « Publier », 732 829 320) written as
    ordinary spaces, so that tests quote French as it is typed. The typography itself is asserted
    by tests/test_i18n.py (the catalogue and the rendered pages)."""
    return plain_spaces(html.unescape(response.get_data(as_text=True)))


# --- CSRF and login --------------------------------------------------------------------

_CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token as a browser would get it: from a page the user opened."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = _CSRF_RE.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def login(client, email: str, password: str, *, next_url: str | None = None):
    token = csrf_token(client)
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password, "csrf_token": token})


# --- Redis and RQ workers ---------------------------------------------------------------


def _with_database(base: str, number: int) -> str:
    scheme_host, _, _ = base.rpartition("/") if base.count("/") > 2 else (base, "", "")
    return f"{scheme_host}/{number}"


#: Where the test processes of this machine note which Redis database each one holds.
_CLAIMS = "raccord-test:redis-database:{number}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim_redis_database(base: str) -> tuple[int, redis.Redis]:
    """A Redis database (1 to 15) of this process's own, for the whole session.

    The app keeps per-dossier keys in Redis (locks, coalesced refreshes, rate limits) under names that
    are the same in every run, since every run's databases count dossiers from 1. Two runs of the suite
    at once on one machine (two checkouts, or a run beside CI) must therefore never share a database:
    each test process claims one in database 0 (SET NX, with its PID), and a claim whose process has died
    is taken over. The claim expires after a day in any case."""
    registry = redis.Redis.from_url(_with_database(base, 0), socket_connect_timeout=2)
    registry.ping()
    me = str(os.getpid())
    # From the top: a checkout still on the former numbering (1, 2... by xdist worker) stays clear.
    for number in range(15, 0, -1):
        key = _CLAIMS.format(number=number)
        if registry.set(key, me, nx=True, ex=86_400):
            return number, registry
        holder = registry.get(key)
        if holder is not None and not _alive(int(holder)):
            # A dead process's claim: taken over only if still that process's (no race with another taker).
            pipe = registry.pipeline()
            try:
                pipe.watch(key)
                if pipe.get(key) == holder:
                    pipe.multi()
                    pipe.set(key, me, ex=86_400)
                    pipe.execute()
                    return number, registry
            except redis.WatchError:
                pass
            finally:
                pipe.reset()
    raise pytest.UsageError("no free Redis database (1 to 15): too many test processes at once on this Redis")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        number, registry = _claim_redis_database(REDIS_URL)
    except redis.exceptions.RedisError:
        missing_service("Redis (TEST_REDIS_URL)")
    url = _with_database(REDIS_URL, number)
    connection = redis.Redis.from_url(url)
    connection.flushdb()  # what a dead run left behind
    connection.close()
    yield url
    key = _CLAIMS.format(number=number)
    if registry.get(key) == str(os.getpid()).encode():
        registry.delete(key)
    registry.close()


@pytest.fixture
def job_app(database_url: str, redis_url: str):
    """An app whose jobs go to the real Redis, on a queue of its own."""
    queue = f"raccord-test-{uuid.uuid4().hex[:12]}"
    app = make_app(database_url, REDIS_URL=redis_url, JOB_QUEUE=queue)
    yield app
    connection = redis.Redis.from_url(redis_url)
    # The queue's keys, and the companies' call budgets (webapp.connectors.limits): the sandbox's
    # companies have the same ids in every test, and a pause after a 429 must not outlive its test.
    for pattern in (f"*{queue}*", "raccord:budget:*"):
        for key in connection.scan_iter(pattern):
            connection.delete(key)
    connection.close()


def worker_env(app) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "JOB_QUEUE": app.config["JOB_QUEUE"],
            "SECRET_KEY": TEST_SECRET,
            "TOKEN_ENCRYPTION_KEY": TEST_TOKEN_KEY,
            "PROVIDER_BACKOFF_SECONDS": "0.01",
            "LIST_PAGE_SIZE": str(app.config["LIST_PAGE_SIZE"] or ""),
            "PYTHONPATH": str(ROOT),
        }
    )
    if app.config.get("SANDBOX_BASE_URL"):
        env["SANDBOX_BASE_URL"] = app.config["SANDBOX_BASE_URL"]
    # Where the workers send e-mail (tests.mail_helpers: an SMTP server of the test's own).
    for name in ("MAIL_BACKEND", "MAIL_PORT", "MAIL_TIMEOUT", "PUBLIC_BASE_URL"):
        env[name] = str(app.config[name])
    env["MAIL_SERVER"] = app.config["MAIL_SERVER"]
    env["MAIL_RETRY_DELAYS"] = ",".join(str(delay) for delay in app.config["MAIL_RETRY_DELAYS"])
    # The companies' call budgets as the test set them on its app (webapp.connectors.limits).
    if app.config.get("VENDOR_LIMITS"):
        env["VENDOR_LIMITS"] = json.dumps(app.config["VENDOR_LIMITS"])
    for name in ("VENDOR_LIMIT_MARGIN", "VENDOR_BUDGET_MAX_WAIT", "VENDOR_BUDGET_SHRINK_SECONDS"):
        if name in app.config:
            env[name] = str(app.config[name])
    return env


def run_worker_burst(app, timeout: float = 60, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """A real `flask worker --burst` (RQ, forking, as in production) that drains the queue and exits."""
    return run_flask_command(
        ["--app", "wsgi", "worker", "--burst"], {**worker_env(app), **extra_env}, timeout
    )


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The app served on a real port in a thread: the sandbox software is reached over HTTP."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        app.config["SANDBOX_BASE_URL"] = f"{self.url}/sandbox"
        # Asked to stop, the server notices at its next poll: every 20 ms rather than werkzeug's 500.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        # Requests still being served (a row polling itself, a call to the sandbox from a worker the
        # test killed) end before the app's connections are closed: else theirs outlive the pool.
        deadline = time.monotonic() + 15
        while _connections_in_use(self.app) and time.monotonic() < deadline:
            time.sleep(0.05)


def _engines_of(app) -> list:
    engines = []
    for each in (app, app.extensions.get("raccord.sandbox")):
        if each is not None:
            with each.app_context():
                engines.append(db.engine)
    return engines


def _connections_in_use(app) -> int:
    return sum(engine.pool.checkedout() for engine in _engines_of(app))


def seed_sandbox_for(app, organisation_id: int | None = None) -> None:
    """The sandbox's demo companies; those nobody owns yet go to `organisation_id`."""
    from webapp.sandbox_host import seed_sandbox_for as seed

    with app.app_context():
        seed(organisation_id)


def sandbox_tokens(
    app,
    *,
    company_id: str | None = None,
    scope: str = "lists invoices",
    access_ttl: int = 3600,
    refresh_ttl: int = 86400,
) -> tuple[str, str, str]:
    """The sandbox's companies, and a live grant to one (`company_id`, else the first by id), as if
    its consent had just been given: (company id, access token, refresh token)."""
    from sandbox.models import SandboxCompany
    from webapp.sandbox_host import grant_tokens

    seed_sandbox_for(app)
    if company_id is None:
        with app.extensions["raccord.sandbox"].app_context():
            company_id = db.session.scalars(db.select(SandboxCompany.id).order_by(SandboxCompany.id)).first()
    access, refresh = grant_tokens(
        app, company_id=company_id, scope=scope, access_ttl=access_ttl, refresh_ttl=refresh_ttl
    )
    return company_id, access, refresh


@pytest.fixture
def issued_tokens(monkeypatch) -> list[str]:
    """Every token the sandbox issues during the test, in clear: the sandbox keeps only their hashes,
    and its server runs in the test's process (workers reach it over HTTP)."""
    import sandbox.oauth

    issued: list[str] = []
    real = sandbox.oauth._issued

    def spy(*args, **kwargs) -> str:
        value = real(*args, **kwargs)
        issued.append(value)
        return value

    monkeypatch.setattr(sandbox.oauth, "_issued", spy)
    return issued


@pytest.fixture
def live(job_app) -> Iterator[LiveServer]:
    """The whole stack over HTTP: the app and its sandbox on a port, jobs on the real Redis."""
    server = LiveServer(job_app).start()
    seed_sandbox_for(job_app)
    yield server
    server.stop()


class WorkerProcess:
    """A long-running `flask worker` (real RQ, forking) for tests that click and wait."""

    def __init__(self, app, **extra_env: str):
        self.process = flask_command(
            ["--app", "wsgi", "worker"], {**worker_env(app), **extra_env}, capture=False
        )

    def horses(self) -> list[int]:
        """The work horses this worker forked (the processes that run the jobs)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        """Warm shutdown (the current job ends), then SIGKILL to what is left after 15 s."""
        self.process.stop(grace=15)


@pytest.fixture
def worker(live) -> Iterator[WorkerProcess]:
    process = WorkerProcess(live.app)
    yield process
    process.stop()


@pytest.fixture
def dossier_id(job_app) -> int:
    """A cabinet with the dossier 'Boulangerie Martin' and its bookkeeper; the dossier's id."""
    from tests.factories import make_dossier, make_organisation, make_user

    with job_app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        dossier = make_dossier(org, "Boulangerie Martin")
        make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
        dossier_id, org_id = dossier.id, org.id
    seed_sandbox_for(job_app, org_id)  # the sandbox's companies are this cabinet's
    return dossier_id


@pytest.fixture
def bookkeeper(live, dossier_id):
    """The dossier's bookkeeper, logged in, as plain HTTP."""
    from tests.http_user import Browser

    user = Browser(live.url)
    user.login("claire@lefevre.test", "bon-mot-de-passe")
    return user


@pytest.fixture
def connected_dossier(job_app, bookkeeper, dossier_id) -> tuple:
    """The dossier connected to the sandbox company, every list loaded: (bookkeeper, dossier, integration)."""
    from tests.http_user import connected

    return bookkeeper, dossier_id, connected(job_app, bookkeeper, dossier_id)


@pytest.fixture
def dossier_with_rule(job_app, connected_dossier):
    """The connected dossier with a supplier rule for EDF: (bookkeeper, dossier, integration, item ids)."""
    from webapp.models import ListItem, PartyKind, Rule

    browser, dossier_id, integration_id = connected_dossier
    with job_app.app_context():
        ids = {
            name: db.session.scalar(select(ListItem.id).where(ListItem.external_id == external_id))
            for name, external_id in (
                ("edf", "sup-000001"),
                ("energy", "acc-606100"),
                ("office", "acc-606400"),
                ("tva20", "tax-TVA20"),
            )
        }
        db.session.add(
            Rule(
                dossier_id=dossier_id,
                integration_id=integration_id,
                party_kind=PartyKind.SUPPLIER,
                party_id=ids["edf"],
                account_id=ids["energy"],
                tax_rate_id=ids["tva20"],
            )
        )
        db.session.commit()
    return browser, dossier_id, integration_id, ids


@pytest.fixture
def smtp_server(unused_port: int) -> Iterator:
    """An SMTP server (aiosmtpd) collecting what the app sends, on a port of the test's own."""
    from tests.mail_helpers import SmtpServer

    server = SmtpServer(unused_port).start()
    yield server
    server.stop()


@pytest.fixture
def mail_app(job_app, smtp_server):
    """job_app sending its e-mail through smtp_server, links under https://raccord.cabinet.test."""
    from tests.mail_helpers import use_smtp

    use_smtp(job_app, smtp_server)
    return job_app


@pytest.fixture
def summaries_stay_true(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the test, every dossier's line of 'Mes dossiers' says what its live figures say, whatever
    the test's flow wrote (pytestmark = pytest.mark.usefixtures("summaries_stay_true"))."""
    names = request.fixturenames
    app = (
        request.getfixturevalue("job_app" if "job_app" in names else "app")
        if ("job_app" in names or "app" in names)
        else None
    )
    yield
    if app is None:
        return
    from tests.summary_helpers import assert_summaries_true

    with app.app_context():
        assert_summaries_true()
        db.session.remove()
