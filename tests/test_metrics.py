"""/metrics: the operators' figures, added up across processes in Redis, for staff or the scraper's token."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import redis

from tests.conftest import login
from tests.factories import make_organisation, make_user
from webapp import metrics
from webapp.extensions import db
from webapp.models.people import Role

SCRAPER_TOKEN = "s" * 40


def _value(body: str, name: str, **labels: str) -> float | None:
    """The sample of `name` with exactly these labels in Prometheus' text format."""
    for line in body.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[line.index("{") : line.index("}")]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return None


def _people(app):
    with app.app_context():
        organisation = make_organisation()
        make_user(organisation, email="staff@raccord.test", password="support-solide", role=Role.STAFF)
        make_user(organisation, email="compta@cabinet.test", password="compta-solide")
        db.session.remove()


def test_metrics_are_for_operators_only(job_app):
    job_app.config["METRICS_TOKEN"] = SCRAPER_TOKEN
    _people(job_app)
    anonymous = job_app.test_client()
    assert anonymous.get("/metrics").status_code == 404
    assert anonymous.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40}).status_code == 404

    bookkeeper = job_app.test_client()
    login(bookkeeper, "compta@cabinet.test", "compta-solide")
    assert bookkeeper.get("/metrics").status_code == 404

    scraper = job_app.test_client().get("/metrics", headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"})
    assert scraper.status_code == 200 and scraper.mimetype == "text/plain"
    # Exactly prometheus-client's type: Prometheus 3 refuses a parameter given twice.
    assert scraper.headers["Content-Type"].count("charset") == 1
    assert scraper.headers["Cache-Control"] == "no-store"

    staff = job_app.test_client()
    login(staff, "staff@raccord.test", "support-solide")
    response = staff.get("/metrics")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    for family in (
        "raccord_vendor_calls",
        "raccord_vendor_rate_limited",
        "raccord_budget_waits",
        "raccord_webhook_deliveries",
        "raccord_list_refresh_seconds",
        "raccord_jobs",
    ):
        assert f"# TYPE {family}" in body, family


def test_figures_recorded_by_other_processes_add_up(job_app, redis_url):
    """A worker on another machine counts into the same figures: here, two other processes."""
    script = "\n".join(
        (
            "import json, os, sys",
            "from webapp import create_app, metrics",
            "app = create_app(json.loads(sys.argv[1]))",
            "with app.app_context():",
            "    metrics.inc('raccord_vendor_calls', vendor='xero', outcome='ok')",
            "    metrics.inc('raccord_vendor_calls', vendor='xero', outcome='ok')",
            "    labels = dict(vendor='xero', list='suppliers', mode='full')",
            "    metrics.observe('raccord_list_refresh_seconds', 3.0, **labels)",
        )
    )
    config = {
        "TESTING": True,
        "SECRET_KEY": "x" * 40,
        "REDIS_URL": redis_url,
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "TOKEN_ENCRYPTION_KEYS": job_app.config["TOKEN_ENCRYPTION_KEYS"],
    }
    connection = redis.Redis.from_url(redis_url)
    for key in connection.scan_iter(metrics.PREFIX + "*"):  # this process's database: its own figures only
        connection.delete(key)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script, json.dumps(config)], check=True, timeout=60)
    with job_app.app_context():
        metrics.inc("raccord_vendor_calls", vendor="xero", outcome="rate_limited")
        body = metrics.exposition([job_app.config["JOB_QUEUE"]]).decode()
    assert _value(body, "raccord_vendor_calls_total", vendor="xero", outcome="ok") == 4.0
    assert _value(body, "raccord_vendor_calls_total", vendor="xero", outcome="rate_limited") == 1.0
    labels = {"vendor": "xero", "list": "suppliers", "mode": "full"}
    assert _value(body, "raccord_list_refresh_seconds_count", **labels) == 2.0
    assert _value(body, "raccord_list_refresh_seconds_sum", **labels) == 6.0
    assert _value(body, "raccord_list_refresh_seconds_bucket", **labels, le="2.0") == 0.0
    assert _value(body, "raccord_list_refresh_seconds_bucket", **labels, le="5.0") == 2.0
    assert _value(body, "raccord_jobs", queue=job_app.config["JOB_QUEUE"], state="queued") == 0.0


def test_a_redis_that_does_not_answer_loses_the_figure_not_the_work(app):
    """Without Redis (the app here has none configured), recording does nothing and raises nothing."""
    with app.app_context():
        metrics.inc("raccord_vendor_calls", vendor="xero", outcome="ok")
        metrics.observe("raccord_list_refresh_seconds", 1.0, vendor="xero", list="suppliers", mode="full")
