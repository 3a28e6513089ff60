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
    "MAIL_SERVER": "smtp.cabinet.test",
    "MAIL_DEFAULT_SENDER": "Raccord <notifications@cabinet.test>",
    "PUBLIC_BASE_URL": "https://raccord.cabinet.test",
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


def test_passwords_are_hashed_at_production_cost_unless_told(tmp_path):
    from werkzeug.security import check_password_hash

    from webapp import create_app
    from webapp.models import User

    assert load_config(PROD, tmp_path)["PASSWORD_HASH_METHOD"] == "scrypt:32768:8:1"
    assert load_config({}, tmp_path)["PASSWORD_HASH_METHOD"] == "scrypt:32768:8:1"
    user = User(email="claire@lefevre.test")
    user.set_password("bon-mot-de-passe")  # outside any app: the default
    assert user.password_hash.startswith("scrypt:32768:8:1$")
    app = create_app({"PASSWORD_HASH_METHOD": "scrypt:32768:8:1"})
    with app.app_context():
        user.set_password("un-autre")
    assert user.password_hash.startswith("scrypt:32768:8:1$")
    assert check_password_hash(user.password_hash, "un-autre") and not user.check_password("bon-mot-de-passe")


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
        ("MAIL_SERVER", "En production, les e-mails partent par un serveur SMTP : définissez MAIL_SERVER"),
        ("MAIL_DEFAULT_SENDER", "MAIL_DEFAULT_SENDER est obligatoire en production"),
        ("PUBLIC_BASE_URL", "PUBLIC_BASE_URL est obligatoire en production"),
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
        ({"MAIL_BACKEND": "pigeon"}, "MAIL_BACKEND doit valoir smtp, console, file ou locmem"),
        ({"MAIL_BACKEND": "smtp"}, "MAIL_BACKEND=smtp demande MAIL_SERVER"),
        ({"MAIL_SERVER": "smtp.test", "MAIL_PORT": "70000"}, "MAIL_PORT doit être un port entre 1 et 65535"),
        ({"MAIL_PORT": "vingt-cinq"}, "MAIL_PORT doit être un nombre entier"),
        ({"MAIL_USE_TLS": "1", "MAIL_USE_SSL": "1"}, "MAIL_USE_TLS .STARTTLS. et MAIL_USE_SSL"),
        ({"MAIL_USERNAME": "raccord"}, "MAIL_USERNAME et MAIL_PASSWORD vont ensemble"),
        ({"MAIL_TIMEOUT": "0"}, "MAIL_TIMEOUT doit être supérieur ou égal à 1"),
        ({"MAIL_DEFAULT_SENDER": "Raccord"}, "MAIL_DEFAULT_SENDER doit contenir une adresse e-mail"),
        ({"PUBLIC_BASE_URL": "raccord.test"}, "PUBLIC_BASE_URL doit commencer par https://"),
        ({"MAIL_RETRY_DELAYS": "30,-1"}, "MAIL_RETRY_DELAYS doit être une liste de durées"),
        ({"PASSWORD_HASH_METHOD": "md5"}, "PASSWORD_HASH_METHOD doit être de la forme scrypt:N:r:p"),
        ({"PASSWORD_HASH_METHOD": "scrypt:1000:8:1"}, "N étant une puissance de 2 de 1024"),
        ({"PASSWORD_HASH_METHOD": "scrypt:2097152:8:1"}, "PASSWORD_HASH_METHOD doit être de la forme"),
        ({"PASSWORD_HASH_METHOD": "scrypt:512:8:1"}, "de 1024 à 1048576"),
        (
            {**PROD, "PASSWORD_HASH_METHOD": "scrypt:1024:8:1"},
            "ne peut pas être moins coûteux que scrypt:32768:8:1",
        ),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env, tmp_path)


def test_secret_from_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s" * 48 + "\n")
    assert load_config({"SECRET_KEY_FILE": str(secret)}, tmp_path)["SECRET_KEY"] == "s" * 48


def test_mail_goes_to_files_locally_and_through_smtp_when_a_server_is_set(tmp_path):
    local = load_config({}, tmp_path)
    assert local["MAIL_BACKEND"] == "file"
    assert local["MAIL_FILE_PATH"] == str(tmp_path / "mail")
    assert local["PUBLIC_BASE_URL"] == "http://127.0.0.1:5000"
    password = tmp_path / "smtp_password"
    password.write_text("secret-smtp\n")
    config = load_config(
        {
            "MAIL_SERVER": "smtp.cabinet.test",
            "MAIL_USE_TLS": "true",
            "MAIL_USERNAME": "raccord",
            "MAIL_PASSWORD_FILE": str(password),
            "PUBLIC_BASE_URL": "https://raccord.cabinet.test/",
        },
        tmp_path,
    )
    assert config["MAIL_BACKEND"] == "smtp"
    assert (config["MAIL_PORT"], config["MAIL_USE_TLS"], config["MAIL_PASSWORD"]) == (
        587,
        True,
        "secret-smtp",
    )
    assert config["PUBLIC_BASE_URL"] == "https://raccord.cabinet.test"
    assert load_config({"MAIL_BACKEND": "console"}, tmp_path)["MAIL_BACKEND"] == "console"
