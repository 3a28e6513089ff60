"""The sandbox's dialects enforce each vendor's rate limits when switched on, and answer the calls past
them as the vendor does (Xero's 429 with Retry-After and X-Rate-Limit-Problem, Intuit's
ThrottleExceeded Fault without Retry-After, Pennylane's plain text with its ratelimit-* headers,
Sage's error array); calls within them pass. Calls in progress are counted over a real port, by
parallel threads; the counts the controls give tests are right; with the limits off (the default)
nothing changes."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
import requests
from sqlalchemy import select

from sandbox.dialects import tenant_guid
from sandbox.dialects.quickbooks import realm_of
from tests.conftest import SANDBOX_CONTROL_TOKEN, make_app, sandbox_tokens
from tests.http_user import COMPANY, controls_api

CONTROL = {"Authorization": f"Bearer {SANDBOX_CONTROL_TOKEN}"}
LIMITS = "/sandbox/controls/api/limits"
REALM = realm_of(COMPANY)
#: One call of each dialect's API, and the headers it needs besides the bearer.
CALLS = {
    "xero": ("/sandbox/xero/api.xro/2.0/Accounts", {"xero-tenant-id": tenant_guid(COMPANY)}),
    "quickbooks": (f"/sandbox/quickbooks/v3/company/{REALM}/companyinfo/{REALM}", {}),
    "pennylane": ("/sandbox/pennylane/api/external/v2/me", {}),
    "sage": ("/sandbox/sage/v3.1/ledger_accounts", {}),
}
#: The window each test narrows, per vendor.
WINDOW = {
    "xero": "per_minute",
    "quickbooks": "per_minute",
    "pennylane": "per_5_seconds",
    "sage": "per_minute",
}


class Dialects:
    """The sandbox's dialects through the app's test client, with a live token to the demo company."""

    def __init__(self, app, access: str):
        self.app, self.access = app, access
        self.client = app.test_client()

    def call(self, vendor: str, access: str | None = None):
        path, headers = CALLS[vendor]
        return self.client.get(path, headers={"Authorization": f"Bearer {access or self.access}", **headers})

    def limits(self, body: dict):
        answer = self.client.post(LIMITS, json=body, headers=CONTROL)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()["limits"]

    def counts(self) -> dict:
        answer = self.client.get(LIMITS, headers=CONTROL)
        assert answer.status_code == 200
        return answer.get_json()["counts"]


@pytest.fixture
def dialects(job_app) -> Dialects:
    _company, access, _refresh = sandbox_tokens(job_app, company_id=COMPANY)
    return Dialects(job_app, access)


def _another_token(app) -> str:
    from webapp.sandbox_host import grant_tokens

    access, _refresh = grant_tokens(
        app, company_id=COMPANY, scope="lists invoices", access_ttl=3600, refresh_ttl=86400
    )
    return access


# --- off by default ---------------------------------------------------------------------------------


def test_off_by_default_nothing_is_refused_or_counted(dialects):
    for vendor in CALLS:
        answers = [dialects.call(vendor) for _ in range(30)]  # past Pennylane's 25 in 5 s
        assert {a.status_code for a in answers} == {200}, vendor
    assert dialects.counts() == {}
    limits = dialects.client.get(LIMITS, headers=CONTROL).get_json()["limits"]
    assert limits["on"] is False


# --- each vendor's 429 ------------------------------------------------------------------------------


def test_xero_past_the_minute_limit_answers_429_minute_and_says_what_remains(dialects):
    dialects.limits({"xero": {"per_minute": {"calls": 3, "seconds": 60}}})
    passed = [dialects.call("xero") for _ in range(3)]
    assert [a.status_code for a in passed] == [200, 200, 200]
    assert [a.headers["X-MinLimit-Remaining"] for a in passed] == ["2", "1", "0"]
    assert [a.headers["X-DayLimit-Remaining"] for a in passed] == ["4999", "4998", "4997"]
    assert [a.headers["X-AppMinLimit-Remaining"] for a in passed] == ["9999", "9998", "9997"]

    refused = dialects.call("xero")
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    assert refused.headers["X-DayLimit-Remaining"] == "4997"  # a refused call is not counted
    assert refused.get_data() == b""

    (counts,) = dialects.counts()["xero"].values()
    assert counts["accepted"] == 3 and counts["refused"] == 1
    assert counts["refused_by"] == {"minute": 1}
    assert counts["max_in_window"] == {"per_minute": 3, "per_day": 3, "app_per_minute": 3}


@pytest.mark.parametrize(
    ("figures", "problem"),
    [
        ({"per_day": {"calls": 2, "seconds": 3600}}, "day"),
        ({"app_per_minute": 2}, "appminute"),
        # Past two limits, Xero names the one to wait for longest.
        ({"per_minute": 2, "per_day": {"calls": 2, "seconds": 30}}, "minute"),
        ({"per_minute": 2, "per_day": {"calls": 2, "seconds": 600}}, "day"),
    ],
)
def test_xero_names_the_limit_it_refuses_for(dialects, figures, problem):
    dialects.limits({"xero": figures})
    assert [dialects.call("xero").status_code for _ in range(2)] == [200, 200]
    refused = dialects.call("xero")
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == problem
    assert dialects.counts()["xero"][COMPANY]["refused_by"] == {problem: 1}


def test_quickbooks_past_its_limit_answers_throttle_exceeded_without_retry_after(dialects):
    dialects.limits({"quickbooks": {"per_minute": {"calls": 2, "seconds": 60}}})
    assert [dialects.call("quickbooks").status_code for _ in range(2)] == [200, 200]
    refused = dialects.call("quickbooks")
    assert refused.status_code == 429
    assert "Retry-After" not in refused.headers
    body = refused.get_json()
    assert body["Fault"] == {
        "Error": [
            {
                "Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                "Detail": "The request limit was reached.",
                "code": "003001",
            }
        ],
        "type": "SERVICE",
    }
    assert abs(datetime.fromisoformat(body["time"]).timestamp() - time.time()) < 60
    assert dialects.counts()["quickbooks"][COMPANY]["refused_by"] == {"minute": 1}


def test_pennylane_counts_per_token_and_answers_in_plain_text(dialects):
    dialects.limits({"pennylane": {"per_5_seconds": {"calls": 3, "seconds": 30}}})
    passed = [dialects.call("pennylane") for _ in range(3)]
    assert [a.status_code for a in passed] == [200, 200, 200]
    assert [a.headers["ratelimit-remaining"] for a in passed] == ["2", "1", "0"]
    assert {a.headers["ratelimit-limit"] for a in passed} == {"3"}
    first_reset = int(passed[0].headers["ratelimit-reset"])
    assert 0 < first_reset - time.time() <= 31

    refused = dialects.call("pennylane")
    assert refused.status_code == 429 and refused.mimetype == "text/plain"
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 30
    assert refused.get_data(as_text=True) == f"Rate limit exceeded. Please retry in {wait} seconds."
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) == first_reset

    # The limit is the token's: another token to the same company has its own 3.
    other = _another_token(dialects.app)
    assert dialects.call("pennylane", access=other).status_code == 200
    counts = dialects.counts()["pennylane"][COMPANY]
    assert counts["accepted"] == 4 and counts["refused"] == 1
    assert counts["max_in_window"] == {"per_5_seconds": 3}


def test_sage_past_its_limit_answers_429_with_retry_after_and_its_error_array(dialects):
    dialects.limits({"sage": {"per_minute": {"calls": 2, "seconds": 60}}})
    assert [dialects.call("sage").status_code for _ in range(2)] == [200, 200]
    refused = dialects.call("sage")
    assert refused.status_code == 429
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.get_json() == [
        {
            "$severity": "error",
            "$dataCode": "TooManyRequests",
            "$message": "Too many requests, please retry later",
            "$source": "",
        }
    ]


@pytest.mark.parametrize("vendor", list(CALLS))
def test_a_window_slides_calls_pass_again_once_the_oldest_has_left_it(dialects, vendor):
    dialects.limits({vendor: {WINDOW[vendor]: {"calls": 2, "seconds": 1.5}}})
    first = time.monotonic()
    assert [dialects.call(vendor).status_code for _ in range(2)] == [200, 200]
    assert dialects.call(vendor).status_code == 429
    deadline = time.monotonic() + 10
    while (answer := dialects.call(vendor)).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer.status_code == 200
    assert time.monotonic() - first >= 1.4
    counts = dialects.counts()[vendor][COMPANY]
    assert counts["accepted"] == 3
    assert counts["max_in_window"][WINDOW[vendor]] == 2  # never more than the limit in any window


def test_the_oauth_pages_and_other_dialects_are_not_limited(dialects):
    dialects.limits({"xero": {"per_minute": 1}})
    assert dialects.call("xero").status_code == 200
    assert dialects.call("xero").status_code == 429
    assert dialects.call("quickbooks").status_code == 200  # its own limits, far away
    connections = dialects.client.get(
        "/sandbox/xero/connections", headers={"Authorization": f"Bearer {dialects.access}"}
    )
    assert connections.status_code == 200


# --- calls in progress, over a real port --------------------------------------------------------------


def _burst(url: str, headers: dict, count: int) -> list[requests.Response]:
    """`count` calls sent at once, each from its own thread."""
    barrier = threading.Barrier(count)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def one():
        barrier.wait(timeout=10)
        answer = requests.get(url, headers=headers, timeout=30)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


@pytest.mark.parametrize(("vendor", "concurrent"), [("xero", 2), ("quickbooks", 3)])
def test_calls_in_progress_past_the_limit_are_refused(dialects, live, vendor, concurrent):
    limits = f"{live.url}{LIMITS}"
    # Each accepted call stays 800 ms at the 'vendor': the burst's calls overlap.
    answer = controls_api.post(limits, json={vendor: {"concurrent": concurrent}, "service_ms": 800})
    assert answer.status_code == 200
    path, extra = CALLS[vendor]
    answers = _burst(f"{live.url}{path}", {"Authorization": f"Bearer {dialects.access}", **extra}, 7)

    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 429} and len(statuses) == 7
    if vendor == "xero":
        assert {a.headers["X-Rate-Limit-Problem"] for a in answers if a.status_code == 429} == {"concurrent"}
        assert {a.headers["Retry-After"] for a in answers if a.status_code == 429} == {"1"}
    else:
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["Fault"]["Error"][0]["code"] == "003001"
    counts = controls_api.get(limits).json()["counts"][vendor][COMPANY]
    assert counts["max_concurrent"] == concurrent
    assert counts["accepted"] == statuses.count(200) and counts["refused"] == statuses.count(429)
    assert counts["refused_by"] == {"concurrent": statuses.count(429)}
    assert counts["in_progress"] == 0  # every call that ended gave its place back


def test_observing_only_counts_without_refusing(dialects, live):
    limits = f"{live.url}{LIMITS}"
    body = {"observe_only": True, "xero": {"concurrent": 2, "per_minute": 3}, "service_ms": 800}
    controls_api.post(limits, json=body)
    path, extra = CALLS["xero"]
    answers = _burst(f"{live.url}{path}", {"Authorization": f"Bearer {dialects.access}", **extra}, 6)
    assert {a.status_code for a in answers} == {200}
    counts = controls_api.get(limits).json()["counts"]["xero"][COMPANY]
    assert counts["accepted"] == 6 and counts["refused"] == 0
    assert counts["max_concurrent"] > 2  # what a test asserting "never past the limit" would catch
    assert counts["max_in_window"]["per_minute"] == 6


def test_a_call_that_fails_gives_its_place_back(dialects, monkeypatch):
    sandbox = dialects.app.extensions["raccord.sandbox"]

    def broken(**_kwargs):
        raise RuntimeError("the view failed")

    monkeypatch.setitem(sandbox.view_functions, "sandbox_xero_api.accounts", broken)
    dialects.limits({"xero": {"concurrent": 1}})
    with pytest.raises(RuntimeError):  # the tests' apps let errors through
        dialects.call("xero")
    assert dialects.counts()["xero"][COMPANY]["in_progress"] == 0
    monkeypatch.undo()
    assert dialects.call("xero").status_code == 200  # its place is free


# --- switching on and off, the counts ---------------------------------------------------------------


def test_the_host_setting_switches_on_the_vendors_own_figures(database_url, redis_url):
    app = make_app(database_url, REDIS_URL=redis_url, SANDBOX_VENDOR_LIMITS=True)
    _company, access, _refresh = sandbox_tokens(app, company_id=COMPANY)
    dialects = Dialects(app, access)
    dialects.client.post(f"{LIMITS}/reset", json={}, headers=CONTROL)
    limits = dialects.client.get(LIMITS, headers=CONTROL).get_json()["limits"]
    assert limits["on"] is True
    assert limits["vendors"]["xero"] == {
        "concurrent": 5,
        "per_minute": {"calls": 60, "seconds": 60},
        "per_day": {"calls": 5000, "seconds": 86400},
        "app_per_minute": {"calls": 10000, "seconds": 60},
    }
    assert limits["vendors"]["pennylane"] == {"per_5_seconds": {"calls": 25, "seconds": 5}}
    answers = [dialects.call("xero") for _ in range(2)]
    assert [a.headers["X-MinLimit-Remaining"] for a in answers] == ["59", "58"]
    pennylane = [dialects.call("pennylane") for _ in range(26)]
    assert [a.status_code for a in pennylane] == [200] * 25 + [429]
    # The controls switch them off again, whatever the host says.
    dialects.limits({"on": False})
    assert dialects.call("pennylane").status_code == 200
    dialects.client.post(f"{LIMITS}/reset", json={}, headers=CONTROL)


def test_counts_are_per_company_and_reset(dialects):
    from sandbox.models import SandboxCompany
    from webapp.extensions import db

    dialects.limits({"sage": {"per_minute": 5}})
    sandbox = dialects.app.extensions["raccord.sandbox"]
    with sandbox.app_context():
        other = db.session.scalar(select(SandboxCompany.id).where(SandboxCompany.id != COMPANY))
    _c, other_access, _r = sandbox_tokens(dialects.app, company_id=other)
    for _ in range(2):
        dialects.call("sage")
    dialects.call("sage", access=other_access)
    counts = dialects.counts()["sage"]
    assert counts[COMPANY]["accepted"] == 2 and counts[other]["accepted"] == 1
    assert counts[COMPANY]["max_in_window"] == {"per_minute": 2, "per_day": 2}
    reset = dialects.client.post(f"{LIMITS}/reset", json={}, headers=CONTROL)
    assert reset.status_code == 200 and reset.get_json()["counts"] == {}
    assert dialects.counts() == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"xero": {"per_hour": 3}}, "xero n'a pas de limite per_hour"),
        ({"xero": {"per_minute": 0}}, "xero.per_minute doit être un nombre entier entre 1"),
        ({"pennylane": {"per_5_seconds": {"calls": 3, "seconds": -1}}}, "seconds doit être compris"),
        ({"sage": {"per_minute": {"calls": "3"}}}, "sage.per_minute.calls doit être un nombre entier"),
        ({"on": "yes"}, "on et observe_only valent true ou false"),
        ({"service_ms": 10**9}, "service_ms doit être un nombre entier"),
        ({"myob": {}}, "Réglage inconnu : myob"),
        ([1, 2], "Le corps doit être un objet JSON"),
    ],
)
def test_bad_figures_are_refused_and_change_nothing(dialects, body, message):
    answer = dialects.client.post(LIMITS, json=body, headers=CONTROL)
    assert answer.status_code == 400 and message in answer.get_json()["error"]
    assert dialects.client.get(LIMITS, headers=CONTROL).get_json()["limits"]["on"] is False


def test_the_controls_need_the_token_or_staff(dialects):
    assert dialects.client.get(LIMITS).status_code == 401
    assert dialects.client.post(LIMITS, json={"on": True}).status_code == 401
    assert dialects.client.post(f"{LIMITS}/reset", json={}).status_code == 401
    assert dialects.client.get(LIMITS, headers=CONTROL).get_json()["limits"]["on"] is False


# --- through the vendors' own libraries --------------------------------------------------------------


def test_xero_python_reads_the_refusal_as_a_rate_limit(dialects, live):
    """The library (its HTTP pool) waits Retry-After and tries again three times, then raises its
    RateLimitException naming the limit: here one call held in progress at the 'vendor' keeps the
    organisation's only place while the library tries."""
    from xero_python.accounting import AccountingApi
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import OAuth2Token
    from xero_python.exceptions import RateLimitException

    limits = f"{live.url}{LIMITS}"
    controls_api.post(limits, json={"xero": {"concurrent": 1}, "service_ms": 6000})
    path, extra = CALLS["xero"]
    holder = threading.Thread(
        target=requests.get,
        args=(f"{live.url}{path}",),
        kwargs={"headers": {"Authorization": f"Bearer {dialects.access}", **extra}, "timeout": 30},
    )
    holder.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        counts = controls_api.get(limits).json()["counts"]
        if counts.get("xero", {}).get(COMPANY, {}).get("in_progress") == 1:
            break
        time.sleep(0.05)
    token = {"access_token": dialects.access, "token_type": "Bearer", "expires_in": 1800, "scope": []}
    client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id="raccord", client_secret="unused")),
        oauth2_token_getter=lambda: token,
        oauth2_token_saver=token.update,
    )
    accounting = AccountingApi(client, base_url=f"{live.url}/sandbox/xero/api.xro/2.0")
    with pytest.raises(RateLimitException) as raised:
        accounting.get_accounts(tenant_guid(COMPANY))
    assert raised.value.status == 429 and raised.value.rate_limit == "concurrent"
    assert raised.value.headers["Retry-After"] == "1"
    holder.join(timeout=30)
    counts = controls_api.get(limits).json()["counts"]["xero"][COMPANY]
    assert counts["accepted"] == 1 and counts["refused"] == 4 and counts["in_progress"] == 0
