"""The Sage dialect against what a client may send it: a request that breaks Sage's published
description (sage-accounting-v3.1-swagger.json) is refused in Sage's words (an array of
{$severity, $dataCode, $message, $source}, 400 or 422), nothing of it stored, its value never
repeated; whatever was stored before, every list still answers. Then Sage's description itself drives
schemathesis over the operations the dialect implements: no 5xx, answers as the description says."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import sandbox_tokens
from tests.vendor_specs import Exchange, Route, swagger, swagger_problems
from webapp.extensions import db

SAGE = "/sandbox/sage/v3.1"
SPEC = "sage-accounting-v3.1-swagger.json"
ROUTE = Route(SAGE, "https://api.accounting.sage.com", "/v3.1", SPEC)


@pytest.fixture
def sage(app):
    """A sandbox company seen through the Sage dialect: a test client, its headers, and GUIDs of a
    supplier, an expense account and a tax rate that Sage would take in an invoice."""
    from sandbox.dialects import tenant_guid
    from sandbox.models import SandboxCompany, SandboxItem

    company_id, access, _refresh = sandbox_tokens(app, scope="full_access")
    sandbox = app.extensions["raccord.sandbox"]
    with sandbox.app_context():
        company = db.session.get(SandboxCompany, company_id)

        def guid(kind: str, **where) -> str:
            query = select(SandboxItem.guid).where(
                SandboxItem.company_id == company.id, SandboxItem.kind == kind, SandboxItem.active.is_(True)
            )
            for name, value in where.items():
                query = query.where(getattr(SandboxItem, name) == value)
            return db.session.scalars(query.order_by(SandboxItem.id)).first()

        known = {
            "company": company.id,
            "supplier": guid("suppliers"),
            "account": guid("accounts", code="606100"),
            "tax_rate": "TVA20",
        }
    known["headers"] = {"Authorization": f"Bearer {access}", "X-Business": tenant_guid(company.id)}
    known["client"] = app.test_client()
    return known


def stored(app) -> dict[str, int]:
    from sandbox.models import SandboxAttachment, SandboxInvoice, SandboxItem

    with app.extensions["raccord.sandbox"].app_context():
        return {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (SandboxInvoice, SandboxItem, SandboxAttachment)
        }


def good_invoice(sage) -> dict:
    return {
        "purchase_invoice": {
            "contact_id": sage["supplier"],
            "date": "2026-11-02",
            "due_date": "2026-12-02",
            "vendor_reference": "F-2026-001",
            "invoice_lines": [
                {
                    "description": "Électricité novembre",
                    "ledger_account_id": sage["account"],
                    "quantity": 1,
                    "unit_price": 100.0,
                    "tax_rate_id": sage["tax_rate"],
                    "tax_amount": 20.0,
                }
            ],
        }
    }


def with_line(sage, **changes) -> dict:
    body = good_invoice(sage)
    body["purchase_invoice"]["invoice_lines"][0].update(changes)
    return body


def with_invoice(sage, **changes) -> dict:
    body = good_invoice(sage)
    body["purchase_invoice"].update(changes)
    return body


def assert_sages_error(response, status: int, source: str | None = None) -> list[dict]:
    body = response.get_json()
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert isinstance(body, list) and len(body) == 1, body
    assert set(body[0]) == {"$severity", "$dataCode", "$message", "$source"}
    assert body[0]["$severity"] == "error" and body[0]["$message"]
    if source is not None:
        assert body[0]["$source"] == source, body
    return body


def test_a_well_formed_invoice_is_created_and_listed(app, sage):
    client, headers = sage["client"], sage["headers"]
    response = client.post(f"{SAGE}/purchase_invoices", json=good_invoice(sage), headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert (created["net_amount"], created["tax_amount"], created["total_amount"]) == (100.0, 20.0, 120.0)
    assert _problems("POST", "/purchase_invoices", response) == []
    listed = client.get(f"{SAGE}/purchase_invoices", headers=headers)
    assert [i["id"] for i in listed.get_json()["$items"]] == [created["id"]]
    assert _problems("GET", "/purchase_invoices", listed) == []


@pytest.mark.parametrize(
    ("change", "source"),
    [
        (lambda s: with_line(s, tax_amount="20,00"), "invoice_lines.0.tax_amount"),
        (lambda s: with_line(s, unit_price="100"), "invoice_lines.0.unit_price"),
        (lambda s: with_line(s, unit_price=float("nan")), "invoice_lines.0.unit_price"),
        (lambda s: with_line(s, unit_price=float("inf")), "invoice_lines.0.unit_price"),
        (lambda s: with_line(s, unit_price=10**30), "invoice_lines.0.unit_price"),
        (lambda s: with_line(s, unit_price=True), "invoice_lines.0.unit_price"),
        (lambda s: with_line(s, tax_amount=20.001), "invoice_lines.0.tax_amount"),
        (lambda s: with_line(s, quantity=None), "invoice_lines.0.quantity"),
        (lambda s: with_line(s, description=None), "invoice_lines.0.description"),
        (lambda s: with_line(s, ledger_account_id=["x"]), "invoice_lines.0.ledger_account_id"),
        (lambda s: with_line(s, tax_rate_id={"id": "TVA20"}), "invoice_lines.0.tax_rate_id"),
        (lambda s: with_invoice(s, invoice_lines=[None, None]), "invoice_lines.0"),
        (lambda s: with_invoice(s, invoice_lines=["x"]), "invoice_lines.0"),
        (lambda s: with_invoice(s, invoice_lines={"0": {}}), "invoice_lines"),
        (lambda s: with_invoice(s, invoice_lines=[]), "invoice_lines"),
        (lambda s: with_invoice(s, date="2026-02-30"), "date"),
        (lambda s: with_invoice(s, date="2026-W01-1"), "date"),
        (lambda s: with_invoice(s, due_date=20261202), "due_date"),
        (lambda s: with_invoice(s, contact_id=None), "contact_id"),
        (lambda s: with_invoice(s, vendor_reference="R" * 5000), "vendor_reference"),
        (lambda s: with_invoice(s, idempotency_id="k" * 500), "idempotency_id"),
        (lambda s: with_invoice(s, net_amount="cent"), "net_amount"),
        (lambda s: {"purchase_invoice": [good_invoice(s)["purchase_invoice"]]}, "purchase_invoice"),
        (lambda s: [good_invoice(s)], "purchase_invoice"),
        (lambda s: {"purchase_invoice": None}, "purchase_invoice"),
    ],
)
def test_an_invoice_that_breaks_sages_description_is_refused_and_not_stored(app, sage, change, source):
    before = stored(app)
    body = change(sage)
    response = sage["client"].post(
        f"{SAGE}/purchase_invoices",
        data=json.dumps(body),  # NaN and Infinity as Python writes them, which a JSON parser may take
        content_type="application/json",
        headers=sage["headers"],
    )
    (error,) = assert_sages_error(response, 422, source)
    assert error["$dataCode"] == "RecordInvalid"
    for value in ("20,00", "R" * 50, "k" * 50, "cent", "2026-W01-1", "1000000000000000000000000000000"):
        assert value not in response.get_data(as_text=True)
    assert stored(app) == before
    assert sage["client"].get(f"{SAGE}/purchase_invoices", headers=sage["headers"]).status_code == 200


@pytest.mark.parametrize(
    ("contact", "source"),
    [
        ({"name": "Fournil", "contact_type_ids": "VENDOR"}, "contact_type_ids"),
        ({"name": "Fournil", "contact_type_ids": [None]}, "contact_type_ids.0"),
        ({"name": "Fournil", "contact_type_ids": ["SUPPLIER"]}, "contact_type_ids"),
        ({"name": ["Fournil"], "contact_type_ids": ["VENDOR"]}, "name"),
        ({"name": "", "contact_type_ids": ["VENDOR"]}, "name"),
        ({"name": "Fournil", "contact_type_ids": ["VENDOR"], "tax_number": 40303265045}, "tax_number"),
        (
            {"name": "Fournil", "contact_type_ids": ["VENDOR"], "registered_number": "1" * 30},
            "registered_number",
        ),
        ({"name": "Fournil", "contact_type_ids": ["VENDOR"], "credit_days": 400}, "credit_days"),
        ({"name": "Fournil", "contact_type_ids": ["VENDOR"], "credit_limit": "1e3"}, "credit_limit"),
    ],
)
def test_a_contact_that_breaks_sages_description_is_refused_and_not_stored(app, sage, contact, source):
    before = stored(app)
    response = sage["client"].post(f"{SAGE}/contacts", json={"contact": contact}, headers=sage["headers"])
    assert_sages_error(response, 422, source)
    assert "1" * 30 not in response.get_data(as_text=True)
    assert stored(app) == before


def test_an_attachment_that_breaks_sages_description_is_refused_and_not_stored(app, sage):
    client, headers = sage["client"], sage["headers"]
    invoice = client.post(f"{SAGE}/purchase_invoices", json=good_invoice(sage), headers=headers).get_json()
    good = {
        "file": "JVBERi0xLjQK",
        "file_name": "facture.pdf",
        "mime_type": "application/pdf",
        "attachment_context_type_id": "PURCHASE_INVOICE",
        "attachment_context_id": invoice["id"],
    }
    before = stored(app)
    for change, source in (
        ({"file": None}, "file"),
        ({"file": ["JVBERi0xLjQK"]}, "file"),
        ({"file_name": 12}, "file_name"),
        ({"mime_type": "x" * 81}, "mime_type"),
        ({"file_size": -1}, "file_size"),
        ({"file_size": "12"}, "file_size"),
        ({"attachment_context_id": {"id": invoice["id"]}}, "attachment_context_id"),
        ({"file": "pas du base64 !"}, "file"),
    ):
        response = client.post(
            f"{SAGE}/attachments", json={"attachment": {**good, **change}}, headers=headers
        )
        assert_sages_error(response, 422, source)
    assert stored(app) == before
    assert client.post(f"{SAGE}/attachments", json={"attachment": good}, headers=headers).status_code == 201


def test_query_numbers_beyond_any_page_are_refused_in_sages_words(app, sage):
    client, headers = sage["client"], sage["headers"]
    for query in ({"page": "9" * 30}, {"items_per_page": "1e3"}, {"page": "NaN"}, {"page": str(2**62)}):
        response = client.get(f"{SAGE}/ledger_accounts", query_string=query, headers=headers)
        assert_sages_error(response, 400)
    response = client.get(f"{SAGE}/contacts", query_string={"search": "a\x00b"}, headers=headers)
    assert_sages_error(response, 400)
    response = client.post(
        f"{SAGE}/contacts",
        json={"contact": {"name": "a\ud800b", "contact_type_ids": ["VENDOR"]}},
        headers=headers,
    )
    assert_sages_error(response, 422)


def test_invoices_stored_malformed_never_make_a_list_fail(app, sage):
    """An invoice kept before the checks (one bad tax_amount once made a company's list answer 500
    for ever), or written by hand: the list leaves out or zeroes what is not of its type."""
    from sandbox.models import SandboxInvoice

    odd_payloads = [
        {"tax_amount": "abc", "invoice_lines": [{"unit_price": "1,5", "tax_amount": "abc", "quantity": "x"}]},
        {"invoice_lines": [None, "x", 3, {"unit_price": "NaN", "tax_amount": "-Infinity"}]},
        {"invoice_lines": {"0": {}}, "contact_id": ["x"], "date": 20261102, "reference": {"a": 1}},
        {"invoice_lines": [{"unit_price": 10**400, "quantity": -(10**40), "tax_amount": True}]},
        {"vendor_reference": None, "sage_kind": "purchase_invoices", "invoice_lines": "[]"},
    ]
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # SQLite keeps a NaN in a JSON column (PostgreSQL refuses it), and its JSON functions then
        # fail on the whole table.
        odd_payloads.append({"invoice_lines": [{"unit_price": float("nan"), "tax_amount": float("inf")}]})
    with app.extensions["raccord.sandbox"].app_context():
        for index, payload in enumerate(odd_payloads):
            db.session.add(
                SandboxInvoice(
                    company_id=sage["company"],
                    idempotency_key=f"sage-odd-{index}",
                    payload={"dialect": "sage", **payload, "sage_kind": "purchase_invoices"},
                )
            )
        db.session.commit()
    client, headers = sage["client"], sage["headers"]
    for query in ({}, {"search": "a"}, {"contact_id": "x"}):
        response = client.get(f"{SAGE}/purchase_invoices", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        assert _problems("GET", "/purchase_invoices", response) == []
    listed = client.get(f"{SAGE}/purchase_invoices", headers=headers).get_json()["$items"]
    assert len(listed) == len(odd_payloads)
    assert all(isinstance(i["total_amount"], float) for i in listed)
    # A new invoice for the same company is still taken and listed.
    assert (
        client.post(f"{SAGE}/purchase_invoices", json=good_invoice(sage), headers=headers).status_code == 201
    )


def _problems(method: str, path: str, response, body: bytes = b"", environ: dict | None = None) -> list[str]:
    exchange = Exchange(
        method=method,
        path=SAGE + path,
        environ={"HTTP_AUTHORIZATION": "Bearer x", "QUERY_STRING": "", **(environ or {})},
        body=body,
        status=response.status_code,
        headers=list(response.headers.items()),
        answer=response.get_data(),
        route=ROUTE,
    )
    return [p for p in swagger_problems(exchange) if p.startswith("answer")]


# --- Sage's description drives the requests ------------------------------------------------------

#: The operations the dialect implements (GET /businesses is Sage's core API, not this description).
IMPLEMENTED = [
    ("GET", "/ledger_accounts"),
    ("GET", "/bank_accounts"),
    ("GET", "/contacts"),
    ("POST", "/contacts"),
    ("GET", "/tax_rates"),
    ("GET", "/analysis_types"),
    ("GET", "/purchase_invoices"),
    ("POST", "/purchase_invoices"),
    ("GET", "/sales_invoices"),
    ("POST", "/sales_invoices"),
    ("GET", "/attachments"),
    ("POST", "/attachments"),
]
#: The suite's runs are the same every time; FUZZ_EXAMPLES=300 searches longer, at random.
EXAMPLES = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def sage_description():
    """Sage's description as schemathesis reads it, cut to the operations the dialect implements."""
    import schemathesis

    raw = json.loads(json.dumps(swagger(SPEC)))
    paths: dict = {}
    for method, path in IMPLEMENTED:
        paths.setdefault(path, {})[method.lower()] = raw["paths"][path][method.lower()]
    raw["paths"] = paths
    return schemathesis.openapi.from_dict(raw)


