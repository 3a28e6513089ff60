"""Every route fuzzed with hypothesis, through its path and its query string (and, in the sandbox,
its headers and JSON body): whatever comes, no error 500 and no trace, on SQLite and PostgreSQL.

tests/test_fuzz_forms.py fuzzes the forms of Raccord's POST routes; here come Raccord's pages (as a
member and as staff) and every route of 'Compta Démo' and its vendors' dialects."""

from __future__ import annotations

import json
import os
import re
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SANDBOX_CONTROL_TOKEN, login, sandbox_tokens, unescaped
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.models import ListKind, Role

#: Values that broke a page once, or sit at an edge: ids beyond INTEGER and BIGINT, a NUL, a
#: backslash before an @ (a URL parser's trap), digits of other scripts, long text.
EDGES = [
    "",
    "0",
    "-1",
    "1",
    str(2**31 - 1),
    str(2**31),
    str(2**63 - 1),
    str(2**63),
    "99999999999999999999",
    "9" * 40,
    "1e309",
    "NaN",
    "²",
    "١٢",
    " 7",
    "\x00",
    "a\x00b",
    "%00",
    "http://127.0.0.1/oauth/callback\\@evil.test",
    "http://evil.test\\@127.0.0.1/oauth/callback",
    "2026-02-30",
    "2026-11-02T10:00:00",
    "Mon, 01 Jan 0001 00:00:00 GMT",
    '[{"field":"name","operator":"eq","value":"x"}]',
    "[{",
    'Name=="EDF"',
    "SELECT * FROM Vendor STARTPOSITION 99999999999999999999 MAXRESULTS -1",
    "true",
    "é" * 300,
    "0001-01-01T00:00:00+01:00",  # a date that leaves what a datetime holds once in UTC
    "9999-12-31T23:59:59-01:00",
    "2020-01-01",  # a date without its zone
    "1e999",
    "http://127.0.0.1:99999/oauth/callback",  # a port no URL has
]
VALUES = st.one_of(
    st.sampled_from(EDGES),
    st.text(max_size=30),
    st.integers(min_value=-(2**65), max_value=2**65).map(str),
)

#: Every name a route reads from the query string (Raccord's and the sandbox's), and a few more.
QUERY_NAMES = (
    "q",
    "page",
    "statut",
    "integration",
    "avant",
    "categorie",
    "resultat",
    "item",
    "next",
    "suivi",
    "search",
    "cursor",
    "limit",
    "where",
    "order",
    "includeArchived",
    "updated_since",
    "updated_or_created_since",
    "start_date",
    "searchTerm",
    "query",
    "pageSize",
    "items_per_page",
    "filter",
    "filter_inactive_contacts",
    "filter_inactive_bank_accounts",
    "contact_type_id",
    "contact_id",
    "attachment_context_id",
    "idempotency_key",
    "requestid",
    "minorversion",
    "authEventId",
    "state",
    "code",
    "error",
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "code_challenge",
    "code_challenge_method",
)
QUERIES = st.dictionaries(st.sampled_from(QUERY_NAMES), VALUES, max_size=5)

#: The suite's runs are the same every time (derandomize): a red run is a finding, not luck. A longer,
#: random search for new findings: FUZZ_EXAMPLES=500 make test-fast T=tests/test_fuzz_routes.py
EXAMPLES = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")),
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _fill(rule: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[\w]+:)?(\w+)>", lambda m: values[m.group(1)], rule)


def _assert_no_error(response, what) -> None:
    body = response.get_data(as_text=True)
    response.close()  # a file sent (the htmx script, a PDF) is closed now, not by the garbage collector
    assert response.status_code < 500, (what, response.status_code, body[:300])
    assert "Traceback" not in body, what


# --- Raccord's pages ---------------------------------------------------------------------------------


@pytest.fixture
def world(app_ctx):
    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin", "732829320")
    integration = make_integration(dossier)
    item = make_item(integration, ListKind.SUPPLIERS, "EDF")
    make_item(integration, ListKind.ACCOUNTS, "Électricité", code="606100")
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    make_user(make_organisation("Raccord"), "support@raccord.test", "mot-de-passe-support", role=Role.STAFF)
    return {"dossier_id": str(dossier.id), "integration_id": str(integration.id), "item_id": str(item.id)}


