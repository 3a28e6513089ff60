"""Security headers on every response, and proxy trust when configured."""

from __future__ import annotations

from flask import Flask, Response, current_app
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    ]
)


def init_app(app: Flask) -> None:
    hops = app.config.get("TRUST_PROXY_HEADERS", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    app.after_request(set_security_headers)


def set_security_headers(response: Response) -> Response:
    production = current_app.config.get("RACCORD_ENV") == "production"
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
    if production:
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    if response.mimetype == "text/html":
        # Pages and fragments share URLs: caches must keep them apart.
        response.vary.add("HX-Request")
        if hasattr(current_app, "login_manager") and current_user.is_authenticated:
            headers.setdefault("Cache-Control", "no-store")
    return response
