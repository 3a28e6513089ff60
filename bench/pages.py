"""Page latency under load: gunicorn (2 workers), a dossier with 200 000 suppliers and 10 000 documents,
in a cabinet of 5 000 dossiers.

The pages 'Intégration', 'Fournisseurs' (a search) and 'Documents' of that dossier, and 'Mes dossiers'
(the cabinet's dashboard: its first page, and « A besoin de moi » sorted by invoices in failure) are
each loaded by 20 concurrent clients with wrk, logged in; the bound is a constant page of the same app (/robots.txt, through the
same middleware, session and headers) loaded the same way in the same run. It prints p50, p99 and
requests per second for each, the ratio of throughput to the bound, then one JSON line.

    .venv/bin/python bench/pages.py                    # SQLite in a temporary folder
    DATABASE_URL=postgresql://… .venv/bin/python bench/pages.py
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0) and wrk (apt-get install wrk).
SUPPLIERS=… DOCUMENTS=… DOSSIERS=… CLIENTS=… DURATION=… (seconds) change the defaults; PAGES=bare,portfolio
measures only those pages (names as printed).

With BASELINE=<git ref>, that version of the code is served too (a temporary checkout, its own
gunicorn, the same database and the same signed-in session) and both are measured turn by turn, page by
page, ROUNDS times (default 3): the medians are printed for each, so that a machine whose speed drifts
during the run weighs on both alike. Each figure also gives the web workers' CPU time per request (read
from /proc), which another process on the machine disturbs far less than the throughput.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUPPLIERS = int(os.environ.get("SUPPLIERS", "200000"))
DOCUMENTS = int(os.environ.get("DOCUMENTS", "10000"))
CLIENTS = int(os.environ.get("CLIENTS", "20"))
DURATION = int(os.environ.get("DURATION", "15"))
DOSSIERS = int(os.environ.get("DOSSIERS", "5000"))
PAGES = [p for p in os.environ.get("PAGES", "").split(",") if p]
BASELINE = os.environ.get("BASELINE", "")
ROUNDS = int(os.environ.get("ROUNDS", "3" if BASELINE else "1"))
EMAIL, PASSWORD = "bench@cabinet.test", "mot-de-passe-du-bench"

WORDS = [
    "Boulangerie",
    "Garage",
    "Pharmacie",
    "Transports",
    "Atelier",
    "Cabinet",
    "Menuiserie",
    "Fromagerie",
    "Librairie",
    "Hôtel",
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _populate(app) -> tuple[int, int]:
    """The dossier, its integration, 200 000 suppliers, the other lists and 10 000 documents."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import insert
    from sqlalchemy import text as sa_text

    from webapp.extensions import db
    from webapp.models import (
        Direction,
        Document,
        DocumentStatus,
        Dossier,
        Integration,
        ListItem,
        ListKind,
        ListSync,
        Organisation,
        Role,
        User,
    )
    from webapp.models.base import utcnow
    from webapp.models.lists import SyncStatus

    rng = random.Random(7)
    with app.app_context():
        org = Organisation(name="Cabinet Bench")
        db.session.add(org)
        db.session.flush()
        user = User(organisation_id=org.id, email=EMAIL, role=Role.MEMBER, full_name="Claire Bench")
        user.set_password(PASSWORD)
        dossier = Dossier(organisation_id=org.id, name="Boulangerie Martin", siren="732829320")
        db.session.add_all([user, dossier])
        db.session.flush()
        integration = Integration(
            dossier_id=dossier.id,
            software="sandbox",
            company_id="cmp-bench",
            company_name="Boulangerie Martin SARL",
        )
        db.session.add(integration)
        db.session.commit()
        now = utcnow()

        def items(kind: ListKind, count: int, name, code=None):
            for start in range(0, count, 10_000):
                rows = [
                    {
                        "integration_id": integration.id,
                        "kind": kind,
                        "external_id": f"{kind.value}-{i:07d}",
                        "code": code(i) if code else None,
                        "name": name(i),
                        "active": i % 17 != 0,
                        "extras": {},
                        "visible": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start, min(count, start + 10_000))
                ]
                db.session.execute(insert(ListItem), rows)
            db.session.commit()

        items(ListKind.SUPPLIERS, SUPPLIERS, lambda i: f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}")
        items(ListKind.CUSTOMERS, 2_000, lambda i: f"Client {rng.choice(WORDS)} {i}")
        items(ListKind.ACCOUNTS, 800, lambda i: f"Compte {i}", code=lambda i: f"{600000 + i}")
        items(ListKind.TAX_RATES, 6, lambda i: f"TVA {i}")
        for kind in ListKind:
            db.session.add(
                ListSync(
                    integration_id=integration.id,
                    kind=kind,
                    status=SyncStatus.SUCCEEDED,
                    last_loaded_at=now,
                    item_count=SUPPLIERS if kind is ListKind.SUPPLIERS else 10,
                )
            )
        db.session.commit()
        supplier_ids = [
            row[0]
            for row in db.session.execute(
                ListItem.__table__.select()
                .with_only_columns(ListItem.id)
                .where(ListItem.kind == ListKind.SUPPLIERS)
                .limit(5_000)
            )
        ]
        statuses = list(DocumentStatus)
        rows = []
        for i in range(DOCUMENTS):
            ht = Decimal(rng.randint(1_000, 500_000)) / 100
            rows.append(
                {
                    "dossier_id": dossier.id,
                    "integration_id": integration.id,
                    "direction": Direction.PURCHASE,
                    "party_id": rng.choice(supplier_ids),
                    "party_name": "",
                    "status": statuses[i % len(statuses)],
                    "number": f"F-{i:06d}",
                    "issue_date": date(2026, 1, 1) + timedelta(days=i % 300),
                    "amount_ht": ht,
                    "amount_tva": (ht * Decimal("0.2")).quantize(Decimal("0.01")),
                    "amount_ttc": (ht * Decimal("1.2")).quantize(Decimal("0.01")),
                    "currency": "EUR",
                    "idempotency_key": uuid.uuid4().hex,
                    "created_at": now - timedelta(seconds=i),
                }
            )
        for start in range(0, len(rows), 2_000):
            db.session.execute(insert(Document), rows[start : start + 2_000])
        db.session.commit()
        _populate_portfolio(org.id, rng, now)
        # The statistics and visibility map a database in service has (autovacuum keeps them on
        # PostgreSQL): without them the planner takes 200 000 fresh rows for none, and no search can
        # be answered from the index alone.
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa_text("VACUUM ANALYZE"))
                # The writes of the seeding flushed to disk now, not by a checkpoint in the middle
                # of a measured round (a role without the right to ask skips it).
                with contextlib.suppress(sa_exc.ProgrammingError):
                    conn.execute(sa_text("CHECKPOINT"))
        else:
            db.session.execute(sa_text("ANALYZE"))
            db.session.commit()
        return dossier.id, integration.id