def test_every_page_of_raccord_survives_any_path_and_query(app, world):
    member, staff = app.test_client(), app.test_client()
    login(member, "claire@lefevre.test", "bon-mot-de-passe")
    login(staff, "support@raccord.test", "mot-de-passe-support")
    known = {"kind": "suppliers", "slug": "fournisseurs", "software": "sandbox", "filename": "f.pdf"}
    rules = sorted(
        (rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and rule.endpoint != "static"),
        key=lambda rule: rule.rule,
    )
    assert len(rules) >= 25
    for rule in rules:
        _visit_raccord(rule, staff if rule.rule.startswith("/support") else member, world, known)


def _visit_raccord(rule, user, world: dict, known: dict) -> None:
    @EXAMPLES
    @given(
        path=st.fixed_dictionaries({a: st.one_of(VALUES, st.just("1")) for a in rule.arguments}),
        query=QUERIES,
        htmx=st.booleans(),
    )
    def visit(path, query, htmx):
        values = {**world, **known, **{k: v for k, v in path.items() if k not in world or v != "1"}}
        url = _fill(rule.rule, {k: _quote(v) for k, v in values.items()})
        response = user.get(url, query_string=query, headers={"HX-Request": "true"} if htmx else {})
        _assert_no_error(response, (rule.rule, url, query))

    visit()


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="") or "x"


# --- the sandbox and its dialects -------------------------------------------------------------------

#: Every key the sandbox reads from a JSON body, to build bodies that reach past the first check.
BODY_KEYS = [
    "Contacts",
    "Invoices",
    "Name",
    "ContactID",
    "Contact",
    "Type",
    "Status",
    "Date",
    "DueDate",
    "LineItems",
    "LineAmountTypes",
    "AccountCode",
    "TaxType",
    "UnitAmount",
    "Quantity",
    "Reference",
    "InvoiceNumber",
    "CurrencyCode",
    "TaxNumber",
    "CompanyNumber",
    "IsSupplier",
    "IsCustomer",
    "DisplayName",
    "VendorRef",
    "CustomerRef",
    "AccountRef",
    "Line",
    "Amount",
    "DetailType",
    "AccountBasedExpenseLineDetail",
    "SalesItemLineDetail",
    "ItemRef",
    "IncomeAccountRef",
    "TaxCodeRef",
    "TxnDate",
    "DocNumber",
    "PrimaryEmailAddr",
    "TxnTaxDetail",
    "TotalTax",
    "AttachableRef",
    "EntityRef",
    "FileName",
    "ContentType",
    "token",
    "contact",
    "contact_type_ids",
    "name",
    "reference",
    "vendor_reference",
    "date",
    "due_date",
    "invoice_lines",
    "ledger_account_id",
    "tax_rate_id",
    "unit_price",
    "quantity",
    "tax_amount",
    "attachment",
    "file",
    "file_name",
    "mime_type",
    "attachment_context_id",
    "supplier_id",
    "customer_id",
    "invoice_number",
    "currency_amount",
    "currency_amount_before_tax",
    "currency_tax",
    "file_attachment_id",
    "external_reference",
    "label",
    "vat_rate",
    "deadline",
    "code",
    "vat_number",
    "siren",
    "reg_no",
    "registered_number",
    "tax_number",
    "iban",
    "idempotency_key",
    "kind",
    "count",
    "days",
    "external_id",
    "active",
    "rate",
]
JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        st.sampled_from(EDGES),
        st.just("a\ud800b"),  # a lone surrogate, which only JSON carries: no UTF-8 for it
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(BODY_KEYS), inner, max_size=6)
    ),
    max_leaves=12,
)
#: The controls that would slow every later call or fill the database: tested in their own tests.
SANDBOX_SKIPPED = ("/controls/api/faults", "/controls/api/settings", "/generate", "/controls/action")


