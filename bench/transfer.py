"""Measure 'Transférer les règles': 10 000 rules against new lists of 50 000 suppliers and 2 000 accounts.

- the transfer: the job's work (webapp.services.transfer.transfer), placement and writing included;
- the bound: reading the same rules (with the items they point to) and the same new lists, in one
  query each, with no matching and no writing.
It prints both times and their ratio, then one JSON line (seconds, bound_seconds, ratio_to_bound).

    .venv/bin/python bench/transfer.py                  # SQLite in a temporary folder
    DATABASE_URL=postgresql://… .venv/bin/python bench/transfer.py
RULES=…, SUPPLIERS=…, ACCOUNTS=… change the sizes; PROFILE=cumulative (or tottime) prints where the
transfer spends its time (its figure then includes the profiler's cost).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RULES = int(os.environ.get("RULES", "10000"))
SUPPLIERS = int(os.environ.get("SUPPLIERS", "50000"))
ACCOUNTS = int(os.environ.get("ACCOUNTS", "2000"))


def main() -> None:
    instance = Path(tempfile.mkdtemp(prefix="raccord-bench-"))
    os.environ["RACCORD_INSTANCE_PATH"] = str(instance)
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-long-enough-for-the-config-check")

    import sqlalchemy as sa
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import (
        Dossier,
        Integration,
        IntegrationStatus,
        ListItem,
        ListKind,
        Organisation,
        PartyKind,
        Rule,
        RuleTransfer,
    )
    from webapp.services.transfer import transfer

    schema = None
    database_url = os.environ.get("DATABASE_URL", "")
    overrides = {}
    if database_url.startswith(("postgres://", "postgresql")):
        schema = f"raccord_bench_{uuid.uuid4().hex[:8]}"
        url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        admin = sa.create_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        overrides = {
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": f"-csearch_path={schema}"}},
        }
    app = create_app({"TESTING": True, **overrides})
    try:
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"), revision="heads")
            org = Organisation(name="Cabinet du banc d'essai")
            db.session.add(org)
            db.session.flush()
            dossier = Dossier(organisation_id=org.id, name="Société mesurée")
            db.session.add(dossier)
            db.session.flush()
            old = Integration(
                dossier_id=dossier.id,
                software="sandbox",
                company_id="old",
                company_name="Ancienne",
                status=IntegrationStatus.DISCONNECTED,
            )
            new = Integration(
                dossier_id=dossier.id, software="xero", company_id="new", company_name="Nouvelle"
            )
            db.session.add_all([old, new])
            db.session.commit()

            def rows(integration_id, kind, count, make):
                return [
                    {
                        "integration_id": integration_id,
                        "kind": kind,
                        "active": True,
                        "visible": True,
                        "extras": {},
                        **make(i),
                    }
                    for i in range(count)
                ]

            insert = sa.insert(ListItem)
            # The new software: 50 000 suppliers (the old 10 000 among them, found by VAT number, SIREN
            # or name in turn), 2 000 accounts (a third with another zero padding), the tax rates.
            db.session.execute(
                insert,
                rows(
                    new.id,
                    ListKind.SUPPLIERS,
                    SUPPLIERS,
                    lambda i: {
                        "external_id": f"n-{i}",
                        "name": f"Fournisseur {i} SARL",
                        "vat_number": f"FR00{i:09d}" if i % 3 == 0 else None,
                        "siren": f"{i:09d}" if i % 3 == 1 else None,
                    },
                ),
            )
            db.session.execute(
                insert,
                rows(
                    new.id,
                    ListKind.ACCOUNTS,
                    ACCOUNTS,
                    lambda i: {
                        "external_id": f"na-{i}",
                        "name": f"Compte {i}",
                        "code": f"6{i:04d}" + ("00" if i % 3 else ""),
                    },
                ),
            )
            db.session.execute(
                insert,
                rows(
                    new.id,
                    ListKind.TAX_RATES,
                    3,
                    lambda i: {
                        "external_id": f"nt-{i}",
                        "name": f"TVA {(20, 10, 5.5)[i]} %",
                        "rate": str((20, 10, 5.5)[i]),
                    },
                ),
            )
            db.session.execute(
                insert,
                rows(
                    old.id,
                    ListKind.SUPPLIERS,
                    RULES,
                    lambda i: {
                        "external_id": f"o-{i}",
                        "name": f"FOURNISSEUR {i} SAS",
                        "vat_number": f"FR00{i:09d}" if i % 3 == 0 else None,
                        "siren": f"{i:09d}" if i % 3 == 1 else None,
                    },
                ),
            )
            db.session.execute(
                insert,
                rows(
                    old.id,
                    ListKind.ACCOUNTS,
                    ACCOUNTS,
                    lambda i: {"external_id": f"oa-{i}", "name": f"Compte {i}", "code": f"6{i:04d}00"},
                ),
            )
            db.session.execute(
                insert,
                rows(
                    old.id,
                    ListKind.TAX_RATES,
                    3,
                    lambda i: {"external_id": f"ot-{i}", "name": f"Taux {i}", "rate": str((20, 10, 5.5)[i])},
                ),
            )
            db.session.commit()
            ids = dict(
                db.session.execute(
                    sa.select(ListItem.external_id, ListItem.id).where(ListItem.integration_id == old.id)
                ).all()
            )
            db.session.execute(
                sa.insert(Rule),
                [
                    {
                        "dossier_id": dossier.id,
                        "integration_id": old.id,
                        "party_kind": PartyKind.SUPPLIER,
                        "party_id": ids[f"o-{i}"],
                        "account_id": ids[f"oa-{i % ACCOUNTS}"],
                        "tax_rate_id": ids[f"ot-{i % 3}"],
                        "currency": "EUR",
                        "description": "",
                        "due_days": 30,
                        "reverse_charge": False,
                        "auto_publish": False,
                    }
                    for i in range(RULES)
                ],
            )
            run = RuleTransfer(dossier_id=dossier.id, target_integration_id=new.id, status="ready")
            db.session.add(run)
            db.session.commit()
            run_id, old_id, new_id = run.id, old.id, new.id

        with app.app_context():
            started = time.perf_counter()
            item = ListItem.__table__
            rule = Rule.__table__
            joined = rule.join(item, rule.c.party_id == item.c.id)
            list(
                db.session.execute(
                    sa.select(rule, item).select_from(joined).where(rule.c.integration_id == old_id)
                )
            )
            list(db.session.execute(sa.select(item).where(item.c.integration_id == new_id)))
            bound = time.perf_counter() - started
            db.session.remove()

        with app.app_context():
            started = time.perf_counter()
            if os.environ.get("PROFILE"):
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                report = profiler.runcall(transfer, run_id)
                seconds = time.perf_counter() - started
                pstats.Stats(profiler).sort_stats(os.environ["PROFILE"]).print_stats(35)
            else:
                report = transfer(run_id)
                seconds = time.perf_counter() - started
            transferred = len(report["whole"]) + len(report["partial"])
            assert transferred == RULES, f"{transferred} of {RULES} rules transferred"
    finally:
        if schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    engine = "PostgreSQL" if schema else "SQLite"
    print(f"{engine}: {RULES} règles, {SUPPLIERS} fournisseurs, {ACCOUNTS} comptes")
    print(f"  transfert : {seconds:.2f} s ; borne (lecture des mêmes règles et listes) : {bound:.2f} s")
    print(f"  rapport : {seconds / bound:.2f}")
    print(
        json.dumps(
            {
                "engine": engine,
                "rules": RULES,
                "suppliers": SUPPLIERS,
                "accounts": ACCOUNTS,
                "seconds": round(seconds, 2),
                "bound_seconds": round(bound, 2),
                "ratio_to_bound": round(seconds / bound, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