def _populate_portfolio(organisation_id: int, rng: random.Random, now) -> None:
    """The rest of the cabinet's DOSSIERS dossiers, in the states a cabinet sees: most connected to one
    of the five software, some expired, some disconnected, some never connected, a few having changed
    software; each connected one with its six lists (a few failed) and about ten invoices."""
    from sqlalchemy import insert, select

    from webapp.extensions import db
    from webapp.models import Direction, Document, DocumentStatus, Dossier, Integration, ListKind, ListSync
    from webapp.models.lists import SyncStatus

    software = ["sandbox", "xero", "quickbooks", "pennylane", "sage"]
    count = max(0, DOSSIERS - 1)
    db.session.execute(
        insert(Dossier),
        [
            {
                "organisation_id": organisation_id,
                "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i:04d}",
                "siren": f"{rng.randint(100_000_000, 999_999_999)}",
                "warn_before_creating_supplier": False,
                "created_at": now,
            }
            for i in range(count)
        ],
    )
    db.session.commit()
    ids = list(
        db.session.scalars(
            select(Dossier.id).where(Dossier.organisation_id == organisation_id).order_by(Dossier.id.desc())
        )
    )[:count]
    integrations = []
    for n, dossier_id in enumerate(ids):
        state = n % 20
        if state in (0, 1):  # never connected
            continue
        status = "expired" if state in (2, 3) else "disconnected" if state == 4 else "connected"
        base = {
            "dossier_id": dossier_id,
            "company_id": f"cmp-{dossier_id}",
            "company_name": f"Société {dossier_id}",
            "status_since": now,
            "status_reason": "",
            "refresh_frequency": "nightly",
        }
        if state == 5:  # changed software: an old disconnected integration before the current one
            integrations.append(
                {**base, "software": "sage", "status": "disconnected", "created_at": now - timedelta(days=90)}
            )
        consent = now + timedelta(days=rng.randint(-3, 120)) if n % 3 == 0 else None
        integrations.append(
            {
                **base,
                "software": software[n % len(software)],
                "status": status,
                "created_at": now - timedelta(days=1),
                "consent_expires_at": consent,
            }
        )
    for start in range(0, len(integrations), 2_000):
        db.session.execute(insert(Integration), integrations[start : start + 2_000])
    db.session.commit()
    current = db.session.execute(
        select(Integration.id, Integration.dossier_id, Integration.status).where(
            Integration.dossier_id.in_(ids), Integration.created_at > now - timedelta(days=2)
        )
    ).all()
    syncs, documents = [], []
    statuses = list(DocumentStatus)
    for integration_id, dossier_id, status in current:
        if status.value == "disconnected":
            continue
        for kind in ListKind:
            failed = rng.random() < 0.01
            syncs.append(
                {
                    "integration_id": integration_id,
                    "kind": kind,
                    "status": SyncStatus.FAILED if failed else SyncStatus.SUCCEEDED,
                    "item_count": 40,
                    "active_count": 40,
                    "last_loaded_at": now - timedelta(minutes=rng.randint(1, 5_000)),
                    "last_error": "Le logiciel n'a pas répondu." if failed else "",
                    "last_counts": {},
                }
            )
        for i in range(rng.randint(0, 20)):
            ht = Decimal(rng.randint(1_000, 500_000)) / 100
            documents.append(
                {
                    "dossier_id": dossier_id,
                    "integration_id": integration_id,
                    "direction": Direction.PURCHASE,
                    "party_name": "EDF Entreprises",
                    "status": statuses[(i + dossier_id) % len(statuses)]
                    if i % 4
                    else DocumentStatus.PUBLISHED,
                    "number": f"P-{dossier_id}-{i}",
                    "issue_date": date(2026, 1, 1) + timedelta(days=i),
                    "amount_ht": ht,
                    "amount_tva": (ht * Decimal("0.2")).quantize(Decimal("0.01")),
                    "amount_ttc": (ht * Decimal("1.2")).quantize(Decimal("0.01")),
                    "currency": "EUR",
                    "idempotency_key": uuid.uuid4().hex,
                    "created_at": now - timedelta(minutes=i),
                }
            )
    for start in range(0, len(syncs), 5_000):
        db.session.execute(insert(ListSync), syncs[start : start + 5_000])
    for start in range(0, len(documents), 2_000):
        db.session.execute(insert(Document), documents[start : start + 2_000])
    db.session.commit()
    print(f"{len(ids) + 1} dossiers, {len(integrations)} intégrations, {len(documents)} factures de plus")


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (/proc/<pid>/stat), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _workers_of(master: int) -> list[int]:
    found = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in found.read_text().split()] if found.exists() else []


