"""Measure 'Actualiser les données de l'intégration' under each vendor's real rate limits, and how soon
a change made in the software reaches Raccord.

For one company with 50 000 suppliers (SIZE), reached through each vendor's dialect of the sandbox:
- free: the full refresh of the six lists by WORKERS forking RQ workers, the dialect counting the
  calls without refusing any and Raccord's budget out of the way: the time the work itself takes (T0)
  and the calls it needs (C);
- limited: the same with the dialect enforcing the vendor's documented limits and Raccord keeping its
  budget (the documented figures under VENDOR_LIMIT_MARGIN): wall time, calls, 429s received;
- the bound the limits set: with a window of N calls per W seconds, C calls cannot end before
  floor((C - 1) / N) * W seconds plus the time of the calls of the last window (T0 * r / C, r the
  calls left for it); the bound is the larger of that and T0, over the vendor's windows;
- changes only: K suppliers changed in the software (CHANGES, default 10 and 1 000), then what a
  changes-only refresh of the suppliers costs (calls) and takes;
- a change pushed by webhook (Xero, QuickBooks): a supplier added in the software, and the time until
  it is in Raccord's list, with one worker running; without a webhook (Pennylane, Sage) it waits for
  the next automatic refresh (hourly or nightly, the dossier's choice).
It prints a line per vendor, then one JSON line.

    .venv/bin/python bench/vendor_limits.py                       # SQLite in a temporary folder
    SIZE=10000 VENDORS=xero,pennylane .venv/bin/python bench/vendor_limits.py
    DATABASE_URL=postgresql://… .venv/bin/python bench/vendor_limits.py
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = int(os.environ.get("SIZE", "50000"))
VENDORS = os.environ.get("VENDORS", "xero,quickbooks,pennylane,sage").split(",")
WORKERS = int(os.environ.get("WORKERS", "4"))
CHANGES = [int(k) for k in os.environ.get("CHANGES", "10,1000").split(",")]
CONTROL_TOKEN = "bench-control-token-" + uuid.uuid4().hex
COMPANY = "cmp-bench-limits"
#: Out of the way, for the free run.
NO_BUDGET = {vendor: {"rates": [[1, 1_000_000]], "concurrency": 1000, "daily": None} for vendor in VENDORS}


def main() -> None:
    instance = Path(tempfile.mkdtemp(prefix="raccord-bench-"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["RACCORD_INSTANCE_PATH"] = str(instance)
    os.environ["JOB_QUEUE"] = f"raccord-bench-{uuid.uuid4().hex[:8]}"
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-long-enough-for-the-config-check")
    os.environ["SANDBOX_CONTROL_TOKEN"] = CONTROL_TOKEN

    import requests
    import sqlalchemy as sa
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from sandbox.dialects import tenant_guid
    from sandbox.dialects.pennylane import company_number
    from sandbox.dialects.quickbooks import realm_of
    from sandbox.limits import DEFAULTS
    from sandbox.models import SandboxCompany, SandboxItem
    from sandbox.seed import generate_items, seed_sandbox
    from webapp import create_app
    from webapp.connectors.base import TokenSet
    from webapp.extensions import db
    from webapp.models import Dossier, Integration, ListItem, ListKind, Organisation
    from webapp.sandbox_host import grant_tokens
    from webapp.services.integrations import store_tokens
    from webapp.services.jobs import get_redis
    from webapp.services.lists import start_refresh, start_refresh_all

    schema = None
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql")):
        schema = f"raccord_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in database_url else "?"
        os.environ["DATABASE_URL"] = f"{database_url}{separator}options=-csearch_path%3D{schema}"

    app = create_app()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    app.config["SANDBOX_BASE_URL"] = os.environ["SANDBOX_BASE_URL"] = f"{base_url}/sandbox"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    controls = requests.Session()
    controls.headers["Authorization"] = f"Bearer {CONTROL_TOKEN}"

    def control(method: str, path: str, body: dict | None = None) -> dict:
        response = controls.request(method, f"{base_url}/sandbox/controls/api{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    from webapp.connectors import pennylane, xero

    scopes = {
        "xero": xero.SCOPES,
        "quickbooks": "com.intuit.quickbooks.accounting",
        "pennylane": pennylane.SCOPES,
        "sage": "full_access",
    }
    company_ids = {
        "xero": tenant_guid(COMPANY),
        "quickbooks": realm_of(COMPANY),
        "pennylane": str(company_number(COMPANY)),
        "sage": tenant_guid(COMPANY),
    }
    extras = {
        "xero": {"tenant_id": tenant_guid(COMPANY)},
        "quickbooks": {"realm_id": realm_of(COMPANY)},
        "pennylane": {},
        "sage": {"business_id": tenant_guid(COMPANY)},
    }

    def make_old() -> None:
        """A list made long ago: a changes-only read (which looks back an hour before the last load)
        then finds only the changes made after this."""
        db.session.execute(
            sa.update(SandboxItem)
            .where(SandboxItem.company_id == COMPANY)
            .values(updated_at=datetime.now(UTC) - timedelta(hours=3))
        )
        db.session.commit()

    with app.app_context():
        upgrade(revision="heads")
        seed_sandbox(app.config["SANDBOX_CLIENT_ID"], app.config["SANDBOX_CLIENT_SECRET"])
        org = Organisation(name="Cabinet Bench")
        db.session.add(org)
        db.session.commit()
        db.session.add(SandboxCompany(id=COMPANY, name="Bench Limites", owner=None))
        db.session.commit()
        started = time.perf_counter()
        generate_items(COMPANY, "suppliers", SIZE)
        make_old()
        print(f"{SIZE} fournisseurs créés en {time.perf_counter() - started:.1f} s", flush=True)
        integrations: dict[str, int] = {}
        for vendor in VENDORS:
            access, refresh = grant_tokens(
                app, company_id=COMPANY, scope=scopes[vendor], access_ttl=86400, refresh_ttl=86400
            )
            dossier = Dossier(organisation_id=org.id, name=f"Dossier {vendor}")
            db.session.add(dossier)
            db.session.flush()
            integration = Integration(
                dossier_id=dossier.id, software=vendor, company_id=company_ids[vendor], company_name="Bench"
            )
            store_tokens(
                integration, TokenSet(access, refresh, time.time() + 86400, extra=dict(extras[vendor]))
            )
            db.session.add(integration)
            db.session.commit()
            integrations[vendor] = integration.id

    def workers(count: int, env: dict[str, str], *, burst: bool = True) -> list[subprocess.Popen]:
        argv = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"] + (["--burst"] if burst else [])
        return [
            subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            for _ in range(count)
        ]

    def worker_env(budget: dict | None) -> dict[str, str]:
        env = dict(os.environ)
        if budget is not None:
            env["VENDOR_LIMITS"] = json.dumps(budget)
        else:
            env.pop("VENDOR_LIMITS", None)
        return env

    def full_refresh(vendor: str, budget: dict | None) -> float:
        with app.app_context():
            start_refresh_all(db.session.get(Integration, integrations[vendor]), None)
        started = time.perf_counter()
        for process in workers(WORKERS, worker_env(budget)):
            _out, err = process.communicate(timeout=3600)
            assert process.returncode == 0, err[-3000:]
        return time.perf_counter() - started

    def vendor_counts(vendor: str) -> dict:
        seen = control("GET", "/limits")["counts"].get(vendor, {})
        total = {"accepted": 0, "refused": 0}
        for figures in seen.values():
            total["accepted"] += figures["accepted"]
            total["refused"] += figures["refused"]
        return total

    def suppliers_in_raccord(vendor: str) -> int:
        with app.app_context():
            return db.session.scalar(
                sa.select(sa.func.count()).where(
                    ListItem.integration_id == integrations[vendor], ListItem.kind == ListKind.SUPPLIERS
                )
            )

    results = []
    for vendor in VENDORS:
        # Free: counted, nothing refused, no budget.
        control("POST", "/limits", {"on": True, "observe_only": True})
        free_s = full_refresh(vendor, NO_BUDGET)
        calls = vendor_counts(vendor)["accepted"]
        assert suppliers_in_raccord(vendor) >= SIZE, suppliers_in_raccord(vendor)

        # Limited: the vendor's own figures in the dialect, Raccord's budget as configured.
        control("POST", "/limits", {"on": True})
        with app.app_context():
            get_redis().delete(*get_redis().keys("raccord:budget:*") or ["-"])
        limited_s = full_refresh(vendor, None)
        limited = vendor_counts(vendor)

        bound_s = free_s
        for name, figure in DEFAULTS[vendor].items():
            if not isinstance(figure, dict) or name.startswith("app_") or figure["seconds"] >= 86400:
                continue
            n, w = figure["calls"], figure["seconds"]
            full_windows = (calls - 1) // n
            left = calls - full_windows * n
            bound_s = max(bound_s, full_windows * w + free_s * left / calls)

        # Changes only: K suppliers changed upstream, then a changes-only refresh of the suppliers.
        # (The other vendors' turns changed the same company: all of it is made old again first.)
        changes = []
        control("POST", "/limits", {"on": True, "observe_only": True})
        with app.app_context():
            make_old()
        for k in CHANGES:
            for index in range(1, k + 1):
                control(
                    "POST",
                    f"/companies/{COMPANY}/items/sup-g{index:07d}",
                    {"name": f"Fournisseur modifié {index} {k}"},
                )
            time.sleep(1.1)  # the changes' times, past the last load's second
            before = vendor_counts(vendor)["accepted"]
            with app.app_context():
                start_refresh(
                    db.session.get(Integration, integrations[vendor]),
                    ListKind.SUPPLIERS,
                    None,
                    changes_only=True,
                )
            started = time.perf_counter()
            for process in workers(1, worker_env(None)):
                process.communicate(timeout=600)
            changes.append(
                {
                    "changed": k,
                    "calls": vendor_counts(vendor)["accepted"] - before,
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )

        # A change pushed by webhook, with one worker waiting.
        pushed_s = None
        if vendor in ("xero", "quickbooks"):
            waiting = workers(1, worker_env(None), burst=False)
            try:
                name = f"Nouveau fournisseur {uuid.uuid4().hex[:6]}"
                started = time.perf_counter()
                control("POST", f"/companies/{COMPANY}/suppliers", {"name": name})
                while time.perf_counter() - started < 60:
                    with app.app_context():
                        found = db.session.scalar(
                            sa.select(ListItem.id).where(
                                ListItem.integration_id == integrations[vendor], ListItem.name == name
                            )
                        )
                    if found:
                        pushed_s = round(time.perf_counter() - started, 2)
                        break
                    time.sleep(0.1)
            finally:
                for process in waiting:
                    process.terminate()
                    process.wait(timeout=30)

        result = {
            "vendor": vendor,
            "calls": calls,
            "free_s": round(free_s, 1),
            "limited_s": round(limited_s, 1),
            "bound_s": round(bound_s, 1),
            "ratio_to_bound": round(limited_s / bound_s, 2),
            "calls_limited": limited["accepted"],
            "429_received": limited["refused"],
            "changes_only": changes,
            "webhook_to_raccord_s": pushed_s,
        }
        results.append(result)
        print(
            f"{vendor:>10} : {calls} appels ; libre {result['free_s']} s, sous les limites {result['limited_s']} s, "
            f"borne {result['bound_s']} s (rapport {result['ratio_to_bound']}), 429 reçus {result['429_received']} ; "
            + " ; ".join(
                f"{c['changed']} changements : {c['calls']} appels en {c['seconds']} s" for c in changes
            )
            + (
                f" ; par webhook en {pushed_s} s"
                if pushed_s is not None
                else " ; sans webhook : prochaine actualisation"
            )
            + "",
            flush=True,
        )

    server.shutdown()
    if schema:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(
        json.dumps(
            {
                "database": app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0],
                "size": SIZE,
                "workers": WORKERS,
                "margin": app.config["VENDOR_LIMIT_MARGIN"],
                "results": results,
                "worst_ratio": max(r["ratio_to_bound"] for r in results),
                "total_429": sum(r["429_received"] for r in results),
            }
        )
    )


if __name__ == "__main__":
    main()
