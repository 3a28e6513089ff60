"""Who is in front of the sandbox: the organisation that owns what they may see, and whether they
may use the controls. The sandbox does not sign anyone in; the host that mounts it (Raccord) reads
its own session and says so in the WSGI environ, under keys no HTTP client can set. The controls'
JSON API also accepts the token given by configuration (tests, support automation)."""

from __future__ import annotations

import hmac

from flask import current_app, request

#: The environ keys the host sets: the owner key of the signed-in user's organisation, and "1" for staff.
OWNER_ENVIRON_KEY = "raccord.sandbox.owner"
STAFF_ENVIRON_KEY = "raccord.sandbox.staff"


def signed_in_owner() -> str | None:
    owner = request.environ.get(OWNER_ENVIRON_KEY)
    return owner if isinstance(owner, str) and owner else None


def signed_in_staff() -> bool:
    return request.environ.get(STAFF_ENVIRON_KEY) == "1"


def has_control_token() -> bool:
    expected = current_app.config.get("SANDBOX_CONTROL_TOKEN")
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].encode(), expected.encode())
