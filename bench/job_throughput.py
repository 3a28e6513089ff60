"""Jobs at scale: 1 000 dossiers refreshed at once by 1 worker, then by 4, against the sandbox.

Each dossier is connected to a sandbox company of its own with the demo lists (about 150 items over
the six lists) and the refresh of all its lists ('Actualiser les données de l'intégration': six
jobs) is queued for every dossier at once; then N real `flask worker --burst` processes (forking,
as in production) drain the queue. The sandbox is served by gunicorn on the same machine. It prints
dossiers per minute for 1 and 4 workers, the ratio (4 would be linear), then one JSON line.

    DATABASE_URL=postgresql://… .venv/bin/python bench/job_throughput.py    # the production setting
    .venv/bin/python bench/job_throughput.py                                  # SQLite (one writer at a time)
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). DOSSIERS=… WORKERS=1,4 change the defaults.
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

DOSSIERS = int(os.environ.get("DOSSIERS", "1000"))
WORKER_COUNTS = [int(n) for n in os.environ.get("WORKERS", "1,4").split(",")]


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
            store_tokens(integration, TokenSet(access, None, time.time() + 86400))
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
    batches = {n: _make_dossiers(app, org_id, f"w{n}", DOSSIERS) for n in WORKER_COUNTS}
    print(
        f"{backend} : {DOSSIERS * len(WORKER_COUNTS)} dossiers préparés en {time.perf_counter() - prepared:.0f} s"
    )

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
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/robots.txt", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        results = []
        for workers in WORKER_COUNTS:
            result = _round(app, env, batches[workers], workers)
            results.append(result)
            print(
                f"{workers} worker(s) : {result['dossiers']} dossiers ({result['jobs']} tâches) en "
                f"{result['seconds']} s, {result['dossiers_per_min']} dossiers/min"
            )
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
        if schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        shutil.rmtree(instance, ignore_errors=True)

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
            }
        )
    )


if __name__ == "__main__":
    main()
