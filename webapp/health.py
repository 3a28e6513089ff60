"""GET /healthz: is this web process able to serve? The database and Redis are both asked.
GET /robots.txt: a constant page (nothing here is for search engines; bench/pages.py compares to it).
GET /metrics: the operators' figures for Prometheus (webapp/metrics.py), for staff or the scraper's token."""

from __future__ import annotations

import hmac
import logging
import time

import redis
from flask import Blueprint, Response, abort, current_app, jsonify, request
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.extensions import db
from webapp.services.jobs import get_redis

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def _timed(check) -> dict[str, object]:
    started = time.perf_counter()
    try:
        check()
    except (SQLAlchemyError, redis.exceptions.RedisError, OSError) as exc:
        # The kind of failure only: a connection string may carry a password.
        log.warning("Health check failed: %s", type(exc).__name__)
        db.session.rollback()
        return {"status": "indisponible", "error": type(exc).__name__}
    return {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 1)}


@bp.get("/healthz")
def healthz():
    checks = {
        "database": _timed(lambda: db.session.execute(text("SELECT 1"))),
        "redis": _timed(lambda: get_redis().ping()),
    }
    healthy = all(check["status"] == "ok" for check in checks.values())
    response = jsonify({"status": "ok" if healthy else "indisponible", "checks": checks})
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


ROBOTS = "User-agent: *\nDisallow: /\n"


@bp.get("/robots.txt")
def robots():
    return Response(ROBOTS, mimetype="text/plain")


def _may_read_metrics() -> bool:
    """Staff signed in, or Prometheus with METRICS_TOKEN as its bearer token (compared in constant time)."""
    token = current_app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].encode(), token.encode())
    return bool(current_user.is_authenticated and current_user.is_staff)


@bp.get("/metrics")
def metrics():
    """For operators only: anyone else is told there is nothing here."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from webapp.metrics import exposition

    if not _may_read_metrics():
        abort(404)
    try:
        body = exposition([current_app.config["JOB_QUEUE"]])
    except redis.exceptions.RedisError as exc:
        log.warning("Metrics unavailable: %s", type(exc).__name__)
        return Response("# Redis indisponible\n", status=503, mimetype="text/plain")
    # CONTENT_TYPE_LATEST carries its charset: given as mimetype, Werkzeug would add a second one,
    # which Prometheus 3 refuses.
    response = Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})
    response.headers["Cache-Control"] = "no-store"
    return response
