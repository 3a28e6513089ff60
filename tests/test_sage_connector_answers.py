"""The Sage and Compta Démo connectors fed answers no test server would give: Sage's answers generated
from the response schemas of its published description (sage-accounting-v3.1-swagger.json), as it
documents them and broken (missing keys, wrong types, null items), and odd shapes for Compta Démo.
Whatever a 200 answer holds, what comes out is a well-formed result or a ConnectorError in French,
never a KeyError, IndexError or TypeError, and never an item Raccord's lists cannot hold."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vendor_specs import swagger
from webapp.connectors.base import (
    ITEM_LENGTHS,
    Attachment,
    Company,
    ConnectorError,
    NormalisedItem,
    ProviderError,
    TokenSet,
)
from webapp.connectors.http import RetryPolicy
from webapp.connectors.sage import MAX_PER_PAGE, SageConnector
from webapp.connectors.sandbox import MAX_LIMIT, SandboxConnector
from webapp.models.integration import ListKind

EXAMPLES = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
POLICY = RetryPolicy(timeout=1, max_retries=0, backoff=0)
EMPTY_SAGE_PAGE = {"$total": 0, "$page": 1, "$next": None, "$back": None, "$items": []}


class CannedSession:
    """A requests session that answers 200 with the given JSON bodies, one a call; then `last`."""

    def __init__(self, answers: list, last):
        self.answers, self.last, self.calls = list(answers), last, []

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        self.calls.append((method, url, kwargs.get("params")))
        body = self.answers.pop(0) if self.answers else self.last
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response


def sage_connector(answers: list, page_size: int = 1000) -> SageConnector:
    connector = SageConnector(
        client_id="id",
        client_secret="secret",
        authorize_url="https://www.sageone.com/oauth2/auth/central",
        token_url="https://oauth.accounting.sage.com/token",
        revoke_url="https://oauth.accounting.sage.com/revoke",
        api_url="https://api.accounting.sage.com/v3.1",
        policy=POLICY,
        page_size=page_size,
    )
    connector.http.session = CannedSession(answers, EMPTY_SAGE_PAGE)
    return connector


def compta_demo_connector(answers: list, page_size: int = 5000) -> SandboxConnector:
    connector = SandboxConnector(
        base_url="http://127.0.0.1:1/sandbox",
        client_id="id",
        client_secret="secret",
        policy=POLICY,
        page_size=page_size,
    )
    connector.http.session = CannedSession(answers, {"items": [], "next_cursor": None})
    return connector


def tokens() -> TokenSet:
    return TokenSet("access", "refresh", 4_000_000_000, extra={"business_id": "b1"})


INVOICE = {
    "type": "purchase",
    "number": "F-001",
    "contact_id": "c1",
    "account_id": "a1",
    "tax_rate_id": "TVA20",
    "date": "2026-11-02",
    "due_date": "2026-12-02",
    "amount_net": "100.00",
    "amount_tax": "20.00",
    "amount_total": "120.00",
    "currency": "EUR",
}
PDF = Attachment("facture.pdf", b"%PDF-1.4\n%%EOF\n")


def every_use(connector) -> None:
    """Each thing Raccord asks of a connector, its results checked as Raccord stores them."""
    for kind in ListKind:
        for page in connector.iter_pages(tokens(), kind, since=datetime(2026, 1, 1, tzinfo=UTC)):
            assert all(well_formed(item) for item in page)
    assert all(well_formed(i) for i in connector.find_parties(tokens(), ListKind.SUPPLIERS, term="EDF"))
    created = connector.create_party(
        tokens(), ListKind.SUPPLIERS, name="EDF", vat_number=None, siren=None, idempotency_key="k"
    )
    assert well_formed(created)
    invoice_id = connector.publish_invoice(tokens(), dict(INVOICE), idempotency_key="k", attachment=PDF)
    assert isinstance(invoice_id, str) and invoice_id
    company = connector.company(tokens())
    assert isinstance(company, Company) and isinstance(company.id, str) and isinstance(company.name, str)


def well_formed(item) -> bool:
    assert isinstance(item, NormalisedItem)
    for name, length in ITEM_LENGTHS.items():
        value = getattr(item, name)
        assert value is None or (isinstance(value, str) and len(value) <= length), (name, value)
    assert isinstance(item.name, str) and item.name and isinstance(item.external_id, str)
    assert isinstance(item.active, bool) and isinstance(item.extras, dict)
    json.dumps(item.extras)
    return True


def each_use_survives(make_connector, answers: list) -> None:
    """`every_use` step by step, each on fresh answers: a ConnectorError ends a step, nothing else may."""
    steps = [
        *(lambda c, k=kind: [list(p) for p in c.iter_pages(tokens(), k)] for kind in ListKind),
        lambda c: c.find_parties(tokens(), ListKind.CUSTOMERS, term="x"),
        lambda c: c.create_party(
            tokens(), ListKind.SUPPLIERS, name="EDF", vat_number="FR1", siren=None, idempotency_key="k"
        ),
        lambda c: c.publish_invoice(tokens(), dict(INVOICE), idempotency_key="k", attachment=PDF),
        lambda c: c.company(tokens()),
    ]
    for step in steps:
        connector = make_connector(list(answers))
        try:
            result = step(connector)
        except ConnectorError as error:
            assert error.message and ("Sage" in error.message or "Compta Démo" in error.message), (
                error.message
            )
            continue
        for each in result if isinstance(result, list) else []:
            for item in each if isinstance(each, list) else [each]:
                well_formed(item)


# --- Sage: its description's answers, as documented and broken --------------------------------------

SAGE_ANSWERS = {
    "ledger_accounts": "LedgerAccount",
    "bank_accounts": "BankAccount",
    "contacts": "Contact",
    "tax_rates": "TaxRate",
    "analysis_types": "AnalysisType",
    "purchase_invoices": "PurchaseInvoice",
    "attachments": "Attachment",
}


@pytest.fixture(scope="module")
def sage_answers():
    """A strategy of Sage answers: list wrappers of each definition the connector reads, and single
    records, generated from Sage's own response schemas, valid (positive) or not (negative)."""
    import schemathesis
    from schemathesis import GenerationMode

    definitions = swagger("sage-accounting-v3.1-swagger.json")["definitions"]
    schemas = {}
    for name, definition in SAGE_ANSWERS.items():
        schemas[f"/{name}"] = {
            "type": "object",
            "properties": {
                "$total": {"type": "integer"},
                "$page": {"type": "integer"},
                "$next": {"type": "string", "x-nullable": True},
                "$back": {"type": "string", "x-nullable": True},
                "$items": {"type": "array", "items": {"$ref": f"#/definitions/{definition}"}, "maxItems": 3},
            },
            "required": ["$items"],
        }
        schemas[f"/{name}/one"] = {"$ref": f"#/definitions/{definition}"}
    synthetic = {
        "swagger": "2.0",
        "info": {"title": "Sage answers", "version": "3.1"},
        "consumes": ["application/json"],
        "paths": {
            path: {
                "post": {
                    "parameters": [{"in": "body", "name": "answer", "required": True, "schema": schema}],
                    "responses": {"200": {"description": "the answer"}},
                }
            }
            for path, schema in schemas.items()
        },
        "definitions": definitions,
    }
    described = schemathesis.openapi.from_dict(json.loads(json.dumps(synthetic)))
    strategies = [
        described[path]["POST"].as_strategy(generation_mode=mode).map(lambda case: case.body)
        for path in schemas
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    return st.one_of(strategies).filter(lambda body: not isinstance(body, bytes))


def test_sage_connector_takes_any_answer_of_its_description_or_says_why_in_french(sage_answers):
    @EXAMPLES
    @given(answers=st.lists(st.one_of(sage_answers, ODD_SHAPES), min_size=1, max_size=4))
    def feed(answers):
        each_use_survives(sage_connector, answers)

    feed()


#: Shapes no description lists: empty arrays, null items, missing keys, types swapped.
ODD_SHAPES = st.one_of(
    st.sampled_from(
        [
            [],
            {},
            None,
            "ok",
            0,
            [None],
            {"$items": None},
            {"$items": [None, None]},
            {"$items": "[]"},
            {"$items": [{}]},
            {"$items": [{"id": None, "name": "x"}]},
            {"$items": [{"id": "1", "name": ["x"]}]},
            {"$items": [{"id": "1", "name": "x", "percentage": "20"}]},
            {"$items": [{"id": "1", "name": "x", "percentage": float("nan")}]},
            {"$items": [{"id": "1", "name": "x", "is_active": "false"}]},
            {"$items": [{"id": "1", "name": "x", "analysis_type_categories": [None]}]},
            {"$items": [{"id": "1", "name": "x", "registered_number": "1" * 40, "reference": "R" * 100}]},
            {"$items": [{"id": "1" * 200, "name": "x"}]},
            {"$items": [{"id": "1", "name": "x"}], "$next": "/again"},
            {"id": None},
            {"id": ["1"]},
            [{"id": "b1"}],
            [{"name": "Sans id"}],
            [None],
            {"items": [None]},
            {"items": {"0": {}}},
            {"items": [{"id": "1", "name": "x", "status": 1}]},
            {"items": [{"id": "1", "name": "x", "extras": []}]},
            {"items": [{"id": "1", "name": "x", "siren": "1" * 20}]},
            {"items": [{"id": "1", "name": "x", "code": {"a": 1}}]},
            {"items": [{"id": "1", "name": "x"}], "next_cursor": "1"},
            {"items": [], "next_cursor": ["2"]},
            {"id": 1, "name": None},
            {"id": 1},
        ]
    ),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(
                st.sampled_from(["$items", "items", "id", "name", "next_cursor", "$next"]), inner
            ),
        ),
        max_leaves=8,
    ),
)


