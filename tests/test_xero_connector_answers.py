"""Whatever Xero answers, the connector either reads it or raises one of its own errors (a
ConnectorError, with a French message): never a bare KeyError, IndexError or TypeError in a job.

The answers are generated from Xero's published descriptions (the response schemas of
xero_accounting.yaml and xero-identity.yaml), each part now and then replaced by any JSON value
(a list where an object is, a number where text is, NaN, an empty list), and fed to the connector
under its real HTTP layer."""

from __future__ import annotations

import base64
import json
import os
import time
from functools import cache

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import plain_spaces
from tests.vendor_specs import SPECS_DIR
from webapp.connectors.base import Attachment, ConnectorError, ProviderError, TokenSet
from webapp.connectors.http import RetryPolicy
from webapp.connectors.xero import XeroConnector
from webapp.models.integration import ListKind

TENANT = "a2701d0d-a251-573e-a826-ad1a20a78776"
EXAMPLES = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

ANY_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),  # NaN and Infinity included: Python's JSON reader takes them
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@cache
def _description(name: str) -> dict:
    return yaml.safe_load((SPECS_DIR / name).read_text(encoding="utf-8"))


#: The fields Xero always sends on what the connector reads (the description marks none required).
ALWAYS_SENT = {
    "AccountID",
    "ContactID",
    "Name",
    "TaxType",
    "TrackingOptionID",
    "InvoiceID",
    "tenantId",
    "tenantType",
    # and the list itself
    "Accounts",
    "Contacts",
    "TaxRates",
    "TrackingCategories",
    "Invoices",
}


def from_schema(name: str, schema: dict, *, mischief: bool, depth: int = 0) -> st.SearchStrategy:
    """Values following `schema` of the description `name`: as Xero sends them (the fields it always
    sends present, numbers and text as a real organisation has them), or with `mischief`, one part
    in five of any other shape."""
    if "$ref" in schema:
        target = _description(name)
        for step in schema["$ref"].lstrip("#/").split("/"):
            target = target[step]
        return from_schema(name, target, mischief=mischief, depth=depth)
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if depth > 5:  # deep parts of a Contact or an Invoice the connector never reads: left empty
        return st.just([]) if kind == "array" else st.none()
    if "enum" in schema:
        strategy = st.sampled_from(schema["enum"])
    elif kind == "object":
        properties = {
            key: from_schema(name, sub, mischief=mischief, depth=depth + 1)
            for key, sub in (schema.get("properties") or {}).items()
        }
        always = {} if mischief else {k: v for k, v in properties.items() if k in ALWAYS_SENT}
        strategy = st.fixed_dictionaries(
            always, optional={k: v for k, v in properties.items() if k not in always}
        )
    elif kind == "array":
        strategy = st.lists(
            from_schema(name, schema.get("items") or {}, mischief=mischief, depth=depth + 1), max_size=3
        )
    elif kind == "string":
        if schema.get("format") == "uuid":
            strategy = st.uuids().map(str)
        elif schema.get("x-is-msdate") or schema.get("x-is-msdate-time"):
            strategy = st.integers(-(2**50), 2**50).map(lambda ms: f"/Date({ms}+0000)/")
        else:
            strategy = st.text(min_size=0 if mischief else 1, max_size=20)
    elif kind == "number":
        strategy = st.floats() if mischief else st.floats(min_value=0, max_value=100)
    elif kind == "integer":
        strategy = st.integers(-(2**40), 2**40) if mischief else st.integers(0, 3)
    elif kind == "boolean":
        strategy = st.booleans()
    else:
        strategy = ANY_JSON if mischief else st.none()
    return st.one_of(strategy, strategy, strategy, strategy, ANY_JSON) if mischief else strategy


def answers(
    schema_name: str, spec: str = "xero_accounting.yaml", *, mischief: bool = True
) -> st.SearchStrategy:
    """A few answers in turn (a status and a body), as Xero would give them page after page."""
    body = from_schema(spec, {"$ref": f"#/components/schemas/{schema_name}"}, mischief=mischief)
    status = st.sampled_from([200, 200, 200, 200, 400, 403, 404, 409, 422]) if mischief else st.just(200)
    return st.lists(st.tuples(status, body), min_size=1, max_size=3)


