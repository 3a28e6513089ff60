"""The accounting software Raccord knows, as shown in 'Logiciels disponibles', and their connectors.

A vendor's software is reached with its real endpoints when its credentials are configured
(XERO_CLIENT_ID…); otherwise, where the sandbox is on (local runs, tests, support), through the
sandbox's dialect of that vendor, with the same connector; otherwise it is shown as unavailable,
with why.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from flask import current_app, has_request_context, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

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
    guide: str = ""  # 'guide de démarrage': what the user needs, which company to pick


CATALOGUE: dict[str, Software] = {
    "sandbox": Software(
        key="sandbox",
        name="Compta Démo",
        summary=_l("Logiciel comptable de démonstration intégré à Raccord, pour essayer et reproduire."),
        guide=_l(
            "Rien à préparer : choisissez la société de démonstration qui correspond au dossier sur la "
            "page d'autorisation de Compta Démo."
        ),
    ),
    "xero": Software(
        key="xero",
        name="Xero",
        summary=_l("Logiciel comptable en ligne ; choisissez l'organisation Xero de la société du dossier."),
        guide=_l(
            "Il vous faut un compte Xero avec le rôle Conseiller ou Standard sur l'organisation de la "
            "société. Sur la page de Xero, choisissez cette organisation, puis « Allow access » ; si "
            "vous en autorisez plusieurs, Raccord vous demande ensuite laquelle relier au dossier."
        ),
    ),
    "quickbooks": Software(
        key="quickbooks",
        name="QuickBooks Online",
        summary=_l("QuickBooks en ligne ; choisissez l'entreprise QuickBooks de la société du dossier."),
        guide=_l(
            "Connectez-vous avec un utilisateur administrateur de l'entreprise QuickBooks Online. "
            "Choisissez l'entreprise du dossier dans la liste d'Intuit, puis « Connect »."
        ),
    ),
    "pennylane": Software(
        key="pennylane",
        name="Pennylane",
        summary=_l("Logiciel comptable français ; autorisez l'accès à l'entreprise du dossier."),
        guide=_l(
            "Il vous faut un accès à l'entreprise dans Pennylane (expert-comptable ou administrateur). "
            "Autorisez Raccord pour l'entreprise du dossier ; les factures seront importées avec leur "
            "PDF."
        ),
    ),
    "sage": Software(
        key="sage",
        name="Sage Business Cloud Comptabilité",
        summary=_l(
            "Sage Comptabilité en ligne ; connectez-vous avec le compte Sage qui a accès à l'entreprise."
        ),
        guide=_l(
            "Connectez-vous avec l'identifiant Sage qui a accès à l'entreprise (Sage Business Cloud "
            "Comptabilité, France). Si plusieurs entreprises vous sont ouvertes, Raccord vous demande "
            "ensuite laquelle relier au dossier."
        ),
    ),
}

VENDOR_PREFIX = {"xero": "XERO", "quickbooks": "QUICKBOOKS", "pennylane": "PENNYLANE", "sage": "SAGE"}


@dataclass(frozen=True)
class Vendor:
    """How to build a vendor's connector: its class, and its endpoints' paths in the sandbox dialect."""

    connector: str  # dotted path of the class
    dialect: dict[str, str]  # connector argument → its path under /sandbox/<key> (or <PREFIX>_<ARG> setting)
    settings: dict[str, str] = field(default_factory=dict)  # further connector arguments → setting name


VENDORS: dict[str, Vendor] = {
    "xero": Vendor(
        connector="webapp.connectors.xero:XeroConnector",
        dialect={
            "authorize_url": "/identity/connect/authorize",
            "token_url": "/identity/connect/token",
            "revoke_url": "/identity/connect/revocation",
            "connections_url": "/connections",
            "api_url": "/api.xro/2.0",
        },
    ),
    "quickbooks": Vendor(
        connector="webapp.connectors.quickbooks:QuickBooksConnector",
        dialect={
            "authorize_url": "/connect/oauth2",
            "token_url": "/oauth2/v1/tokens/bearer",
            "revoke_url": "/oauth2/tokens/revoke",
            "api_url": "/v3/company",
        },
        settings={"throttle_wait": "QUICKBOOKS_THROTTLE_WAIT"},
    ),
    "pennylane": Vendor(
        connector="webapp.connectors.pennylane:PennylaneConnector",
        dialect={
            "authorize_url": "/oauth/authorize",
            "token_url": "/oauth/token",
            "revoke_url": "/oauth/revoke",
            "api_url": "/api/external/v2",
        },
    ),
    "sage": Vendor(
        connector="webapp.connectors.sage:SageConnector",
        dialect={
            "authorize_url": "/oauth2/auth/central?filter=apiv3.1",
            "token_url": "/token",
            "revoke_url": "/revoke",
            "api_url": "/v3.1",
        },
    ),
}


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
        return _unavailable(base, _("Le logiciel de démonstration est désactivé sur ce serveur."))
    prefix = VENDOR_PREFIX[key]
    if config.get(f"{prefix}_CLIENT_ID") and config.get(f"{prefix}_CLIENT_SECRET"):
        return base
    if config["SANDBOX_ENABLED"]:
        return Software(
            key=base.key,
            name=base.name,
            summary=_(
                "%(summary)s Ici, la version bac à sable de %(software)s : les sociétés de Compta Démo au "
                "format %(software)s.",
                summary=base.summary,
                software=base.name,
            ),
            through_sandbox=True,
            guide=base.guide,
        )
    return _unavailable(
        base,
        _(
            "Non disponible : les identifiants de l'application %(software)s ne sont pas configurés "
            "(%(prefix)s_CLIENT_ID et %(prefix)s_CLIENT_SECRET).",
            software=base.name,
            prefix=prefix,
        ),
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


def get_connector(key: str, *, company_id: str | None = None) -> Connector:
    """The connector of software `key`. Given the company it acts for (`Integration.company_id`), its
    calls keep to that company's shared budget (webapp.connectors.limits); connecting, before the
    company is known, goes without."""
    connector = _build_connector(key)
    http = getattr(connector, "http", None)
    if http is not None:
        http.vendor = key
        if company_id:
            from webapp.connectors.limits import budget_for

            http.budget = budget_for(key, company_id)
    return connector


def _build_connector(key: str) -> Connector:
    if key not in CATALOGUE or not software_status(key).available:
        raise KeyError(key)
    config = current_app.config
    policy = RetryPolicy.from_config(config)
    # Unset, each connector reads the largest page its software allows; set, no more than that.
    sizing = {"page_size": config["LIST_PAGE_SIZE"]} if config["LIST_PAGE_SIZE"] else {}
    if key == "sandbox":
        from webapp.connectors.sandbox import SandboxConnector

        return SandboxConnector(
            base_url=sandbox_base_url(),
            client_id=config["SANDBOX_CLIENT_ID"],
            client_secret=config["SANDBOX_CLIENT_SECRET"],
            policy=policy,
            **sizing,
        )
    vendor = VENDORS[key]
    prefix = VENDOR_PREFIX[key]
    if software_status(key).through_sandbox:
        root = f"{sandbox_base_url()}/{key}"
        urls = {name: f"{root}{path}" for name, path in vendor.dialect.items()}
        client_id, client_secret = config["SANDBOX_CLIENT_ID"], config["SANDBOX_CLIENT_SECRET"]
    else:
        urls = {name: config[f"{prefix}_{name.upper()}"] for name in vendor.dialect}
        client_id, client_secret = config[f"{prefix}_CLIENT_ID"], config[f"{prefix}_CLIENT_SECRET"]
    module_name, class_name = vendor.connector.split(":")
    connector_class = getattr(importlib.import_module(module_name), class_name)
    return connector_class(
        client_id=client_id,
        client_secret=client_secret,
        policy=policy,
        **sizing,
        **urls,
        **{argument: config[setting] for argument, setting in vendor.settings.items()},
    )
