"""Jobs at scale: 1 000 dossiers refreshed at once by 1 worker, then by 4, against the sandbox.

Each dossier is connected to a sandbox company of its own with the demo lists (about 150 items over
the six lists) and the refresh of all its lists ('Actualiser les données de l'intégration': six
jobs) is queued for every dossier at once; then N real `flask worker --burst` processes (forking,
as in production) drain the queue. The sandbox is served by gunicorn on the same machine. It prints
dossiers per minute for 1 and 4 workers, the ratio (4 would be linear).

Then the work that grows with a cabinet, on DOSSIERS more dossiers whose lists are already loaded:
- the nightly changes-only refresh (services.periodic._refresh_changes, as nightly_refresh runs it)
  with nothing changed in the software, then with CHANGED (default 1 %) of the items renamed;
- the hourly token pass (keep_tokens_alive) with nothing due, then with DUE (default 1 %) of the
  integrations idle for two days, and the renewals it queues.
For each: the calls the software received (counted in its access log), the jobs run, the rows
written (PostgreSQL's own counts, per table), the events written (each one wakes the dossier's open
pages), and the wall time (the tick, then PASS_WORKERS workers draining what it queued).
With BASELINE=<git ref> the same passes run first with that version's code (its tick and workers,
from a temporary checkout), on the same dossiers: before and after in one run. One JSON line ends it.

    DATABASE_URL=postgresql://… .venv/bin/python bench/job_throughput.py    # the production setting
    .venv/bin/python bench/job_throughput.py                                  # SQLite (one writer at a time)
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). DOSSIERS=… WORKERS=1,4 change the defaults;
FULL_DOSSIERS=0 skips the full refreshes (20 minutes with 1 worker at 1 000), PASSES=0 the passes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _shared import baseline_tree, remove_tree, wait_until_served  # noqa: E402 - beside this script

DOSSIERS = int(os.environ.get("DOSSIERS", "1000"))
FULL_DOSSIERS = int(os.environ.get("FULL_DOSSIERS", str(DOSSIERS)))
WORKER_COUNTS = [int(n) for n in os.environ.get("WORKERS", "1,4").split(",")] if FULL_DOSSIERS else []
PASSES = os.environ.get("PASSES", "1") != "0"
CHANGED = float(os.environ.get("CHANGED", "0.01"))
DUE = float(os.environ.get("DUE", "0.01"))
PASS_WORKERS = int(os.environ.get("PASS_WORKERS", "4"))
BASELINE = os.environ.get("BASELINE", "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_dossiers(app, org_id: int, prefix: str, count: int) -> list[int]:
    """`count` dossiers, each connected to a new sandbox company holding the demo lists."""
    from sqlalchemy import insert

    from sandbox.models import SandboxCompany, SandboxItem
    from sandbox.oauth import issue_tokens
    from sandbox.seed import company_items
    from webapp.connectors.base import TokenSet
    from webapp.extensions import db
    from webapp.models import Dossier, Integration
    from webapp.services.integrations import store_tokens

    ids = []
    with app.app_context():
        client_id = app.config["SANDBOX_CLIENT_ID"]
        for index in range(count):
            company_id = f"cmp-{prefix}-{index:05d}"
            db.session.add(SandboxCompany(id=company_id, name=f"Société {prefix} {index}"))
            db.session.flush()
            db.session.execute(
                insert(SandboxItem),
                [
                    {"company_id": company_id, "active": True, "extras": {}, **item}
                    for item in company_items(index)
                ],
            )
            access, _refresh = issue_tokens(
                client_id=client_id,
                company_id=company_id,
                scope="lists invoices",
                access_ttl=86400,
                refresh_ttl=86400,
            )
            dossier = Dossier(organisation_id=org_id, name=f"Dossier {prefix} {index}")
            db.session.add(dossier)
            db.session.flush()
            integration = Integration(
                dossier_id=dossier.id, software="sandbox", company_id=company_id, company_name=company_id
            )
            store_tokens(integration, TokenSet(access, _refresh, time.time() + 86400))
            db.session.add(integration)
            db.session.flush()
            ids.append(integration.id)
            if index % 100 == 99:
                db.session.commit()
        db.session.commit()
    return ids


def _round(app, env: dict, integration_ids: list[int], workers: int) -> dict:
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import Integration, JobRun, JobStatus
    from webapp.services.lists import start_refresh_all

    with app.app_context():
        first_run = (db.session.scalar(select(func.max(JobRun.id))) or 0) + 1
        for integration_id in integration_ids:
            start_refresh_all(db.session.get(Integration, integration_id), None)
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.wait()
    seconds = time.perf_counter() - started
    with app.app_context():
        counts = dict(
            db.session.execute(
                select(JobRun.status, func.count()).where(JobRun.id >= first_run).group_by(JobRun.status)
            ).all()
        )
    succeeded = counts.get(JobStatus.SUCCEEDED, 0)
    assert succeeded == 6 * len(integration_ids), counts
    return {
        "workers": workers,
        "dossiers": len(integration_ids),
        "jobs": succeeded,
        "seconds": round(seconds, 1),
        "dossiers_per_min": round(len(integration_ids) / seconds * 60, 1),
    }


# --- the passes that grow with a cabinet ------------------------------------------------------

#: Run in a code tree (this one, or BASELINE's checkout): one tick, as the scheduler's job runs it,
#: its time and SQL statements; for the token pass, the plan of the query that finds the idle ones.
TICK = r"""
import json, sys, time
from sqlalchemy import event, select
from webapp import create_app

