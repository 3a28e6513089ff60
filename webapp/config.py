"""Configuration read strictly from the environment, with the local defaults of `make run`."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

ENVIRONMENTS = ("development", "production")


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} doit valoir true ou false (reçu : {raw!r}).")


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} doit être un nombre (reçu : {raw!r}).") from None
    if value < minimum:
        raise ConfigError(f"{name} doit être supérieur ou égal à {minimum} (reçu : {raw!r}).")
    return value


def env_rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    """A limit as Flask-Limiter reads it ('5 per minute; 30 per hour')."""
    from limits import parse_many

    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(
            f"{name} doit être une ou plusieurs limites séparées par « ; », par exemple "
            f"« 5 per minute; 30 per hour » (reçu : {raw!r})."
        ) from None
    return raw


def env_json_object(env: Mapping[str, str], name: str) -> dict[str, Any]:
    raw = (env.get(name) or "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} doit être un objet JSON.")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} doit être un nombre entier (reçu : {raw!r}).") from None
    if value < minimum:
        raise ConfigError(f"{name} doit être supérieur ou égal à {minimum} (reçu : {raw!r}).")
    return value


def env_cron(env: Mapping[str, str], name: str, default: str) -> str:
    """A cron expression (minute hour day month weekday), checked with croniter as RQ reads it."""
    from croniter import croniter

    value = (env.get(name) or "").strip() or default
    if not croniter.is_valid(value):
        raise ConfigError(
            f"{name} doit être une expression cron à 5 champs, par exemple « 0 2 * * * » (reçu : {value!r})."
        )
    return value


def env_secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (Docker and Kubernetes secrets)."""
    value = env.get(name)
    file_name = env.get(f"{name}_FILE")
    if value and file_name:
        raise ConfigError(f"Définissez {name} ou {name}_FILE, pas les deux.")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE : impossible de lire {file_name} ({exc.strerror}).") from None
    return value or None


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _local_secret(instance_path: Path, file_name: str, generate=lambda: secrets.token_urlsafe(48)) -> str:
    """A random secret kept in the instance folder, so local sessions survive a restart."""
    path = instance_path / file_name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    instance_path.mkdir(parents=True, exist_ok=True, mode=0o700)  # the owner's only
    value = generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    return value


def _normalise_database_url(url: str) -> str:
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants a driver name.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


#: How passwords are hashed (werkzeug's scrypt at its own cost). Cheaper is allowed outside
#: production only: a machine that creates and checks many throwaway accounts (the tests).
PASSWORD_HASH_DEFAULT = "scrypt:32768:8:1"  # noqa: S105 - a hashing method, not a password
_PASSWORD_HASH = re.compile(r"scrypt:(\d+):(\d+):(\d+)")


def password_hash_setting(env: Mapping[str, str], production: bool) -> str:
    method = (env.get("PASSWORD_HASH_METHOD") or "").strip() or PASSWORD_HASH_DEFAULT
    found = _PASSWORD_HASH.fullmatch(method)
    cost = int(found.group(1)) if found else 0
    if (
        not found
        or not 1024 <= cost <= 1 << 20
        or cost & (cost - 1)
        or not 0 < int(found.group(2)) <= 64
        or not 0 < int(found.group(3)) <= 16
    ):
        raise ConfigError(
            "PASSWORD_HASH_METHOD doit être de la forme scrypt:N:r:p, N étant une puissance de 2 "
            f"de 1024 à 1048576 (par défaut {PASSWORD_HASH_DEFAULT})."
        )
    if production and cost < 32768:
        raise ConfigError(
            f"PASSWORD_HASH_METHOD ne peut pas être moins coûteux que {PASSWORD_HASH_DEFAULT} en production."
        )
    return method


