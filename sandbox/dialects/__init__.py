"""The sandbox's data served in each vendor's wire format, so the real connectors run unchanged against it.

One module per vendor; each is a blueprint under /sandbox/<vendor>/ over the same companies, lists,
grants and invoices as the sandbox's own API ('Compta Démo').
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from flask import request
from sqlalchemy import select

from sandbox.models import SandboxCompany, SandboxGrant, SandboxToken
from webapp.extensions import db

TENANT_NAMESPACE = uuid.UUID("6f1c1d0e-4a3b-5c2d-8e9f-0a1b2c3d4e5f")


def tenant_guid(company_id: str) -> str:
    """A company's identifier as a GUID, stable across runs (vendors identify companies by GUID)."""
    return str(uuid.uuid5(TENANT_NAMESPACE, company_id))


def company_for_guid(guid: str) -> SandboxCompany | None:
    for company in db.session.scalars(select(SandboxCompany)):
        if tenant_guid(company.id) == guid:
            return company
    return None


@dataclass
class BearerCheck:
    """What the bearer token of the request gives access to, or why it gives none."""

    token: SandboxToken | None = None
    grant: SandboxGrant | None = None
    company: SandboxCompany | None = None
    problem: str = ""  # "missing", "expired", "revoked"
    expired_at: float | None = None


def check_bearer() -> BearerCheck:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return BearerCheck(problem="missing")
    token = SandboxToken.by_access_token(header[7:])
    if token is None:
        return BearerCheck(problem="missing")
    if token.revoked or token.is_expired():
        return BearerCheck(token=token, problem="expired", expired_at=token.issued_at + token.expires_in)
    grant = db.session.get(SandboxGrant, token.grant_id)
    if grant is None or grant.revoked_at is not None:
        return BearerCheck(token=token, grant=grant, problem="revoked")
    return BearerCheck(token=token, grant=grant, company=db.session.get(SandboxCompany, token.company_id))


def now_ms() -> int:
    return int(time.time() * 1000)
