"""Every form fuzzed with hypothesis: whatever is posted, no error 500, and a refusal writes nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.extensions import db
from webapp.models import ListKind, Role

# Every field name the forms and routes read (WTForms fields and request.form keys), and a few more.
FIELDS = (
    "account_id",
    "amount_ht",
    "amount_ttc",
    "amount_tva",
    "auto_publish",
    "currency",
    "description",
    "direction",
    "due_date",
    "due_days",
    "email",
    "issue_date",
    "name",
    "number",
    "paid",
    "party_id",
    "party_name",
    "party_siren",
    "party_vat_number",
    "password",
    "payment_method_id",
    "reverse_charge",
    "siren",
    "tax_rate_id",
    "tracking_id",
    "warn_before_creating_supplier",
    "company_id",
    "decision",
    "regles",
    "statut",
    "token",
    "user_id",
    "visible",
    "document_id",
    "choix",
    "q",
    "action",
    "kind",
    "status",
    "role",
    "mode",
    "shown",
    "dossier",
    "coches",
    "page",
    "acces",
    "full_name",
    "new_password",
    "confirm",
)

VALUES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789-.,", max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63).map(str),
    st.sampled_from(
        ["", " ", "0", "-1", "1", "9" * 40, "1e309", "NaN", "2026-02-30", "31/12/2026", "on", "\x00"]
    ),
    st.text(min_size=300, max_size=5000),
)
FORMS = st.dictionaries(st.sampled_from(FIELDS), st.one_of(VALUES, st.lists(VALUES, max_size=3)), max_size=8)

# Leaving the session or the site is not a form to fuzz: logout, login (fuzzed for its own limits
# in test_auth), and the support area (404 for a member, tested in test_support).
SKIPPED_ENDPOINTS = {"auth.logout", "auth.login"}


@pytest.fixture
def member_world(app_ctx):
    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin", "732829320")
    integration = make_integration(dossier)
    make_item(integration, ListKind.SUPPLIERS, "EDF")
    make_item(integration, ListKind.ACCOUNTS, "Électricité", code="606100")
    # An admin, so that the pages of « Équipe » are fuzzed too, on a colleague of hers.
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe", Role.ADMIN)
    colleague = make_user(org, "hugo@lefevre.test")
    return dossier.id, integration.id, colleague.id


#: Journals that record a refused call on purpose: every webhook delivery, forged ones too.
JOURNALS = {"webhook_delivery"}


def _snapshot() -> dict[str, list]:
    db.session.expire_all()
    return {
        table.name: sorted(map(repr, db.session.execute(select(table)).all()))
        for table in db.metadata.sorted_tables
        if table.name not in JOURNALS
    }


def _post_routes(app, dossier_id: int, integration_id: int, user_id: int) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if (
            "POST" not in rule.methods
            or rule.endpoint in SKIPPED_ENDPOINTS
            or rule.rule.startswith("/support")
        ):
            continue
        values = {
            "dossier_id": dossier_id,
            "integration_id": integration_id,
            "kind": "suppliers",
            "software": "sandbox",
            "item_id": 1,
            "slug": "fournisseurs",
            "key": "cle-de-choix-inconnue",
            "document_id": 1,
            "rule_id": 1,
            "payment_rule_id": 1,
            "run_id": 1,
            "job_run_id": 1,
            "user_id": user_id,
            "invitation_id": 1,
        }
        path = rule.build({k: v for k, v in values.items() if k in rule.arguments}, append_unknown=False)[1]
        routes.append((rule.endpoint, path))
    return sorted(routes)


def test_every_form_survives_any_input_and_a_refusal_writes_nothing(app, client, member_world):
    dossier_id, integration_id, user_id = member_world
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    token = csrf_token(client, f"/dossiers/{dossier_id}")
    routes = _post_routes(app, dossier_id, integration_id, user_id)
    assert len(routes) >= 15

    for endpoint, path in routes:
        fuzz_route(client, token, endpoint, path)


def fuzz_route(client, token: str, endpoint: str, path: str) -> None:
    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(form=FORMS, htmx=st.booleans())
    def post(form, htmx):
        before = _snapshot()
        headers = {"X-CSRFToken": token, **({"HX-Request": "true"} if htmx else {})}
        response = client.post(path, data={**form, "csrf_token": token}, headers=headers)
        assert response.status_code < 500, (endpoint, path, form, response.status_code)
        if response.status_code >= 400:
            assert _snapshot() == before, (endpoint, path, form)
        assert "Traceback" not in response.get_data(as_text=True)

    post()