def load_config(env: Mapping[str, str], instance_path: Path) -> dict[str, Any]:
    """Every setting of the app, parsed from `env`; raises ConfigError with a French message."""
    environment = env.get("RACCORD_ENV", "development").strip().lower()
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"RACCORD_ENV doit valoir development ou production (reçu : {environment!r}).")
    production = environment == "production"

    secret_key = env_secret(env, "SECRET_KEY")
    if secret_key is None:
        if production:
            raise ConfigError("SECRET_KEY (ou SECRET_KEY_FILE) est obligatoire en production.")
        secret_key = _local_secret(instance_path, "secret_key")
    elif len(secret_key) < 32:
        raise ConfigError("SECRET_KEY doit faire au moins 32 caractères.")

    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        if production:
            raise ConfigError("DATABASE_URL est obligatoire en production (PostgreSQL).")
        instance_path.mkdir(parents=True, exist_ok=True, mode=0o700)  # the owner's only
        database_url = f"sqlite:///{instance_path / 'raccord.db'}"
    database_url = _normalise_database_url(database_url)
    if not (database_url.startswith("sqlite:") or database_url.startswith("postgresql+psycopg://")):
        raise ConfigError("DATABASE_URL doit désigner une base PostgreSQL ou SQLite.")

    redis_url = env.get("REDIS_URL", "").strip() or None
    if redis_url is None and production:
        raise ConfigError("REDIS_URL est obligatoire en production (file des tâches RQ).")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL doit commencer par redis://, rediss:// ou unix://.")

    token_keys_raw = env_secret(env, "TOKEN_ENCRYPTION_KEY")
    if token_keys_raw is None:
        if production:
            raise ConfigError(
                "TOKEN_ENCRYPTION_KEY (ou TOKEN_ENCRYPTION_KEY_FILE) est obligatoire en production."
            )
        token_keys_raw = _local_secret(instance_path, "token_key", generate=_new_fernet_key)
    token_keys = [k.strip() for k in token_keys_raw.split(",") if k.strip()]
    from webapp.crypto import valid_fernet_key

    if not token_keys or not all(valid_fernet_key(k) for k in token_keys):
        raise ConfigError(
            "TOKEN_ENCRYPTION_KEY doit être une ou plusieurs clés Fernet séparées par des virgules "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
        )

    sandbox_enabled = env_bool(env, "SANDBOX_ENABLED", not production)
    sandbox_base_url = (env.get("SANDBOX_BASE_URL") or "").strip().rstrip("/") or None
    if sandbox_base_url and not sandbox_base_url.startswith(("http://", "https://")):
        raise ConfigError("SANDBOX_BASE_URL doit commencer par http:// ou https://.")

    control_token = env_secret(env, "SANDBOX_CONTROL_TOKEN")
    if control_token is not None and len(control_token) < 32:
        raise ConfigError("SANDBOX_CONTROL_TOKEN doit faire au moins 32 caractères.")

    mail = mail_settings(env, instance_path, production)

    password_hash_method = password_hash_setting(env, production)

    metrics_token = env_secret(env, "METRICS_TOKEN")
    if metrics_token is not None and len(metrics_token) < 32:
        raise ConfigError("METRICS_TOKEN doit faire au moins 32 caractères.")

    config: dict[str, Any] = {
        "RACCORD_ENV": environment,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Connections are checked before use when they have rested (webapp.pool), not on every request.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "REDIS_URL": redis_url,
        "JOB_QUEUE": env.get("JOB_QUEUE", "raccord").strip() or "raccord",
        "JOB_TIMEOUT": env_int(env, "JOB_TIMEOUT", 1800, minimum=10),
        "JOB_POLL_SECONDS": env_float(env, "JOB_POLL_SECONDS", 1.0, minimum=0.2),
        # The kept parts of the dossiers' pages (webapp.fragments): in Redis for so long, and the
        # last served in each process up to so many bytes (0: none kept in the process).
        "FRAGMENT_CACHE": env_bool(env, "FRAGMENT_CACHE", True),
        "FRAGMENT_CACHE_SECONDS": env_int(env, "FRAGMENT_CACHE_SECONDS", 3600, minimum=1),
        "FRAGMENT_CACHE_LOCAL_BYTES": env_int(env, "FRAGMENT_CACHE_LOCAL_BYTES", 32 * 1024 * 1024),
        "LOGIN_FAILURE_DELAY": env_float(env, "LOGIN_FAILURE_DELAY", 0.7),
        "PASSWORD_HASH_METHOD": password_hash_method,
        "LOGIN_RATE_LIMIT": env_rate_limit(env, "LOGIN_RATE_LIMIT", "5 per minute; 30 per hour"),
        "LOGIN_IP_RATE_LIMIT": env_rate_limit(env, "LOGIN_IP_RATE_LIMIT", "30 per minute; 300 per hour"),
        "LOGIN_ACCOUNT_RATE_LIMIT": env_rate_limit(
            env, "LOGIN_ACCOUNT_RATE_LIMIT", "20 per hour; 100 per day"
        ),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": False,
        # Redis down: the login limits go on in this process's memory rather than refusing logins.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env_bool(env, "SESSION_COOKIE_SECURE", production),
        "SESSION_COOKIE_NAME": "raccord_session",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": env_bool(env, "SESSION_COOKIE_SECURE", production),
        # Both enforced on the server (webapp.services.sessions): from the login whatever the activity,
        # and since the last request.
        "PERMANENT_SESSION_LIFETIME": env_int(env, "SESSION_LIFETIME_HOURS", 12, minimum=1) * 3600,
        "SESSION_IDLE_MINUTES": env_int(env, "SESSION_IDLE_MINUTES", 60, minimum=1),
        # The cookie is sent only when the session changes. Re-sent on every response, a response that
        # started before a change (a stylesheet, a poll) and ended after it put the old session back:
        # the state of a connection started meanwhile was lost, and a logout could be undone.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "WTF_CSRF_SSL_STRICT": production,
        "BABEL_DEFAULT_LOCALE": "fr",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Paris",
        "MAX_CONTENT_LENGTH": env_int(env, "MAX_UPLOAD_MB", 20, minimum=1) * 1024 * 1024,
        "TRUST_PROXY_HEADERS": env_int(env, "TRUST_PROXY_HEADERS", 0, minimum=0),
        "TOKEN_ENCRYPTION_KEYS": token_keys,
        "TOKEN_REFRESH_MARGIN": env_int(env, "TOKEN_REFRESH_MARGIN", 300, minimum=30),
        "SANDBOX_ENABLED": sandbox_enabled,
        "SANDBOX_BASE_URL": sandbox_base_url,
        "SANDBOX_CLIENT_ID": env.get("SANDBOX_CLIENT_ID", "raccord"),
        # The controls' JSON API for automation (tests, support scripts); without it, staff only.
        "SANDBOX_CONTROL_TOKEN": control_token,
        # Prometheus' scraper sends it as a bearer token to /metrics; without it, staff only.
        "METRICS_TOKEN": metrics_token,
        # The sandbox's dialects enforce the vendors' published rate limits (sandbox/limits.py).
        "SANDBOX_VENDOR_LIMITS": env_bool(env, "SANDBOX_VENDOR_LIMITS", False),
        # None: derived from SECRET_KEY once the app's final settings are known (derived_settings).
        "SANDBOX_CLIENT_SECRET": env_secret(env, "SANDBOX_CLIENT_SECRET"),
        "PROVIDER_TIMEOUT": env_float(env, "PROVIDER_TIMEOUT", 30.0, minimum=1.0),
        "PROVIDER_MAX_RETRIES": env_int(env, "PROVIDER_MAX_RETRIES", 4, minimum=0),
        "PROVIDER_BACKOFF_SECONDS": env_float(env, "PROVIDER_BACKOFF_SECONDS", 1.0),
        "PROVIDER_MAX_RETRY_AFTER": env_float(env, "PROVIDER_MAX_RETRY_AFTER", 120.0),
        # None: each software's largest page (QuickBooks 1 000, Pennylane 100…); set, a smaller one.
        "LIST_PAGE_SIZE": (
            env_int(env, "LIST_PAGE_SIZE", 500, minimum=10)
            if (env.get("LIST_PAGE_SIZE") or "").strip()
            else None
        ),
        # The periodic work (webapp.scheduler): cron fields in the scheduler's local time (TZ).
        "SCHEDULE_NIGHTLY_REFRESH": env_cron(env, "SCHEDULE_NIGHTLY_REFRESH", "0 2 * * *"),
        "SCHEDULE_PURGE_JOBS": env_cron(env, "SCHEDULE_PURGE_JOBS", "30 3 * * *"),
        "SCHEDULE_HOURLY_SECONDS": env_int(env, "SCHEDULE_HOURLY_SECONDS", 3600, minimum=60),
        "JOB_RETENTION_DAYS": env_int(env, "JOB_RETENTION_DAYS", 30, minimum=1),
        "CONSENT_NOTICE_DAYS": env_int(env, "CONSENT_NOTICE_DAYS", 30, minimum=1),
        # Intuit sends no Retry-After with its 429 and asks for a 60-second wait.
        "QUICKBOOKS_THROTTLE_WAIT": env_float(env, "QUICKBOOKS_THROTTLE_WAIT", 60.0),
        # Each company's call budget at its software (webapp.connectors.limits): the vendors' documented
        # limits, overridden per vendor by VENDOR_LIMITS (JSON, e.g. {"xero": {"rates": [[60, 30]]}}),
        # kept under them by the margin (rates and daily budgets; concurrency is kept as documented).
        "VENDOR_LIMITS": env_json_object(env, "VENDOR_LIMITS"),
        "VENDOR_LIMIT_MARGIN": env_float(env, "VENDOR_LIMIT_MARGIN", 0.9, minimum=0.05),
        "VENDOR_BUDGET_MAX_WAIT": env_float(env, "VENDOR_BUDGET_MAX_WAIT", 120.0),
        "VENDOR_BUDGET_SHRINK_SECONDS": env_float(env, "VENDOR_BUDGET_SHRINK_SECONDS", 600.0),
        "VENDOR_BUDGET_SHRINK_FACTOR": env_float(env, "VENDOR_BUDGET_SHRINK_FACTOR", 0.5, minimum=0.01),
        # Webhooks (webapp.webhooks): the keys the vendors sign their deliveries with, never logged.
        # Xero's 'Webhooks key' of the app; Intuit's 'Verifier Token'. Unset, deliveries are refused.
        "XERO_WEBHOOK_KEY": env_secret(env, "XERO_WEBHOOK_KEY"),
        "QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN": env_secret(env, "QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN"),
        # The key the sandbox's dialects sign with, shared with Raccord; None: derived from SECRET_KEY.
        "SANDBOX_WEBHOOK_KEY": env_secret(env, "SANDBOX_WEBHOOK_KEY"),
        # Where the sandbox's dialects deliver; None: this server's own /webhooks/<vendor>.
        "SANDBOX_WEBHOOK_URL": (env.get("SANDBOX_WEBHOOK_URL") or "").strip().rstrip("/") or None,
        "WEBHOOK_MAX_BYTES": env_int(env, "WEBHOOK_MAX_BYTES", 256 * 1024, minimum=1024),
        # A body accepted once and sent again within this many hours changes nothing (a replay).
        "WEBHOOK_REPLAY_HOURS": env_int(env, "WEBHOOK_REPLAY_HOURS", 24, minimum=1),
        **mail,
        **vendor_settings(env),
    }
    return config


