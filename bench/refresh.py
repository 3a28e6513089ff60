"""Measure 'Recharger la liste' on large supplier lists, against a bound measured in the same run.

For 10 000, 50 000 and 200 000 suppliers in the sandbox software, served over HTTP:
- the refresh: one `refresh_list` job run by a real forking RQ worker process (fetch, stage, merge);
- the bound: the same pages fetched over HTTP and inserted with one bulk insert per page, no ORM.
It prints items per second, the ratio to the bound, the work horse's peak memory, then one JSON line.

    .venv/bin/python bench/refresh.py                  # SQLite in a temporary folder
    DATABASE_URL=postgresql://… .venv/bin/python bench/refresh.py
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). SIZES=10000,50000 to choose the sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = [int(s) for s in os.environ.get("SIZES", "10000,50000,200000").split(",")]
PAGE_SIZE = int(os.environ.get("LIST_PAGE_SIZE", "500"))


def main() -> None:
    instance = Path(tempfile.mkdtemp(prefix="raccord-bench-"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["RACCORD_INSTANCE_PATH"] = str(instance)
    os.environ["JOB_QUEUE"] = f"raccord-bench-{uuid.uuid4().hex[:8]}"
    os.environ["LIST_PAGE_SIZE"] = str(PAGE_SIZE)
    # The read itself is measured, not Compta Démo's call budget (600 a minute by default).
    os.environ.setdefault("VENDOR_LIMITS", '{"sandbox": {"rates": [[1, 1000]], "concurrency": 10}}')
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-long-enough-for-the-config-check")

    import requests
    import sqlalchemy as sa
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from sandbox.models import SandboxCompany
    from sandbox.oauth import issue_tokens
    from sandbox.seed import generate_items, seed_sandbox
    from webapp import create_app
    from webapp.connectors.base import TokenSet
    from webapp.extensions import db
    from webapp.models import Dossier, Integration, JobRun, ListKind, Organisation
    from webapp.services.integrations import store_tokens
    from webapp.services.lists import start_refresh

    schema = None
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql")):
        # A schema of its own, dropped at the end: the bench never touches other data.
        schema = f"raccord_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in database_url else "?"
        os.environ["DATABASE_URL"] = f"{database_url}{separator}options=-csearch_path%3D{schema}"

    app = create_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    app.config["SANDBOX_BASE_URL"] = os.environ["SANDBOX_BASE_URL"] = f"{base_url}/sandbox"
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()

    with app.app_context():
        upgrade(revision="heads")
        seed_sandbox(app.config["SANDBOX_CLIENT_ID"], app.config["SANDBOX_CLIENT_SECRET"])
        org = Organisation(name="Cabinet Bench")
        db.session.add(org)
        db.session.commit()
        org_id = org.id

    results = []
    for size in SIZES:
        company_id = f"cmp-bench-{size}"
        with app.app_context():
            db.session.add(SandboxCompany(id=company_id, name=f"Bench {size}"))
            db.session.commit()
            generate_items(company_id, "suppliers", size)
            access_token, _refresh = issue_tokens(
                client_id=app.config["SANDBOX_CLIENT_ID"],
                company_id=company_id,
                scope="lists invoices",
                access_ttl=86400,
                refresh_ttl=86400,
            )
            dossier = Dossier(organisation_id=org_id, name=f"Dossier {size}")
            db.session.add(dossier)
            db.session.flush()
            integration = Integration(
                dossier_id=dossier.id, software="sandbox", company_id=company_id, company_name=f"Bench {size}"
            )
            store_tokens(integration, TokenSet(access_token, None, time.time() + 86400))
            db.session.add(integration)
            db.session.commit()

            # The bound: the same pages over HTTP, one bulk insert per page into a plain table.
            scratch = sa.Table(
                f"bench_bound_{size}",
                sa.MetaData(),
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("external_id", sa.String(120)),
                sa.Column("code", sa.String(60)),
                sa.Column("name", sa.String(300)),
                sa.Column("vat_number", sa.String(40)),
                sa.Column("siren", sa.String(9)),
                sa.Column("active", sa.Boolean),
            )
            scratch.create(db.engine)
            http = requests.Session()
            bound_start = time.perf_counter()
            cursor, fetched = None, 0
            with db.engine.begin() as conn:
                while True:
                    params = {"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
                    body = http.get(
                        f"{base_url}/sandbox/api/v1/suppliers",
                        params=params,
                        headers={"Authorization": f"Bearer {access_token}"},
                        timeout=60,
                    ).json()
                    rows = [
                        {
                            "external_id": i["id"],
                            "code": i["code"],
                            "name": i["name"],
                            "vat_number": i["vat_number"],
                            "siren": i["siren"],
                            "active": i["status"] == "active",
                        }
                        for i in body["items"]
                    ]
                    if rows:
                        conn.execute(scratch.insert(), rows)
                    fetched += len(rows)
                    cursor = body["next_cursor"]
                    if not cursor:
                        break
            bound_seconds = time.perf_counter() - bound_start
            assert fetched == size, (fetched, size)

            if os.environ.get("PROFILE"):
                import cProfile
                import pstats

                from webapp.services.lists import run_refresh

                profiler = cProfile.Profile()
                profiler.runcall(run_refresh, integration.id, ListKind.SUPPLIERS, "profile")
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
                continue
            run = start_refresh(integration, ListKind.SUPPLIERS, None)
            run_id = run.id

        worker = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "_worker.py")],
            cwd=ROOT,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            check=True,
        )
        memory = json.loads(worker.stdout.strip().splitlines()[-1])
        with app.app_context():
            run = db.session.get(JobRun, run_id)
            assert run.status.value == "succeeded", run.message
            refresh_seconds = (run.ended_at - run.started_at).total_seconds()
            from sqlalchemy import select

            from webapp.models import Event

            phases = db.session.scalar(select(Event.details).where(Event.job_run_id == run_id))
        result = {
            "size": size,
            "items_per_s": round(size / refresh_seconds),
            "refresh_s": round(refresh_seconds, 2),
            "bound_s": round(bound_seconds, 2),
            "bound_items_per_s": round(size / bound_seconds),
            "ratio_to_bound": round(refresh_seconds / bound_seconds, 2),
            "peak_mb": round(memory["horse_peak_mb"], 1),
            "fetch_s": phases.get("fetch_s"),
            "merge_s": phases.get("merge_s"),
        }
        results.append(result)
        print(
            f"{size:>7} fournisseurs : {result['items_per_s']:>6} él./s en {result['refresh_s']} s, "
            f"borne {result['bound_items_per_s']} él./s en {result['bound_s']} s, "
            f"rapport {result['ratio_to_bound']} (lecture {result['fetch_s']} s, fusion {result['merge_s']} s), "
            f"mémoire de pointe du worker {result['peak_mb']} Mo",
            flush=True,
        )

    server.shutdown()
    if schema:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    flat = round(max(r["peak_mb"] for r in results) - min(r["peak_mb"] for r in results), 1)
    print(
        json.dumps(
            {
                "database": app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0],
                "page_size": PAGE_SIZE,
                "results": results,
                "peak_mb_spread": flat,
            }
        )
    )


if __name__ == "__main__":
    main()
