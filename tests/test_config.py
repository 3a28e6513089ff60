"""Settings are parsed strictly from the environment, with clear French errors."""

from __future__ import annotations

import pytest

from webapp.config import ConfigError, load_config

PROD = {
    "RACCORD_ENV": "production",
    "SECRET_KEY": "x" * 40,
    "DATABASE_URL": "postgres://raccord@db/raccord",
    "REDIS_URL": "redis://redis:6379/0",
    "TOKEN_ENCRYPTION_KEY": "kq0kHj1bBv0c4QnQW2vM0QzXo8p8dJvS7bq9v2p6bWk=",
}


def test_local_defaults_need_nothing(tmp_path):
    config = load_config({}, tmp_path)
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'raccord.db'}"
    assert config["REDIS_URL"] is None
    assert config["SESSION_COOKIE_SECURE"] is False
    assert len(config["SECRET_KEY"]) >= 32
    assert load_config({}, tmp_path)["SECRET_KEY"] == config["SECRET_KEY"]  # kept across restarts
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert config["SANDBOX_ENABLED"] is True
    assert load_config({}, tmp_path)["TOKEN_ENCRYPTION_KEYS"] == config["TOKEN_ENCRYPTION_KEYS"]
    assert (tmp_path / "token_key").stat().st_mode & 0o077 == 0


def test_production_settings(tmp_path):
    config = load_config(PROD, tmp_path)
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://raccord@db/raccord"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0"
    assert config["SANDBOX_ENABLED"] is False
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "token_key").exists()


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("SECRET_KEY", "SECRET_KEY (ou SECRET_KEY_FILE) est obligatoire en production."),
        ("DATABASE_URL", "DATABASE_URL est obligatoire en production"),
        ("REDIS_URL", "REDIS_URL est obligatoire en production"),
        (
            "TOKEN_ENCRYPTION_KEY",
            "TOKEN_ENCRYPTION_KEY (ou TOKEN_ENCRYPTION_KEY_FILE) est obligatoire en production.",
        ),
    ],
)
def test_production_refuses_to_start_without(tmp_path, missing, message):
    env = {k: v for k, v in PROD.items() if k != missing}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(env, tmp_path)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RACCORD_ENV": "staging"}, "RACCORD_ENV doit valoir development ou production"),
        ({"SESSION_COOKIE_SECURE": "peut-être"}, "SESSION_COOKIE_SECURE doit valoir true ou false"),
        ({"JOB_TIMEOUT": "beaucoup"}, "JOB_TIMEOUT doit être un nombre entier"),
        ({"JOB_TIMEOUT": "3"}, "JOB_TIMEOUT doit être supérieur ou égal à 10"),
        ({"LOGIN_FAILURE_DELAY": "-1"}, "LOGIN_FAILURE_DELAY doit être supérieur ou égal à 0"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL doit désigner une base PostgreSQL ou SQLite"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL doit commencer par redis://"),
        ({"SECRET_KEY": "court"}, "SECRET_KEY doit faire au moins 32 caractères"),
        ({"SECRET_KEY": "x" * 40, "SECRET_KEY_FILE": "/tmp/s"}, "Définissez SECRET_KEY ou SECRET_KEY_FILE"),
        ({"SECRET_KEY_FILE": "/nulle/part"}, "SECRET_KEY_FILE : impossible de lire /nulle/part"),
        (
            {"TOKEN_ENCRYPTION_KEY": "pas-une-cle"},
            "TOKEN_ENCRYPTION_KEY doit être une ou plusieurs clés Fernet",
        ),
        ({"SANDBOX_BASE_URL": "ftp://x"}, "SANDBOX_BASE_URL doit commencer par http"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env, tmp_path)


def test_secret_from_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s" * 48 + "\n")
    assert load_config({"SECRET_KEY_FILE": str(secret)}, tmp_path)["SECRET_KEY"] == "s" * 48