def _wrk(url: str, cookie: str, workers: list[int]) -> dict:
    wrk = shutil.which("wrk")
    assert wrk is not None
    script = Path(tempfile.mkdtemp(prefix="raccord-wrk-")) / "cookie.lua"
    script.write_text(f'wrk.headers["Cookie"] = "{cookie}"\n', encoding="utf-8")
    cpu_before = _cpu_seconds(workers)
    output = subprocess.run(
        [wrk, "-t", "2", "-c", str(CLIENTS), "-d", f"{DURATION}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = _cpu_seconds(workers) - cpu_before

    def millis(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return {
        "p50_ms": millis("50%"),
        "p99_ms": millis("99%"),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "cpu_ms_per_request": round(1000 * cpu / max(requests, 1), 3),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


def _serve(tree: Path, env: dict) -> subprocess.Popen:
    """gunicorn (2 workers) serving the code of `tree` on a free port (its address in `.base`)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"],
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server.base = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return server


def _print_table(title: str, results: dict) -> None:
    bare_rps = results["bare"]["rps"]
    print(f"\n{title}")
    print(f"{'page':<20} {'p50':>9} {'p99':>9} {'req/s':>9} {'/ bare':>7} {'CPU/req':>9}")
    for name, figures in results.items():
        figures["ratio_to_bare"] = round(figures["rps"] / bare_rps, 3)
        print(
            f"{name:<20} {figures['p50_ms']:>7.1f}ms {figures['p99_ms']:>7.1f}ms "
            f"{figures['rps']:>9.1f} {figures['ratio_to_bare']:>7.2f} {figures['cpu_ms_per_request']:>7.2f}ms"
            + (f"  (réponses non 2xx : {figures['non_2xx']})" if figures["non_2xx"] else "")
        )


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk est nécessaire : apt-get install wrk")
    instance = Path(tempfile.mkdtemp(prefix="raccord-bench-"))
    env = dict(os.environ)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("SECRET_KEY", "bench-secret-key-long-enough-for-the-config-check")
    env.update(RACCORD_INSTANCE_PATH=str(instance), JOB_QUEUE=f"raccord-bench-{uuid.uuid4().hex[:8]}")
    # The bench logs in many times over; the login limits are not what is measured.
    env.update(
        LOGIN_RATE_LIMIT="1000 per minute",
        LOGIN_IP_RATE_LIMIT="1000 per minute",
        LOGIN_ACCOUNT_RATE_LIMIT="1000 per minute",
    )
    os.environ.update(env)

    import requests
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from webapp import create_app

    schema = None
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql")):
        schema = f"raccord_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in database_url else "?"
        os.environ["DATABASE_URL"] = env["DATABASE_URL"] = (
            f"{database_url}{separator}options=-csearch_path%3D{schema}"
        )
    backend = "PostgreSQL" if schema else "SQLite"

    app = create_app()
    started = time.perf_counter()
    with app.app_context():
        upgrade(revision="heads")
    dossier_id, integration_id = _populate(app)
    print(
        f"{backend} : {SUPPLIERS} fournisseurs et {DOCUMENTS} documents créés en {time.perf_counter() - started:.1f} s"
    )

    from _shared import baseline_tree, remove_tree, wait_until_served

    trees = {f"base {BASELINE}": baseline_tree(BASELINE), "code": ROOT} if BASELINE else {"code": ROOT}
    servers = {code: _serve(tree, env) for code, tree in trees.items()}
    rounds: dict[str, dict[str, list[dict]]] = {code: {} for code in trees}
    try:
        for server in servers.values():
            wait_until_served(server.base)
        session = requests.Session()
        base = servers["code"].base
        page = session.get(f"{base}/login", timeout=10).text
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
        session.post(
            f"{base}/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token}, timeout=10
        )
        pages = {
            "bare": "/robots.txt",
            "integration": f"/dossiers/{dossier_id}/integrations/{integration_id}",
            "suppliers_search": f"/dossiers/{dossier_id}/listes/suppliers?q=martin",
            "documents": f"/dossiers/{dossier_id}/documents",
            "portfolio": "/dossiers",
            "portfolio_needs_me": "/dossiers?besoin=1&tri=echecs&ordre=desc",
        }
        if PAGES:
            pages = {name: path for name, path in pages.items() if name in PAGES or name == "bare"}
        for server in servers.values():  # each page is served once by each before being measured
            for name, path in pages.items():
                response = session.get(server.base + path, timeout=60)
                assert response.status_code == 200 and "/login" not in response.url, (name, response.url)
        # The cookie as a browser holds it after these pages (the first page after the login adds the
        # CSRF token to it): taken right after the login, every request would add it anew, and each
        # response would sign and send a new cookie that no browser would keep asking for.
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        for server in servers.values():
            for name, path in pages.items():
                response = requests.get(server.base + path, headers={"Cookie": cookie}, timeout=60)
                assert "Set-Cookie" not in response.headers, (name, response.headers["Set-Cookie"][:40])
        order = list(trees)
        for number in range(ROUNDS):
            for name, path in pages.items():
                # Turn by turn, the one measured first changing with each round.
                for code in order if number % 2 == 0 else order[::-1]:
                    server = servers[code]
                    rounds[code].setdefault(name, []).append(
                        _wrk(server.base + path, cookie, _workers_of(server.pid))
                    )
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
        for tree in trees.values():
            if tree != ROOT:
                remove_tree(tree)
        if schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        shutil.rmtree(instance, ignore_errors=True)

    measured = {}
    what = f"{CLIENTS} clients simultanés, {DURATION} s par page, gunicorn 2 workers, {backend}"
    if ROUNDS > 1:
        what += f", médiane de {ROUNDS} tours"
    for code, by_page in rounds.items():
        figures = {
            name: {
                key: statistics.median(each[key] for each in runs)
                for key in ("p50_ms", "p99_ms", "rps", "cpu_ms_per_request", "non_2xx")
            }
            | {"rps_each_round": [each["rps"] for each in runs]}
            for name, runs in by_page.items()
        }
        _print_table(f"{code} — {what}", figures)
        measured[code] = figures
    results = measured["code"]
    print(
        json.dumps(
            {
                "bench": "pages",
                "database": backend,
                "suppliers": SUPPLIERS,
                "documents": DOCUMENTS,
                "dossiers": DOSSIERS,
                "clients": CLIENTS,
                "duration_s": DURATION,
                "rounds": ROUNDS,
                "results": results,
                **(
                    {"baseline": BASELINE, "baseline_results": measured[f"base {BASELINE}"]}
                    if BASELINE
                    else {}
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