def test_compta_demo_connector_takes_any_answer_or_says_why_in_french():
    item = st.fixed_dictionaries(
        {"id": st.one_of(st.text(max_size=3), st.integers(), st.none())},
        optional={
            "name": st.one_of(st.text(max_size=5), st.none(), st.integers()),
            "code": st.one_of(st.text(max_size=70), st.none(), st.lists(st.integers(), max_size=1)),
            "rate": st.one_of(st.text(max_size=14), st.floats(), st.none()),
            "status": st.sampled_from(["active", "archived", "deleted", None, 1]),
            "extras": st.one_of(
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.lists(st.none())
            ),
            "siren": st.one_of(st.text(max_size=12), st.none()),
        },
    )
    page = st.fixed_dictionaries(
        {
            "items": st.one_of(
                st.lists(st.one_of(item, st.none()), max_size=3), st.none(), st.text(max_size=2)
            )
        },
        optional={
            "next_cursor": st.one_of(st.none(), st.text(max_size=3), st.integers(), st.lists(st.none()))
        },
    )

    @EXAMPLES
    @given(answers=st.lists(st.one_of(page, item, ODD_SHAPES), min_size=1, max_size=4))
    def feed(answers):
        each_use_survives(compta_demo_connector, answers)

    feed()


def test_answers_as_documented_are_read_whole():
    """Well-formed answers come out as Raccord's items: the checks refuse only what is broken."""
    account = {
        "id": "9a1",
        "displayed_as": "Électricité (606100)",
        "name": "Électricité",
        "nominal_code": 606100,
        "included_in_chart": True,
        "ledger_account_type": {"id": "EXPENSES"},
        "tax_recoverable": True,
    }
    supplier = {
        "id": "c1",
        "name": "EDF",
        "tax_number": "FR40303265045",
        "registered_number": "55208131766522",
    }
    rate = {"id": "TVA55", "name": "TVA 5,5 %", "percentage": 5.5, "is_visible": True}
    categories = {
        "id": "t1",
        "name": "Établissement",
        "analysis_type_categories": [{"id": "k1", "name": "Centre"}],
    }
    connector = sage_connector(
        [
            {"$items": [account], "$next": None},
            {"$items": [supplier], "$next": None},
            {"$items": [rate], "$next": None},
            {"$items": [categories], "$next": None},
        ]
    )
    (accounts,) = connector.iter_pages(tokens(), ListKind.ACCOUNTS)
    (suppliers,) = connector.iter_pages(tokens(), ListKind.SUPPLIERS)
    (rates,) = connector.iter_pages(tokens(), ListKind.TAX_RATES)
    (tracking,) = connector.iter_pages(tokens(), ListKind.TRACKING_CATEGORIES)
    assert (accounts[0].code, accounts[0].extras["type"]) == ("606100", "expense")
    assert suppliers[0].siren == "552081317"  # the SIREN of a SIRET
    assert rates[0].rate == "5.5"
    assert tracking[0].name == "Établissement : Centre"