@pytest.fixture
def sandbox_world(app):
    """A sandbox company with a live token, as the dialects see it."""
    from sandbox.dialects import tenant_guid
    from sandbox.dialects.quickbooks import realm_of

    company, access, _refresh = sandbox_tokens(app)
    return {"company": company, "tenant": tenant_guid(company), "realm": realm_of(company), "access": access}


def test_every_route_of_the_sandbox_survives_any_input(app, sandbox_world):
    sandbox = app.extensions["raccord.sandbox"]
    client = app.test_client()
    good = {
        "company_id": sandbox_world["company"],
        "realm": sandbox_world["realm"],
        "realm_id": sandbox_world["realm"],
        "connection_id": sandbox_world["tenant"],
        "kind": "suppliers",
        "invoice_id": "1",
        "filename": "facture.pdf",
        "external_id": "sup-000001",
    }
    rules = sorted(
        (
            r
            for r in sandbox.url_map.iter_rules()
            if r.endpoint != "static" and not any(skipped in r.rule for skipped in SANDBOX_SKIPPED)
        ),
        key=lambda r: r.rule,
    )
    assert len(rules) >= 40
    for rule in rules:
        started = time.monotonic()
        try:
            _call_sandbox(rule, client, sandbox_world, good)
        except Exception as error:
            error.add_note(f"route: {sorted(rule.methods)} /sandbox{rule.rule}")
            raise
        assert time.monotonic() - started < 60, rule.rule


def _call_sandbox(rule, client, sandbox_world: dict, good: dict) -> None:
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})

    @EXAMPLES
    @given(
        method=st.sampled_from(methods),
        path=st.fixed_dictionaries({a: st.one_of(st.just(None), VALUES) for a in rule.arguments}),
        query=QUERIES,
        body=st.one_of(st.none(), JSON, st.dictionaries(st.sampled_from(BODY_KEYS), VALUES, max_size=4)),
        as_form=st.booleans(),
        auth=st.sampled_from(["bearer", "bearer", "bearer", "control", "none", "wrong"]),
        tenant=st.sampled_from(["good", "good", "none", "other"]),
        key=st.one_of(st.none(), VALUES),
    )
    def call(method, path, query, body, as_form, auth, tenant, key):
        values = {a: good.get(a, "x") if v is None else v for a, v in path.items()}
        url = "/sandbox" + _fill(rule.rule, {k: _quote(v) for k, v in values.items()})
        headers = {
            "bearer": {"Authorization": f"Bearer {sandbox_world['access']}"},
            "control": {"Authorization": f"Bearer {SANDBOX_CONTROL_TOKEN}"},
            "none": {},
            "wrong": {"Authorization": "Bearer pas-un-jeton"},
        }[auth]
        guid = {"good": sandbox_world["tenant"], "none": "", "other": str(uuid.uuid4())}[tenant]
        if guid:
            headers |= {"xero-tenant-id": guid, "X-Business": guid}
        if key is not None:
            headers["Idempotency-Key"] = re.sub(r"[\x00\r\n]", "", key)
        kwargs = {"query_string": query, "headers": headers}
        if body is not None and method != "GET":
            form = (
                {k: v if isinstance(v, str) else str(v) for k, v in body.items()}
                if isinstance(body, dict)
                else {}
            )
            if isinstance(body, dict) and as_form and "\ud800" not in "".join(form.values()):
                kwargs["data"] = form  # (a lone surrogate has no form encoding: JSON carries it)
            else:
                kwargs["json"] = body
        response = client.open(url, method=method, **kwargs)
        _assert_no_error(response, (method, url, query, body))

    call()


#: The numbers at an edge, each tried alone in each query parameter of each route that reads one.
NUMERIC_EDGES = ["-1", str(2**31), "99999999999999999999", "²"]
SANDBOX_QUERY_NAMES = [
    "cursor",
    "limit",
    "page",
    "pageSize",
    "items_per_page",
    "contact_type_id",
    "updated_since",
    "updated_or_created_since",
    "start_date",
    "includeArchived",
]