class ScriptedSession(requests.Session):
    """A session that answers the script's responses in turn, then empty lists (a list that ends)."""

    def __init__(self, script: list[tuple[int, object]]):
        super().__init__()
        self.script = list(script)

    def request(self, method, url, **kwargs):
        status, body = self.script.pop(0) if self.script else (200, {"Contacts": [], "Invoices": []})
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()  # NaN written as Python writes it
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response


def _connector(script) -> XeroConnector:
    connector = XeroConnector(**_arguments(page_size=3))
    connector.http.session = ScriptedSession(script)
    return connector


def _tokens() -> TokenSet:
    return TokenSet(
        access_token="a", refresh_token="r", expires_at=time.time() + 3600, extra={"tenant_id": TENANT}
    )


def _only_connector_errors(call) -> None:
    try:
        call()
    except ConnectorError as error:
        assert error.message and isinstance(error.message, str)


LISTS = {
    ListKind.ACCOUNTS: "Accounts",
    ListKind.PAYMENT_METHODS: "Accounts",
    ListKind.SUPPLIERS: "Contacts",
    ListKind.CUSTOMERS: "Contacts",
    ListKind.TAX_RATES: "TaxRates",
    ListKind.TRACKING_CATEGORIES: "TrackingCategories",
}


@pytest.mark.parametrize("kind", list(LISTS), ids=[k.value for k in LISTS])
def test_any_answer_to_a_list_is_read_or_refused_as_a_connector_error(kind):
    @EXAMPLES
    @given(script=answers(LISTS[kind]))
    def read(script):
        _only_connector_errors(
            lambda: [item for page in _connector(script).iter_pages(_tokens(), kind) for item in page]
        )

    read()


@pytest.mark.parametrize("kind", list(LISTS), ids=[k.value for k in LISTS])
def test_an_answer_as_xero_sends_it_is_read(kind):
    @EXAMPLES
    @given(script=answers(LISTS[kind], mischief=False))
    def read(script):
        for page in _connector(script).iter_pages(_tokens(), kind):
            assert all(item.external_id and item.name for item in page)

    read()


EVENT = "3a90165d-571e-5ff8-beab-7cd15cf0c01a"


