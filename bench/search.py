"""Search latency on a dossier with 200 000 suppliers: the list page and the rule picker, one user.

The suppliers are those of bench/pages.py ('Garage Martin 1234', two words of 23, then a number).
Each search is asked REPEAT times through the app (routing, query, template) after one warm-up
request; it prints the median and the slowest, then one JSON line.

    .venv/bin/python bench/search.py                   # SQLite in a temporary folder
    DATABASE_URL=postgresql://… .venv/bin/python bench/search.py
Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). SUPPLIERS=… REPEAT=… change the defaults.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DOCUMENTS", "0")

REPEAT = int(os.environ.get("REPEAT", "20"))

SEARCHES = {
    # ~8 % of the list: the page stops at the count cap.
    "common word": "martin",
    # One supplier.
    "rare word": "187654",
    # Two words, in the other order than the names have them.
    "two words": "martin garage",
    # No supplier at all: the whole list is read.
    "no match": "zzzz",
}


def _timed(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def main() -> None:
    instance = Path(tempfile.mkdtemp(prefix="raccord-bench-"))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-long-enough-for-the-config-check")
    os.environ.update(RACCORD_INSTANCE_PATH=str(instance), JOB_QUEUE=f"raccord-bench-{uuid.uuid4().hex[:8]}")
    os.environ.update(LOGIN_RATE_LIMIT="1000 per minute", LOGIN_IP_RATE_LIMIT="1000 per minute")

    import sqlalchemy as sa
    from flask_migrate import upgrade

    from bench.pages import EMAIL, PASSWORD, SUPPLIERS, _populate
    from webapp import create_app

    schema = None
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql")):
        schema = f"raccord_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in database_url else "?"
        os.environ["DATABASE_URL"] = f"{database_url}{separator}options=-csearch_path%3D{schema}"
    backend = "PostgreSQL" if schema else "SQLite"

    app = create_app()
    app.config["WTF_CSRF_ENABLED"] = False
    started = time.perf_counter()
    with app.app_context():
        upgrade(revision="heads")
    dossier_id, _integration_id = _populate(app)
    print(f"{backend} : {SUPPLIERS} fournisseurs créés en {time.perf_counter() - started:.1f} s", flush=True)

    results: dict[str, dict] = {}
    try:
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page)
        client.post(
            "/login",
            data={"email": EMAIL, "password": PASSWORD, **({"csrf_token": token.group(1)} if token else {})},
        )
        for label, query in SEARCHES.items():
            q = quote(query)
            results[f"list: {label}"] = _timed(client, f"/dossiers/{dossier_id}/listes/suppliers?q={q}")
            results[f"picker: {label}"] = _timed(
                client, f"/dossiers/{dossier_id}/regles/fournisseurs/tiers?q={q}"
            )
            print(
                f"{label:<12} « {query} » liste {results[f'list: {label}']}, "
                f"sélecteur {results[f'picker: {label}']}",
                flush=True,
            )
    finally:
        if schema:
            with app.app_context():
                from webapp.extensions import db

                db.session.remove()
                db.engine.dispose()
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        shutil.rmtree(instance, ignore_errors=True)
    print(json.dumps({"bench": "search", "database": backend, "suppliers": SUPPLIERS, "results": results}))


if __name__ == "__main__":
    main()