MAIL_BACKENDS = ("smtp", "console", "file", "locmem")


def env_seconds_list(env: Mapping[str, str], name: str, default: list[int]) -> list[int]:
    """Comma-separated whole seconds ('30,120,600'), each 0 or more."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return list(default)
    try:
        values = [int(part) for part in raw.split(",")]
    except ValueError:
        values = []
    if not values or any(value < 0 for value in values):
        raise ConfigError(
            f"{name} doit être une liste de durées en secondes séparées par des virgules, "
            f"par exemple « 30,120,600 » (reçu : {raw!r})."
        )
    return values


def mail_settings(env: Mapping[str, str], instance_path: Path, production: bool) -> dict[str, Any]:
    """Outgoing e-mail (webapp.services.mail): an SMTP server in production; locally, .eml files."""
    server = (env.get("MAIL_SERVER") or "").strip() or None
    backend = (env.get("MAIL_BACKEND") or "").strip().lower() or ("smtp" if server else "file")
    if backend not in MAIL_BACKENDS:
        raise ConfigError(
            f"MAIL_BACKEND doit valoir smtp, console, file ou locmem (reçu : {env.get('MAIL_BACKEND')!r})."
        )
    if backend == "smtp" and server is None:
        raise ConfigError("MAIL_BACKEND=smtp demande MAIL_SERVER (le serveur SMTP qui envoie les e-mails).")
    if production and backend != "smtp":
        raise ConfigError(
            "En production, les e-mails partent par un serveur SMTP : définissez MAIL_SERVER "
            f"(MAIL_BACKEND={backend} ne les envoie à personne)."
        )
    use_tls = env_bool(env, "MAIL_USE_TLS", False)
    use_ssl = env_bool(env, "MAIL_USE_SSL", False)
    if use_tls and use_ssl:
        raise ConfigError(
            "MAIL_USE_TLS (STARTTLS) et MAIL_USE_SSL (TLS direct) s'excluent : choisissez-en un."
        )
    port = env_int(env, "MAIL_PORT", 465 if use_ssl else 587 if use_tls else 25, minimum=1)
    if port > 65535:
        raise ConfigError(f"MAIL_PORT doit être un port entre 1 et 65535 (reçu : {port}).")
    username = (env.get("MAIL_USERNAME") or "").strip() or None
    password = env_secret(env, "MAIL_PASSWORD")
    if bool(username) != bool(password):
        raise ConfigError("MAIL_USERNAME et MAIL_PASSWORD vont ensemble : donnez les deux ou aucun.")
    sender = (env.get("MAIL_DEFAULT_SENDER") or "").strip() or None
    if sender is None:
        if production:
            raise ConfigError(
                "MAIL_DEFAULT_SENDER est obligatoire en production, par exemple "
                "« Raccord <notifications@votre-domaine.fr> »."
            )
        sender = "Raccord <raccord@localhost>"
    from email.utils import parseaddr

    if "@" not in parseaddr(sender)[1]:
        raise ConfigError(f"MAIL_DEFAULT_SENDER doit contenir une adresse e-mail (reçu : {sender!r}).")
    public_url = (env.get("PUBLIC_BASE_URL") or "").strip().rstrip("/") or None
    if public_url is None:
        if production:
            raise ConfigError(
                "PUBLIC_BASE_URL est obligatoire en production : l'adresse de Raccord pour ses "
                "utilisateurs, par exemple https://raccord.votre-domaine.fr (liens des e-mails)."
            )
        public_url = f"http://127.0.0.1:{env_int(env, 'PORT', 5000, minimum=1)}"
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError("PUBLIC_BASE_URL doit commencer par https:// (ou http:// en local).")
    return {
        "MAIL_BACKEND": backend,
        "MAIL_SERVER": server or "localhost",
        "MAIL_PORT": port,
        "MAIL_USERNAME": username,
        "MAIL_PASSWORD": password,
        "MAIL_USE_TLS": use_tls,
        "MAIL_USE_SSL": use_ssl,
        "MAIL_TIMEOUT": env_float(env, "MAIL_TIMEOUT", 30.0, minimum=1.0),
        "MAIL_DEFAULT_SENDER": sender,
        # Where the file backend writes one .eml per message.
        "MAIL_FILE_PATH": str(instance_path / "mail"),
        # The waits between an attempt that failed and the next (RQ's Retry): as many retries as waits.
        "MAIL_RETRY_DELAYS": env_seconds_list(env, "MAIL_RETRY_DELAYS", [60, 300, 1800]),
        # The periodic pass sends again what is still queued after this many minutes, or failed, ...
        "MAIL_RESEND_AFTER_MINUTES": env_int(env, "MAIL_RESEND_AFTER_MINUTES", 30, minimum=1),
        # ... for this many hours after it was written; older, it stays failed (shown in Support).
        "MAIL_GIVE_UP_HOURS": env_int(env, "MAIL_GIVE_UP_HOURS", 72, minimum=1),
        "SCHEDULE_MAIL_SECONDS": env_int(env, "SCHEDULE_MAIL_SECONDS", 900, minimum=60),
        # Notifications (webapp.services.notifications): a consent ending within this many days is
        # told by e-mail; the « résumé quotidien » leaves at this time (cron, the scheduler's TZ).
        "NOTIFY_CONSENT_DAYS": env_int(env, "NOTIFY_CONSENT_DAYS", 14, minimum=1),
        "SCHEDULE_DIGEST": env_cron(env, "SCHEDULE_DIGEST", "0 7 * * *"),
        "PUBLIC_BASE_URL": public_url,
    }


# Each vendor's endpoints, overridable one by one (a proxy, a regional host, a vendor's own sandbox).
VENDOR_URLS = {
    "XERO": {
        "AUTHORIZE_URL": "https://login.xero.com/identity/connect/authorize",
        "TOKEN_URL": "https://identity.xero.com/connect/token",
        "REVOKE_URL": "https://identity.xero.com/connect/revocation",
        "CONNECTIONS_URL": "https://api.xero.com/connections",
        "API_URL": "https://api.xero.com/api.xro/2.0",
    },
    "QUICKBOOKS": {
        "AUTHORIZE_URL": "https://appcenter.intuit.com/connect/oauth2",
        "TOKEN_URL": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "REVOKE_URL": "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
        "API_URL": "https://quickbooks.api.intuit.com/v3/company",
    },
    "PENNYLANE": {
        "AUTHORIZE_URL": "https://app.pennylane.com/oauth/authorize",
        "TOKEN_URL": "https://app.pennylane.com/oauth/token",
        "REVOKE_URL": "https://app.pennylane.com/oauth/revoke",
        "API_URL": "https://app.pennylane.com/api/external/v2",
    },
    "SAGE": {
        "AUTHORIZE_URL": "https://www.sageone.com/oauth2/auth/central?filter=apiv3.1",
        "TOKEN_URL": "https://oauth.accounting.sage.com/token",
        "REVOKE_URL": "https://oauth.accounting.sage.com/revoke",
        "API_URL": "https://api.accounting.sage.com/v3.1",
    },
}


def vendor_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """<VENDOR>_CLIENT_ID, <VENDOR>_CLIENT_SECRET[_FILE] and the <VENDOR>_*_URL overrides, checked."""
    settings: dict[str, Any] = {}
    for vendor, urls in VENDOR_URLS.items():
        client_id = (env.get(f"{vendor}_CLIENT_ID") or "").strip() or None
        client_secret = env_secret(env, f"{vendor}_CLIENT_SECRET")
        if bool(client_id) != bool(client_secret):
            raise ConfigError(
                f"{vendor}_CLIENT_ID et {vendor}_CLIENT_SECRET vont ensemble : donnez les deux ou aucun."
            )
        settings[f"{vendor}_CLIENT_ID"] = client_id
        settings[f"{vendor}_CLIENT_SECRET"] = client_secret
        for name, default in urls.items():
            value = (env.get(f"{vendor}_{name}") or "").strip() or default
            if not value.startswith(("https://", "http://")):
                raise ConfigError(f"{vendor}_{name} doit commencer par https:// (ou http:// en local).")
            settings[f"{vendor}_{name}"] = value
    return settings


def derived_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Settings computed from others, after tests or callers have overridden what they wanted."""
    derived: dict[str, Any] = {}
    if not config.get("SANDBOX_CLIENT_SECRET"):
        derived["SANDBOX_CLIENT_SECRET"] = hmac.new(
            config["SECRET_KEY"].encode(), b"sandbox-client", hashlib.sha256
        ).hexdigest()
    if not config.get("SANDBOX_WEBHOOK_KEY"):
        derived["SANDBOX_WEBHOOK_KEY"] = hmac.new(
            config["SECRET_KEY"].encode(), b"sandbox-webhooks", hashlib.sha256
        ).hexdigest()
    return derived
