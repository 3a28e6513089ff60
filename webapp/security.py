"""Security headers on every response, and proxy trust when configured."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

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
VENDORS = ("XERO", "QUICKBOOKS", "PENNYLANE", "SAGE")
#: Where a vendor's sign-in goes beyond the domain of its authorisation page (Sage ID).
SIGN_IN_ELSEWHERE = {"SAGE": ("https://*.sage.com",)}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


@lru_cache(maxsize=16)
def _policy(form_targets: tuple[str, ...]) -> str:
    return f"{CONTENT_SECURITY_POLICY}; form-action 'self' {' '.join(form_targets)}".rstrip()


def form_action_targets(config) -> tuple[str, ...]:
    """Where a form may send the browser: this app, and the authorisation pages of the software it
    connects to ('Connecter' posts here, then redirects there, and the browser checks the redirect
    too). A vendor's sign-in moves between the hosts of its own domain: its whole domain is allowed."""
    targets: list[str] = []
    for vendor in VENDORS:
        if not (config.get(f"{vendor}_CLIENT_ID") and config.get(f"{vendor}_CLIENT_SECRET")):
            continue
        parts = urlsplit(config.get(f"{vendor}_AUTHORIZE_URL") or "")
        if parts.scheme == "https" and parts.hostname and parts.hostname.count(".") >= 1:
            domain = ".".join(parts.hostname.split(".")[-2:])
            targets += [_origin(parts.geturl()), f"https://*.{domain}", *SIGN_IN_ELSEWHERE.get(vendor, ())]
        elif parts.scheme and parts.netloc:  # a proxy or a vendor's test host given by its address
            targets.append(_origin(parts.geturl()))
    if config.get("SANDBOX_ENABLED") and config.get("SANDBOX_BASE_URL"):
        targets.append(_origin(config["SANDBOX_BASE_URL"]))  # 'Compta Démo' served from elsewhere
    return tuple(dict.fromkeys(t for t in targets if t))


def init_app(app: Flask) -> None:
    hops = app.config.get("TRUST_PROXY_HEADERS", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    app.after_request(set_security_headers)


def set_security_headers(response: Response) -> Response:
    production = current_app.config.get("RACCORD_ENV") == "production"
    headers = response.headers
    headers.setdefault("Content-Security-Policy", _policy(form_action_targets(current_app.config)))
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
            # Kept by no one; a fragment with an ETag (webapp.fragments.conditional) is kept by
            # this browser only, and asked again each time.
            headers.setdefault("Cache-Control", "no-store")
    return response