def test_lists_are_read_with_the_largest_page_each_software_allows_unless_configured_lower():
    sage = sage_connector([])
    list(sage.iter_pages(tokens(), ListKind.TAX_RATES))
    assert sage.http.session.calls[0][2]["items_per_page"] == MAX_PER_PAGE == 200
    sage = sage_connector([], page_size=50)
    list(sage.iter_pages(tokens(), ListKind.TAX_RATES))
    assert sage.http.session.calls[0][2]["items_per_page"] == 50
    demo = compta_demo_connector([])
    list(demo.iter_pages(tokens(), ListKind.SUPPLIERS))
    assert demo.http.session.calls[0][2]["limit"] == MAX_LIMIT == 1000
    demo = compta_demo_connector([], page_size=20)
    list(demo.iter_pages(tokens(), ListKind.SUPPLIERS))
    assert demo.http.session.calls[0][2]["limit"] == 20


def test_the_default_page_size_lets_each_software_use_its_largest(tmp_path):
    from sandbox.api import MAX_LIMIT as COMPTA_DEMO_LIMIT
    from webapp.config import load_config

    assert MAX_LIMIT == COMPTA_DEMO_LIMIT
    # Unset, no size is imposed: each connector reads its software's largest page.
    assert load_config({}, tmp_path)["LIST_PAGE_SIZE"] is None
    assert compta_demo_connector([]).page_size == MAX_LIMIT
    assert load_config({"LIST_PAGE_SIZE": "50"}, tmp_path)["LIST_PAGE_SIZE"] == 50


def test_a_list_whose_next_page_never_ends_is_an_error_not_a_hang():
    looping = {"items": [{"id": "1", "name": "x"}], "next_cursor": "7"}
    connector = compta_demo_connector([looping, looping, looping])
    with pytest.raises(ProviderError, match="Compta Démo"):
        for _page in connector.iter_pages(tokens(), ListKind.SUPPLIERS):
            pass