def _consent_tokens() -> TokenSet:
    """Tokens of a consent, as Xero gives them: the access token a JWT naming its authentication event."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    access = f"{part({'alg': 'RS256'})}.{part({'authentication_event_id': EVENT})}.signature"
    return TokenSet(access_token=access, refresh_token="r", expires_at=time.time() + 3600)


def test_any_answer_to_the_connections_is_read_or_refused_as_a_connector_error():
    def of_this_consent(connection):
        return {**connection, "authEventId": EVENT} if isinstance(connection, dict) else connection

    connection = from_schema("xero-identity.yaml", {"$ref": "#/components/schemas/Connection"}, mischief=True)
    faithful = from_schema("xero-identity.yaml", {"$ref": "#/components/schemas/Connection"}, mischief=False)

    @EXAMPLES
    @given(
        body=st.one_of(
            st.lists(st.one_of(connection, connection.map(of_this_consent)), max_size=3),
            ANY_JSON,
        )
    )
    def read(body):
        _only_connector_errors(lambda: _connector([(200, body)]).companies(_consent_tokens()))

    @EXAMPLES
    @given(body=st.lists(faithful.map(of_this_consent), min_size=1, max_size=3))
    def read_faithful(body):
        body = [{**each, "tenantType": "ORGANISATION"} for each in body]
        found = _connector([(200, body)]).companies(_consent_tokens())
        assert [c.id for c in found] == [each["tenantId"] for each in body]

    read()
    read_faithful()


def test_any_answer_to_a_search_or_a_new_contact_is_read_or_refused_as_a_connector_error():
    @EXAMPLES
    @given(script=answers("Contacts"), term=st.sampled_from(["EDF", "FR40303265045"]))
    def run(script, term):
        _only_connector_errors(
            lambda: _connector(script).find_parties(_tokens(), ListKind.SUPPLIERS, term=term)
        )
        _only_connector_errors(
            lambda: _connector(script).create_party(
                _tokens(), ListKind.SUPPLIERS, name="EDF", vat_number=None, siren=None, idempotency_key="k"
            )
        )

    run()


def test_any_answer_to_a_new_bill_is_read_or_refused_as_a_connector_error():
    bill = {
        "type": "purchase",
        "number": "F-1",
        "date": "2026-11-02",
        "amount_net": "100.00",
        "amount_tax": "20.00",
        "contact_id": "e3b44aa7-57ec-47e5-a55b-5a83ed5c8c09",
        "account_code": "606100",
        "tax_rate_id": "TVA20",
    }

    @EXAMPLES
    @given(invoices=answers("Invoices"), attachments=answers("Attachments"))
    def run(invoices, attachments):
        connector = _connector(invoices[:1] + attachments[:1])
        attachment = Attachment("F-1.pdf", b"%PDF-1.4")
        _only_connector_errors(
            lambda: connector.publish_invoice(_tokens(), bill, idempotency_key="k", attachment=attachment)
        )

    run()


@pytest.mark.parametrize(
    "body",
    [
        {"Contacts": []},
        {"Contacts": None},
        {},
        [],
        {"Contacts": [[]]},
        {"Contacts": [{"Name": "Sans identifiant"}]},
    ],
)
def test_an_empty_or_odd_answer_to_a_new_contact_is_a_provider_error_naming_xero(body):
    with pytest.raises(ProviderError) as raised:
        _connector([(200, body)]).create_party(
            _tokens(), ListKind.SUPPLIERS, name="EDF", vat_number=None, siren=None, idempotency_key="k"
        )
    assert plain_spaces(raised.value.message).startswith("Xero a renvoyé une réponse inattendue")


@pytest.mark.parametrize(
    "body", [{"Invoices": []}, {"Invoices": [{}]}, {"Invoices": [{"InvoiceID": "../x"}]}, None]
)
def test_an_empty_or_odd_answer_to_a_new_bill_is_a_provider_error_naming_xero(body):
    bill = {"type": "purchase", "number": "F-1", "date": "2026-11-02", "amount_net": "1", "amount_tax": "0"}
    with pytest.raises(ProviderError) as raised:
        _connector([(200, body)]).publish_invoice(_tokens(), {**bill, "contact_id": "c"}, idempotency_key="k")
    assert "Xero" in raised.value.message


def test_contacts_are_read_with_the_largest_page_xero_gives_unless_configured_lower():
    """Xero gives up to 1000 contacts a page (100 unless asked): fewer calls against its 60 a minute."""
    assert _page_size_asked() == "1000"
    assert _page_size_asked(page_size=200) == "200"  # LIST_PAGE_SIZE, through the catalogue
    assert _page_size_asked(page_size=5000) == "1000"


def _page_size_asked(**overrides) -> str:
    connector = XeroConnector(**_arguments(**overrides))
    session = ScriptedSession([(200, {"Contacts": []})])
    asked = []
    answer = session.request
    session.request = lambda method, url, **kwargs: (
        asked.append(kwargs["params"]) or answer(method, url, **kwargs)
    )
    connector.http.session = session
    assert list(connector.iter_pages(_tokens(), ListKind.SUPPLIERS)) == [[]]
    return str(asked[0]["pageSize"])


def _arguments(**overrides) -> dict:
    return {
        "client_id": "raccord",
        "client_secret": "secret",
        "authorize_url": "https://login.xero.test/authorize",
        "token_url": "https://identity.xero.test/token",
        "revoke_url": "https://identity.xero.test/revocation",
        "connections_url": "https://api.xero.test/connections",
        "api_url": "https://api.xero.test/api.xro/2.0",
        "policy": RetryPolicy(max_retries=0, backoff=0),
        **overrides,
    }