def test_every_query_parameter_of_the_sandbox_takes_numbers_at_the_edges(app, sandbox_world):
    sandbox = app.extensions["raccord.sandbox"]
    client = app.test_client()
    guid = sandbox_world["tenant"]
    headers = {
        "Authorization": f"Bearer {sandbox_world['access']}",
        "xero-tenant-id": guid,
        "X-Business": guid,
    }
    paths = sorted(
        "/sandbox"
        + _fill(
            rule.rule,
            {
                "realm": sandbox_world["realm"],
                "realm_id": sandbox_world["realm"],
                "kind": "suppliers",
                "connection_id": guid,
            },
        )
        for rule in sandbox.url_map.iter_rules()
        if "GET" in rule.methods
        and "/controls" not in rule.rule
        and "authorize" not in rule.rule
        and rule.endpoint != "static"
        and set(rule.arguments) <= {"realm", "realm_id", "kind", "connection_id"}
    )
    assert len(paths) >= 15
    answered = set()
    for path in paths:
        for name in SANDBOX_QUERY_NAMES:
            for value in NUMERIC_EDGES:
                response = client.get(path, query_string={name: value}, headers=headers)
                _assert_no_error(response, (path, name, value))
                answered.add(response.status_code)
    for statement in (
        "SELECT * FROM Vendor STARTPOSITION 99999999999999999999 MAXRESULTS 10",
        "SELECT * FROM Vendor STARTPOSITION 1 MAXRESULTS 99999999999999999999",
        "SELECT * FROM Vendor STARTPOSITION 9223372036854775807 MAXRESULTS 1000",
        "SELECT * FROM Vendor WHERE Id = '99999999999999999999'",
    ):
        response = client.get(
            f"/sandbox/quickbooks/v3/company/{sandbox_world['realm']}/query",
            query_string={"query": statement},
            headers=headers,
        )
        _assert_no_error(response, statement)
    assert {200, 400} <= answered  # the edges reached the routes, past their checks of who asks


def test_the_sandbox_answers_a_cursor_beyond_any_id_with_an_empty_page(app, sandbox_world):
    """One of the two 500s seen from outside: Pennylane's cursor=99999999999999999999."""
    client = app.test_client()
    response = client.get(
        "/sandbox/pennylane/api/external/v2/suppliers",
        query_string={"cursor": "99999999999999999999"},
        headers={"Authorization": f"Bearer {sandbox_world['access']}"},
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "cursor is invalid", "status": 400}
    response = client.get(
        "/sandbox/pennylane/api/external/v2/suppliers",
        query_string={"cursor": str(2**63 - 1)},
        headers={"Authorization": f"Bearer {sandbox_world['access']}"},
    )
    assert response.status_code == 200
    assert response.get_json()["items"] == [] and response.get_json()["has_more"] is False


def test_a_redirect_uri_with_a_backslash_before_an_at_is_refused_on_the_consent_page(app, sandbox_world):
    """The other 500 seen from outside: authlib raised ValueError on `\\@` in redirect_uri."""
    client = app.test_client()
    for redirect_uri in (
        "http://127.0.0.1/oauth/callback\\@evil.test",
        "http://evil.test\\@127.0.0.1/oauth/callback",
    ):
        for path in ("/sandbox/oauth/authorize", "/sandbox/xero/identity/connect/authorize"):
            response = client.get(
                path,
                query_string={
                    "response_type": "code",
                    "client_id": app.config["SANDBOX_CLIENT_ID"],
                    "redirect_uri": redirect_uri,
                    "state": "s",
                    "code_challenge": "x" * 43,
                    "code_challenge_method": "S256",
                },
            )
            assert response.status_code == 400, (path, redirect_uri)
            assert "evil.test" not in response.headers.get("Location", "")
            page = unescaped(response.get_data(as_text=True))
            assert "Demande d'autorisation invalide" in page, page