app = create_app()
what, arg = sys.argv[1], sys.argv[2]
with app.app_context():
    from webapp.extensions import db
    from webapp.models import Integration

    statements = []
    db.session.scalar(select(1))
    event.listen(db.engine, "before_cursor_execute", lambda c, cur, st, params, *a: statements.append((st, params)))
    started = time.perf_counter()
    if what == "changes":
        from webapp.services.periodic import _refresh_changes

        ids = json.load(open(arg))
        integrations = list(db.session.scalars(select(Integration).where(Integration.id.in_(ids)).order_by(Integration.id)))
        report = _refresh_changes(integrations)
    else:
        from webapp.services.periodic import keep_tokens_alive

        report = keep_tokens_alive(arg)
    seconds = time.perf_counter() - started
    plan = []
    if what == "tokens":
        found = [(st, params) for st, params in statements if "tokens_refreshed_at" in st and st.lstrip().upper().startswith("SELECT")]
        if found:
            st, params = found[0]
            raw = db.engine.raw_connection()
            cursor = raw.cursor()
            explain = "EXPLAIN " if db.engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
            cursor.execute(explain + st, params)
            plan = [" ".join(str(v) for v in row) for row in cursor.fetchall()]
            raw.close()
    print(json.dumps({"tick_s": round(seconds, 3), "started": report.started, "skipped": report.skipped,
                      "failed": report.failed, "statements": len(statements), "plan": plan}))
"""


def _load_lists(app, integration_ids: list[int], prefix: str) -> None:
    """The demo lists already loaded in each dossier a day ago (as a full load stores them: the same
    connector reading, the same search copies), without the 20 minutes of loading them."""
    from datetime import timedelta

    from sqlalchemy import insert

    from sandbox.seed import company_items
    from webapp.connectors.base import checked_item
    from webapp.connectors.sandbox import SOFTWARE, SandboxConnector
    from webapp.extensions import db
    from webapp.models import ListItem, ListKind, ListSync, SyncStatus
    from webapp.models.base import utcnow
    from webapp.models.lists import item_search_text, item_sort_name

    with app.app_context():
        loaded = utcnow() - timedelta(days=1)
        for index, integration_id in enumerate(integration_ids):
            rows: list[dict] = []
            counts: dict[str, int] = {}
            for item in company_items(index):
                kind = ListKind(item["kind"])
                raw = {
                    "id": item["external_id"],
                    **{key: item.get(key) for key in ("code", "name", "vat_number", "siren", "rate")},
                    "status": "active",
                    **({"extras": item["extras"]} if item.get("extras") else {}),
                }
                row = checked_item(SandboxConnector._normalise(kind, raw), SOFTWARE).row()
                rows.append(
                    {
                        "integration_id": integration_id,
                        "kind": kind,
                        **row,
                        "search_text": item_search_text(row.get),
                        "sort_name": item_sort_name(row.get),
                        "visible": True,
                        "created_at": loaded,
                        "updated_at": loaded,
                    }
                )
                counts[kind.value] = counts.get(kind.value, 0) + 1
            db.session.execute(insert(ListItem.__table__), rows)
            db.session.execute(
                insert(ListSync.__table__),
                [
                    {
                        "integration_id": integration_id,
                        "kind": kind,
                        "status": SyncStatus.SUCCEEDED,
                        "item_count": counts.get(kind.value, 0),
                        "active_count": counts.get(kind.value, 0),
                        "last_loaded_at": loaded,
                        "last_attempt_at": loaded,
                        "last_error": "",
                        "last_counts": {"added": counts.get(kind.value, 0), "calls_full": 1},
                    }
                    for kind in ListKind
                ],
            )
            if index % 100 == 99:
                db.session.commit()
        db.session.commit()


def _flush_statistics(db) -> None:
    """Commit, and have PostgreSQL count this connection's writes now, not in the pass measured next."""
    from sqlalchemy import text

    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_stat_force_next_flush()"))
        db.session.commit()


