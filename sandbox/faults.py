"""Sandbox settings, and the faults it injects for the next N calls: latency, 429 with Retry-After,
5xx, a garbled JSON body, or the connection closed without an answer."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from flask import Response, request
from sqlalchemy import select

from sandbox.models import SandboxSetting
from webapp.extensions import db


def get_setting(key: str, default: Any = None) -> Any:
    row = db.session.get(SandboxSetting, key)
    return default if row is None else row.value


def set_setting(key: str, value: Any) -> None:
    row = db.session.get(SandboxSetting, key)
    if row is None:
        db.session.add(SandboxSetting(key=key, value=value))
    else:
        row.value = value
    db.session.commit()


def apply_faults() -> Response | None:
    """Called before each API and token call: wait if asked, and answer the next fault if one is due."""
    latency_ms = int(get_setting("latency_ms", 0) or 0)
    if latency_ms:
        time.sleep(latency_ms / 1000)
    row = db.session.execute(
        select(SandboxSetting).where(SandboxSetting.key == "faults").with_for_update()
    ).scalar_one_or_none()
    if row is None or not row.value or int(row.value.get("count", 0)) <= 0:
        db.session.rollback()
        return None
    fault = dict(row.value)
    fault["count"] = int(fault["count"]) - 1
    row.value = fault
    db.session.commit()
    status = int(fault.get("status", 503))
    kind = fault.get("kind", "status")
    if kind == "malformed":
        return Response('{"items": [', status=200, mimetype="application/json")
    if kind == "drop":
        # The connection is closed under the caller, which reads no answer at all (the dev server
        # and gunicorn both hand the socket to the app).
        sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        return Response(status=503)
    if status == 429:
        retry_after = str(int(fault.get("retry_after", 1)))
        body = {"error": "rate_limited", "message": "Too many requests"}
        return Response(
            json.dumps(body), status=429, mimetype="application/json", headers={"Retry-After": retry_after}
        )
    return Response(
        json.dumps({"error": "server_error", "message": "Service temporarily unavailable"}),
        status=status,
        mimetype="application/json",
    )
