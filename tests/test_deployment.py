"""What compose.yaml and the Dockerfile ask for exists: commands, settings, files, the health check."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import ROOT
from webapp.config import load_config

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
APP_SERVICES = ("migrate", "web", "worker", "scheduler")


def test_compose_runs_web_worker_scheduler_redis_and_postgresql():
    services = COMPOSE["services"]
    assert set(services) == {*APP_SERVICES, "db", "redis"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["web"]["command"][0] == "gunicorn"
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("web", "worker", "scheduler"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_every_app_service_runs_a_command_the_app_has(app):
    from flask.cli import FlaskGroup, ScriptInfo

    group = FlaskGroup(create_app=lambda: app)
    context = group.make_context("flask", [], resilient_parsing=True, obj=ScriptInfo(create_app=lambda: app))
    known = set(group.list_commands(context))
    for name in APP_SERVICES:
        command = COMPOSE["services"][name]["command"]
        if command[0] == "flask":
            assert command[1] in known, (name, command)
    assert {"db", "worker", "scheduler"} <= known


def test_the_compose_environment_is_a_valid_production_configuration(tmp_path: Path):
    environment = dict(COMPOSE["services"]["web"]["environment"])
    secret = tmp_path / "secret_key"
    secret.write_text("x" * 48)
    token_key = tmp_path / "token_key"
    from cryptography.fernet import Fernet

    token_key.write_text(Fernet.generate_key().decode())
    environment["SECRET_KEY_FILE"] = str(secret)
    environment["TOKEN_ENCRYPTION_KEY_FILE"] = str(token_key)
    config = load_config(environment, tmp_path)
    assert config["RACCORD_ENV"] == "production"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://raccord@db:5432/raccord"
    assert config["SANDBOX_ENABLED"] is False


def test_the_image_copies_what_the_app_needs():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for needed in ("webapp", "jobs", "templates", "static", "migrations", "wsgi.py", "pyproject.toml"):
        assert f"COPY {needed}" in dockerfile or f" {needed} " in dockerfile, needed
    assert "USER raccord" in dockerfile