class Passes:
    """The nightly changes-only refresh and the hourly token pass, measured on one batch of dossiers."""

    def __init__(self, app, env: dict, ids: list[int], prefix: str, access_log: Path, admin, schema):
        self.app, self.env, self.ids, self.prefix = app, env, ids, prefix
        self.access_log, self.admin, self.schema = access_log, admin, schema
        self.ids_file = Path(env["RACCORD_INSTANCE_PATH"]) / "pass-ids.json"
        self.ids_file.write_text(json.dumps(ids))

    # what is counted
    def _calls(self) -> dict[str, int]:
        lines = self.access_log.read_text(errors="replace").splitlines() if self.access_log.exists() else []
        return {
            "api": sum(1 for line in lines if "/sandbox/api/v1/" in line),
            "token": sum(1 for line in lines if "/sandbox/oauth/token" in line),
        }

    def _writes(self) -> dict[str, int]:
        """Rows inserted, updated and deleted per table (PostgreSQL's statistics), once they settle."""
        if self.admin is None:
            return {}
        import sqlalchemy as sa

        def read() -> dict[str, int]:
            with self.admin.connect() as conn:
                return {
                    name: int(total)
                    for name, total in conn.execute(
                        sa.text(
                            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
                            " WHERE schemaname = :schema"
                        ),
                        {"schema": self.schema},
                    )
                }

        previous = read()
        for _ in range(20):  # a backend sends its figures within a second, or as it exits
            time.sleep(1.1)
            current = read()
            if current == previous:
                return current
            previous = current
        return previous

    def _db_counts(self) -> tuple[int, int]:
        from sqlalchemy import func, select

        from webapp.extensions import db
        from webapp.models import Event, JobRun

        with self.app.app_context():
            return (
                db.session.scalar(select(func.max(JobRun.id))) or 0,
                db.session.scalar(select(func.max(Event.id))) or 0,
            )

    # the state before each pass
    def reset_lists(self) -> None:
        """Every list loaded a day ago, the software's items last changed two days ago."""
        from datetime import timedelta

        from sqlalchemy import update

        from sandbox.models import SandboxItem
        from webapp.extensions import db
        from webapp.models import ListKind, ListSync, SyncStatus
        from webapp.models.base import utcnow
        from webapp.services.jobs import get_redis

        with self.app.app_context():
            now = utcnow()
            db.session.execute(
                update(SandboxItem)
                .where(SandboxItem.company_id.like(f"cmp-{self.prefix}-%"))
                .values(updated_at=now - timedelta(days=2))
            )
            db.session.execute(
                update(ListSync)
                .where(ListSync.integration_id.in_(self.ids))
                .values(status=SyncStatus.SUCCEEDED, last_loaded_at=now - timedelta(days=1), job_run_id=None)
            )
            _flush_statistics(db)
            get_redis().delete(
                *(f"raccord:list-checked:{i}:{kind.value}" for i in self.ids for kind in ListKind)
            )

    def change_items(self, share: float, seed: int) -> int:
        import random

        from sqlalchemy import select, update

        from sandbox.models import SandboxItem
        from webapp.extensions import db
        from webapp.models.base import utcnow

        with self.app.app_context():
            ids = list(
                db.session.scalars(
                    select(SandboxItem.id).where(SandboxItem.company_id.like(f"cmp-{self.prefix}-%"))
                )
            )
            chosen = random.Random(seed).sample(ids, max(1, round(len(ids) * share)))
            db.session.execute(
                update(SandboxItem)
                .where(SandboxItem.id.in_(chosen))
                .values(name=SandboxItem.name + " bis", updated_at=utcnow())
            )
            _flush_statistics(db)
            return len(chosen)

    def age_tokens(self, share: float) -> int:
        from datetime import timedelta

        from sqlalchemy import update

        from webapp.extensions import db
        from webapp.models import Integration
        from webapp.models.base import utcnow

        due = self.ids[: max(1, round(len(self.ids) * share))] if share else []
        with self.app.app_context():
            db.session.execute(
                update(Integration).where(Integration.id.in_(self.ids)).values(tokens_refreshed_at=utcnow())
            )
            if due:
                db.session.execute(
                    update(Integration)
                    .where(Integration.id.in_(due))
                    .values(tokens_refreshed_at=utcnow() - timedelta(days=2))
                )
            _flush_statistics(db)
        return len(due)

    # one pass
    def measure(self, tree: Path, what: str) -> dict:
        env = {**self.env, "PYTHONPATH": str(tree)}
        writes_before, calls_before = self._writes(), self._calls()
        runs_before, events_before = self._db_counts()
        started = time.perf_counter()
        arg = str(self.ids_file) if what == "changes" else f"bench-{uuid.uuid4().hex[:8]}"
        out = subprocess.run(
            [sys.executable, "-c", TICK, what, arg], cwd=tree, env=env, capture_output=True, text=True
        )
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
        tick = json.loads(out.stdout.strip().splitlines()[-1])
        drained = time.perf_counter()
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
                cwd=tree,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(PASS_WORKERS)
        ]
        for worker in workers:
            worker.wait()
        ended = time.perf_counter()
        from sqlalchemy import func, select

        from webapp.extensions import db
        from webapp.models import Event, JobRun

        with self.app.app_context():
            jobs = dict(
                db.session.execute(
                    select(JobRun.status, func.count()).where(JobRun.id > runs_before).group_by(JobRun.status)
                ).all()
            )
            events = db.session.scalar(select(func.count()).where(Event.id > events_before))
            woken = db.session.scalar(
                select(func.count(func.distinct(Event.dossier_id))).where(Event.id > events_before)
            )
        calls_after, writes_after = self._calls(), self._writes()
        writes = {
            table: writes_after.get(table, 0) - writes_before.get(table, 0)
            for table in writes_after
            if writes_after.get(table, 0) != writes_before.get(table, 0) and not table.startswith("sandbox_")
        }
        return {
            "tick_s": tick["tick_s"],
            "tick_statements": tick["statements"],
            "plan": tick["plan"][:3],
            "seconds": round(ended - started, 1),
            "drain_s": round(ended - drained, 1),
            "api_calls": calls_after["api"] - calls_before["api"],
            "token_calls": calls_after["token"] - calls_before["token"],
            "jobs": sum(jobs.values()),
            "jobs_by_status": {str(getattr(k, "value", k)): v for k, v in jobs.items()},
            "events": events,
            "dossiers_woken": woken,
            "rows_written": sum(writes.values()) if self.admin is not None else None,
            "writes_by_table": writes,
        }

    def run(self, label: str, tree: Path, seed: int, sandbox: subprocess.Popen) -> dict:
        def measured(what: str) -> dict:
            result = self.measure(tree, what)
            if sandbox.poll() is not None:  # figures of calls that found no software would mean nothing
                raise RuntimeError(f"the sandbox stopped (exit {sandbox.returncode}): see sandbox-errors.log")
            return result

        self.reset_lists()
        results: dict = {"code": label}
        results["nightly_nothing"] = measured("changes")
        changed = self.change_items(CHANGED, seed)
        results["nightly_changed"] = {"items_changed": changed, **measured("changes")}
        self.age_tokens(0)
        results["tokens_nothing_due"] = measured("tokens")
        due = self.age_tokens(DUE)
        results["tokens_due"] = {"due": due, **measured("tokens")}
        return results


