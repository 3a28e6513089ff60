"""GET /healthz: the database and Redis, each asked; 503 with which one when either fails."""

from __future__ import annotations

import redis


def test_healthz_answers_ok_with_both_checks_and_needs_no_login(job_app):
    response = job_app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok" and body["checks"]["redis"]["status"] == "ok"
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_says_which_part_is_down_without_its_address(job_app, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise redis.exceptions.ConnectionError("Error 111 connecting to redis://:secret@10.0.0.5:6379")

    monkeypatch.setattr("redis.Redis.ping", refuse)
    response = job_app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "indisponible"
    assert body["checks"]["redis"] == {"status": "indisponible", "error": "ConnectionError"}
    assert body["checks"]["database"]["status"] == "ok"
    assert "secret" not in response.get_data(as_text=True)


def test_robots_txt_keeps_every_page_out_of_search_engines(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "User-agent: *\nDisallow: /\n"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
