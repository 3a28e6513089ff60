"""The accounting software Raccord knows, as shown in 'Logiciels disponibles', and their connectors."""

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


CATALOGUE: dict[str, Software] = {
    "sandbox": Software(
        key="sandbox",
        name="Compta Démo",
        summary="Logiciel comptable de démonstration intégré à Raccord, pour essayer et reproduire.",
    ),
}


def software_name(key: str) -> str:
    software = CATALOGUE.get(key)
    return software.name if software else key


def available_software() -> list[Software]:
    return [s for key, s in CATALOGUE.items() if key != "sandbox" or current_app.config["SANDBOX_ENABLED"]]


def sandbox_base_url() -> str:
    configured = current_app.config.get("SANDBOX_BASE_URL")
    if configured:
        return configured
    if has_request_context():
        return request.host_url.rstrip("/") + "/sandbox"
    raise RuntimeError("SANDBOX_BASE_URL is not set and there is no request to derive it from")


def get_connector(key: str) -> Connector:
    config = current_app.config
    policy = RetryPolicy.from_config(config)
    if key == "sandbox" and config["SANDBOX_ENABLED"]:
        from webapp.connectors.sandbox import SandboxConnector

        return SandboxConnector(
            base_url=sandbox_base_url(),
            client_id=config["SANDBOX_CLIENT_ID"],
            client_secret=config["SANDBOX_CLIENT_SECRET"],
            policy=policy,
            page_size=config["LIST_PAGE_SIZE"],
        )
    raise KeyError(key)