def test_the_sandbox_refuses_what_it_cannot_store_as_a_bad_request(app, sandbox_world):
    """What an outsider found past the fuzz: each a 400 (or the route's own refusal), none a 500."""
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {sandbox_world['access']}"}
    tenant = {"xero-tenant-id": sandbox_world["tenant"], "X-Business": sandbox_world["tenant"]}
    realm = sandbox_world["realm"]
    deep = "[" * 5000 + "]" * 5000
    year_one, year_end = "0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00"
    qbo_since = "select * from Vendor where Metadata.LastUpdatedTime >= '" + year_one + "'"  # noqa: S608
    suppliers = "/sandbox/api/v1/suppliers"
    changelogs = "/sandbox/pennylane/api/external/v2/changelogs/suppliers"
    calls = [
        ("GET", f"{suppliers}?updated_since=2020-01-01", {}, None, 200),
        ("GET", f"/sandbox/api/v1/accounts?updated_since={year_one}", {}, None, 400),
        ("GET", f"/sandbox/sage/v3.1/contacts?updated_or_created_since={year_one}", tenant, None, 200),
        ("GET", f"{changelogs}?start_date={year_end}", {}, None, 400),
        ("GET", f"/sandbox/quickbooks/v3/company/{realm}/query?query={qbo_since}", {}, None, 400),
        ("GET", "/sandbox/xero/api.xro/2.0/Contacts", {**tenant, "If-Modified-Since": year_one}, None, 200),
        ("POST", suppliers, {"Idempotency-Key": "k1"}, {"name": "Z", "vat_number": ["a"]}, 400),
        ("POST", suppliers, {"Idempotency-Key": "k2"}, {"name": "Z", "siren": 10**30}, 400),
        ("POST", suppliers, {"Idempotency-Key": "k3"}, {"name": "Z", "siren": "1" * 40}, 400),
        ("POST", suppliers, {"Idempotency-Key": "k4"}, {"name": "a\ud800b"}, 400),
        ("POST", suppliers, {"Idempotency-Key": "k" * 121}, {"name": "Z"}, 400),
        ("POST", "/sandbox/api/v1/invoices", {"Idempotency-Key": "k5"}, {"account_id": ["x"]}, 422),
        ("PUT", "/sandbox/xero/api.xro/2.0/Contacts", tenant, {"Contacts": ["x"]}, 400),
        ("POST", "/sandbox/oauth/token", {}, deep, 400),
        ("POST", suppliers, {"Idempotency-Key": "k6"}, deep, 400),
    ]
    for method, path, headers, body, status in calls:
        kwargs = {"headers": {**bearer, **headers}}
        if isinstance(body, str):
            kwargs |= {"data": body, "content_type": "application/json"}
        elif body is not None:
            kwargs["json"] = body
        response = client.open(path, method=method, **kwargs)
        _assert_no_error(response, (method, path, body if not isinstance(body, str) else "deep"))
        assert response.status_code == status, (method, path, response.status_code)
    controls = {"Authorization": f"Bearer {SANDBOX_CONTROL_TOKEN}"}
    for path, body in (
        ("/sandbox/controls/api/settings", {"latency_ms": float("inf")}),
        (f"/sandbox/controls/api/companies/{sandbox_world['company']}/consent", {"days": float("inf")}),
        (f"/sandbox/controls/api/companies/{sandbox_world['company']}/suppliers", {"name": ["x"]}),
        (
            f"/sandbox/controls/api/companies/{sandbox_world['company']}/suppliers",
            {"name": "X", "id": "sup-000001"},
        ),
    ):
        response = client.post(path, data=json.dumps(body), content_type="application/json", headers=controls)
        _assert_no_error(response, (path, body))
        assert response.status_code == 400, (path, response.status_code)


def test_a_redirect_uri_with_a_port_no_url_has_is_refused_before_the_consent(app, sandbox_world):
    client = app.test_client()
    for port in ("99999", "-1", "80:evil.test", "5077\u2044evil.test"):
        response = client.get(
            "/sandbox/oauth/authorize",
            query_string={
                "response_type": "code",
                "client_id": app.config["SANDBOX_CLIENT_ID"],
                "redirect_uri": f"http://127.0.0.1:{port}/oauth/callback",
                "state": "s",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
            },
        )
        assert response.status_code == 400, port