def test_sages_description_drives_every_implemented_operation_without_a_5xx(app, sage, sage_description):
    invoice = sage["client"].post(
        f"{SAGE}/purchase_invoices", json=good_invoice(sage), headers=sage["headers"]
    )
    # What the company knows, put in place of generated ids by `reach`: some requests get past the
    # lookups and are created.
    known = {
        "contact_id": sage["supplier"],
        "ledger_account_id": sage["account"],
        "tax_rate_id": sage["tax_rate"],
        "attachment_context_id": invoice.get_json()["id"],
        "contact_type_ids": ["VENDOR"],
    }
    seen: dict[int, int] = {}
    for method, path in IMPLEMENTED:
        try:
            _drive(sage_description[path][method], sage, known, seen)
        except Exception as error:
            error.add_note(f"operation: {method} {path}")
            raise
    # (Generated values rarely make a whole invoice Sage takes: the 201s are tested above.)
    assert {200, 400, 422} <= set(seen), seen


def _drive(operation, sage, known, seen: dict[int, int]) -> None:
    from schemathesis import GenerationMode

    client, headers = sage["client"], sage["headers"]
    method, path = operation.method.upper(), operation.path
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @EXAMPLES
    @given(case=cases, reach=st.booleans())
    def call(case, reach):
        body = case.body if not _is_unset(case.body) else None
        if reach and isinstance(body, dict):
            _put_known(body, known)
        query = {k: v for k, v in (case.query or {}).items() if v is not None}
        kwargs = {}
        if body is not None:  # bytes: a body that is not JSON at all
            data = body if isinstance(body, bytes) else json.dumps(body)
            kwargs = {"data": data, "content_type": "application/json"}
        response = client.open(SAGE + path, method=method, query_string=query, headers=headers, **kwargs)
        text = response.get_data(as_text=True)
        assert response.status_code < 500, (method, path, query, body, text[:300])
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        if response.status_code >= 400:
            assert_sages_error(response, response.status_code)
        else:
            environ = {"QUERY_STRING": response.request.query_string.decode()}
            problems = _problems(method, path, response, environ=environ)
            assert problems == [], (method, path, query, body, problems)

    call()


def _is_unset(value) -> bool:
    return type(value).__name__ == "NotSet"


def _put_known(value, known: dict) -> None:
    """The ids of a generated body (contact_id, ledger_account_id…) replaced by ones the company has."""
    if isinstance(value, dict):
        for key, each in value.items():
            if key in known and each is not None:
                value[key] = known[key]
            else:
                _put_known(each, known)
    elif isinstance(value, list):
        for each in value:
            _put_known(each, known)
