"""The accounting software Raccord knows, as shown in 'Logiciels disponibles', and their connectors.

A vendor's software is reached with its real endpoints when its credentials are configured
(XERO_CLIENT_ID…); otherwise, where the sandbox is on (local runs, tests, support), through the
sandbox's dialect of that vendor, with the same connector; otherwise it is shown as unavailable,
with why.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, has_request_context, request

from webapp.connectors.base import Connector
from webapp.connectors.http import RetryPolicy


@dataclass(frozen=True)
class Software:
    key: str
    name: str
    summary: str
    available: bool = True
    unavailable_reason: str = ""
    through_sandbox: bool = False


CATALOGUE: dict[str, Software] = {
    "sandbox": Software(
        key="sandbox",
        name="Compta Démo",
        summary="Logiciel comptable de démonstration intégré à Raccord, pour essayer et reproduire.",
    ),
    "xero": Software(
        key="xero",
        name="Xero",
        summary="Logiciel comptable en ligne ; choisissez l'organisation Xero de la société du dossier.",
    ),
}

VENDOR_PREFIX = {"xero": "XERO"}


def software_name(key: str) -> str:
    software = CATALOGUE.get(key)
    return software.name if software else key


def software_status(key: str) -> Software:
    """The catalogue entry with whether it can be connected here, and why not."""
    base = CATALOGUE[key]
    config = current_app.config
    if key == "sandbox":
        if config["SANDBOX_ENABLED"]:
            return base
        return _unavailable(base, "Le logiciel de démonstration est désactivé sur ce serveur.")
    prefix = VENDOR_PREFIX[key]
    if config.get(f"{prefix}_CLIENT_ID") and config.get(f"{prefix}_CLIENT_SECRET"):
        return base
    if config["SANDBOX_ENABLED"]:
        return Software(
            key=base.key,
            name=base.name,
            summary=f"{base.summary} Ici, la version bac à sable de {base.name} : "
            f"les sociétés de Compta Démo au format {base.name}.",
            through_sandbox=True,
        )
    return _unavailable(
        base,
        f"Non disponible : les identifiants de l'application {base.name} ne sont pas configurés "
        f"({prefix}_CLIENT_ID et {prefix}_CLIENT_SECRET).",
    )


def _unavailable(base: Software, reason: str) -> Software:
    return Software(
        key=base.key, name=base.name, summary=base.summary, available=False, unavailable_reason=reason
    )


def available_software() -> list[Software]:
    """Every software of the catalogue, the ones that cannot be connected here with their reason."""
    return [software_status(key) for key in CATALOGUE]


def sandbox_base_url() -> str:
    configured = current_app.config.get("SANDBOX_BASE_URL")
    if configured:
        return configured
    if has_request_context():
        return request.host_url.rstrip("/") + "/sandbox"
    raise RuntimeError("SANDBOX_BASE_URL is not set and there is no request to derive it from")


def get_connector(key: str) -> Connector:
    if key not in CATALOGUE or not software_status(key).available:
        raise KeyError(key)
    config = current_app.config
    policy = RetryPolicy.from_config(config)
    if key == "sandbox":
        from webapp.connectors.sandbox import SandboxConnector

        return SandboxConnector(
            base_url=sandbox_base_url(),
            client_id=config["SANDBOX_CLIENT_ID"],
            client_secret=config["SANDBOX_CLIENT_SECRET"],
            policy=policy,
            page_size=config["LIST_PAGE_SIZE"],
        )
    if key == "xero":
        from webapp.connectors.xero import XeroConnector

        if software_status(key).through_sandbox:
            root = f"{sandbox_base_url()}/xero"
            urls = {
                "authorize_url": f"{root}/identity/connect/authorize",
                "token_url": f"{root}/identity/connect/token",
                "revoke_url": f"{root}/identity/connect/revocation",
                "connections_url": f"{root}/connections",
                "api_url": f"{root}/api.xro/2.0",
            }
            client_id, client_secret = config["SANDBOX_CLIENT_ID"], config["SANDBOX_CLIENT_SECRET"]
        else:
            urls = {
                "authorize_url": config["XERO_AUTHORIZE_URL"],
                "token_url": config["XERO_TOKEN_URL"],
                "revoke_url": config["XERO_REVOKE_URL"],
                "connections_url": config["XERO_CONNECTIONS_URL"],
                "api_url": config["XERO_API_URL"],
            }
            client_id, client_secret = config["XERO_CLIENT_ID"], config["XERO_CLIENT_SECRET"]
        return XeroConnector(
            client_id=client_id,
            client_secret=client_secret,
            policy=policy,
            page_size=min(config["LIST_PAGE_SIZE"], 1000),
            **urls,
        )
    raise KeyError(key)
