"""A user's browser as plain HTTP, for tests that go through the app and the sandbox over a real port."""

from __future__ import annotations

import json
import re

import requests
from sqlalchemy import select

from tests.conftest import SANDBOX_CONTROL_TOKEN, plain_spaces, run_worker_burst, unescaped
from webapp.extensions import db
from webapp.models import Integration

COMPANY = "cmp-boulangerie-martin"


class ControlsApi:
    """The sandbox's controls JSON API as automation calls it: with the configured token."""

    headers = {"Authorization": f"Bearer {SANDBOX_CONTROL_TOKEN}"}

    def get(self, url: str, **kwargs) -> requests.Response:
        return self._send("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> requests.Response:
        return self._send("POST", url, **kwargs)

    def _send(self, method: str, url: str, *, timeout: float = 10, **kwargs) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, url, headers=headers, timeout=timeout, **kwargs)


controls_api = ControlsApi()
_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"|name="csrf_token" value="([^"]+)"')


def toast_of(response: requests.Response) -> str:
    """The toast's text, with French typography's no-break spaces as ordinary ones (see text_of)."""
    return plain_spaces(json.loads(response.headers["HX-Trigger"])["raccord:toast"]["message"])


def token_in(page: str) -> str:
    match = _TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


_open: list[Browser] = []


def close_browsers() -> None:
    """Close every browser's connections when a test ends (else the garbage collector closes them
    during a later test, and the ResourceWarning lands there)."""
    while _open:
        _open.pop().close()


class Browser:
    """A user's browser, as plain HTTP: cookies, forms with their CSRF token, redirects."""

    def __init__(self, base_url: str):
        self.base = base_url
        self.http = requests.Session()
        _open.append(self)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(path if path.startswith("http") else self.base + path, timeout=30, **kwargs)

    def post_form(
        self, path: str, data: dict, *, page: str, htmx: bool = False, **kwargs
    ) -> requests.Response:
        token = token_in(self.get(page).text)
        headers = {"X-CSRFToken": token, "HX-Request": "true"} if htmx else {}
        url = path if path.startswith("http") else self.base + path
        return self.http.post(url, data={**data, "csrf_token": token}, headers=headers, timeout=60, **kwargs)

    def login(self, email: str, password: str) -> None:
        response = self.post_form("/login", {"email": email, "password": password}, page="/login")
        assert response.url.endswith("/dossiers"), response.url

    def connect(
        self,
        dossier_id: int,
        *,
        company: str | None = COMPANY,
        decision: str = "allow",
        software: str = "sandbox",
    ) -> requests.Response:
        """'Connecter' on 'Logiciels disponibles', then the software's consent page."""
        start = self.post_form(
            f"/dossiers/{dossier_id}/connexions/{software}/connecter",
            {},
            page=f"/dossiers/{dossier_id}/parametres/connexions",
            allow_redirects=False,
        )
        assert start.status_code == 302
        authorize_url = start.headers["Location"]
        consent = self.get(authorize_url)
        assert "Autoriser Raccord" in unescaped(consent.text)
        form = {"decision": decision, "csrf_token": token_in(consent.text)}
        if company:
            form["company_id"] = company
        return self.http.post(authorize_url, data=form, timeout=60)


def connected(job_app, browser: Browser, dossier_id: int, software: str = "sandbox") -> int:
    response = browser.connect(dossier_id, software=software)
    assert response.status_code == 200
    run_worker_burst(job_app)
    with job_app.app_context():
        return db.session.scalar(
            select(Integration.id)
            .where(Integration.dossier_id == dossier_id, Integration.status != "disconnected")
            .order_by(Integration.id.desc())
        )