def _print_passes(result: dict, dossiers: int) -> None:
    print(f"— code {result['code']}, {dossiers} dossiers :")
    for key, title in (
        ("nightly_nothing", "nuit, rien de changé"),
        ("nightly_changed", "nuit, éléments changés"),
        ("tokens_nothing_due", "jetons, aucun dû"),
        ("tokens_due", "jetons, certains dus"),
    ):
        r = result[key]
        extra = f" ({r['items_changed']} éléments)" if "items_changed" in r else ""
        extra += f" ({r['due']} intégrations)" if "due" in r else ""
        print(
            f"  {title}{extra} : {r['seconds']} s (tick {r['tick_s']} s, {r['tick_statements']} requêtes), "
            f"{r['api_calls']} appels API + {r['token_calls']} jetons, {r['jobs']} tâches, "
            f"{r['events']} événements ({r['dossiers_woken']} dossiers réveillés), "
            f"lignes écrites : {r['rows_written']} {r['writes_by_table']}"
        )
        if r["plan"]:
            print(f"    plan : {' | '.join(r['plan'])}")


def main() -> None:
    instance = Path(tempfile.mkdtemp(prefix="raccord-bench-"))
    env = dict(os.environ)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("SECRET_KEY", "bench-secret-key-long-enough-for-the-config-check")
    env.update(RACCORD_INSTANCE_PATH=str(instance), JOB_QUEUE=f"raccord-bench-{uuid.uuid4().hex[:8]}")

    import sqlalchemy as sa

    schema = None
    database_url = env.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql")):
        schema = f"raccord_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in database_url else "?"
        env["DATABASE_URL"] = f"{database_url}{separator}options=-csearch_path%3D{schema}"
    backend = "PostgreSQL" if schema else "SQLite"
    port = _free_port()
    env["SANDBOX_BASE_URL"] = f"http://127.0.0.1:{port}/sandbox"
    os.environ.update(env)

    from flask_migrate import upgrade

    from sandbox.seed import seed_sandbox
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Organisation

    app = create_app()
    with app.app_context():
        upgrade(revision="heads")
        seed_sandbox(app.config["SANDBOX_CLIENT_ID"], app.config["SANDBOX_CLIENT_SECRET"])
        org = Organisation(name="Cabinet Bench")
        db.session.add(org)
        db.session.commit()
        org_id = org.id
    prepared = time.perf_counter()
    batches = {n: _make_dossiers(app, org_id, f"w{n}", FULL_DOSSIERS) for n in WORKER_COUNTS}
    pass_ids = _make_dossiers(app, org_id, "p", DOSSIERS) if PASSES else []
    if pass_ids:
        _load_lists(app, pass_ids, "p")
    print(
        f"{backend} : {FULL_DOSSIERS * len(WORKER_COUNTS) + len(pass_ids)} dossiers préparés en "
        f"{time.perf_counter() - prepared:.0f} s"
    )
    access_log = instance / "sandbox-access.log"
    baseline = baseline_tree(BASELINE) if BASELINE and PASSES else None

    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            str(access_log),
            "--error-logfile",
            str(instance / "sandbox-errors.log"),
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_served(f"http://127.0.0.1:{port}")
        results = []
        for workers in WORKER_COUNTS:
            result = _round(app, env, batches[workers], workers)
            results.append(result)
            print(
                f"{workers} worker(s) : {result['dossiers']} dossiers ({result['jobs']} tâches) en "
                f"{result['seconds']} s, {result['dossiers_per_min']} dossiers/min"
            )
        passes = []
        if pass_ids:
            bench = Passes(app, env, pass_ids, "p", access_log, admin if schema else None, schema)
            versions = ([(f"avant ({BASELINE})", baseline)] if baseline else []) + [("actuel", ROOT)]
            for seed, (label, tree) in enumerate(versions):
                passes.append(bench.run(label, tree, seed, sandbox))
                _print_passes(passes[-1], len(pass_ids))
    finally:
        errors = instance / "sandbox-errors.log"
        if sandbox.poll() is not None and errors.exists():
            print(errors.read_text(errors="replace")[-3000:], file=sys.stderr)
        sandbox.terminate()
        sandbox.wait(timeout=30)
        if schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        shutil.rmtree(instance, ignore_errors=True)
        if baseline is not None:
            remove_tree(baseline)

    if results:
        base = results[0]["dossiers_per_min"]
        for result in results:
            result["ratio_to_first"] = round(result["dossiers_per_min"] / base, 2)
        print(
            f"rapport {WORKER_COUNTS[-1]} workers / {WORKER_COUNTS[0]} : {results[-1]['ratio_to_first']} "
            f"(machine : {os.cpu_count()} cœurs)"
        )
    print(
        json.dumps(
            {
                "bench": "jobs",
                "database": backend,
                "dossiers": DOSSIERS,
                "cpus": os.cpu_count(),
                "results": results,
                "pass_dossiers": len(pass_ids),
                "pass_workers": PASS_WORKERS,
                "passes": passes,
            }
        )
    )


if __name__ == "__main__":
    main()
