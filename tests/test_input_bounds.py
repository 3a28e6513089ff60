"""Input at the edges of what the database holds: ids beyond a column's range, a NUL character,
amounts too large. Each gets a 404 or a French message, on SQLite and PostgreSQL, and nothing is
written; no input gives an error 500."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, text_of
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from tests.test_documents import invoice
from webapp.extensions import db
from webapp.models import Document, Dossier, ListKind, PartyKind, Role, Rule
from webapp.services.documents import MAX_AMOUNT

#: Beyond PostgreSQL's INTEGER (2**31), beyond SQLite's and PostgreSQL's BIGINT (2**63), and more.
TOO_BIG = (2**31, 2**63, 10**19, 99999999999999999999)
NUL_REFUSED = "caractère invisible interdit (NUL)"


@pytest.fixture
def world(app_ctx):
    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin", "732829320")
    integration = make_integration(dossier)
    supplier = make_item(integration, ListKind.SUPPLIERS, "EDF Entreprises")
    account = make_item(integration, ListKind.ACCOUNTS, "Électricité", code="606100")
    tax = make_item(integration, ListKind.TAX_RATES, "TVA 20 %", code="TVA20", rate="20.0")
    make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
    make_user(make_organisation("Raccord"), "support@raccord.test", "mot-de-passe-support", role=Role.STAFF)
    return {
        "dossier": dossier.id,
        "integration": integration.id,
        "supplier": supplier.id,
        "account": account.id,
        "tax": tax.id,
    }


def _table_counts() -> dict[str, int]:
    """Rows per table, but for what reading writes on purpose: sessions (a login) and events (the
    support's visits to a dossier are on its timeline)."""
    db.session.expire_all()
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
        if table.name not in ("user_session", "event")
    }


# --- ids in paths, query strings and forms ---------------------------------------------------------


def _id_routes(app) -> list:
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if any(rule._converters[a].__class__.__name__.endswith("IdConverter") for a in rule.arguments)
        ),
        key=lambda rule: rule.rule,
    )


def test_every_id_in_a_path_is_bounded_by_one_converter(app):
    """Every `<int:…>` and `<bigid:…>` of every route goes through the bounded converter."""
    rules = _id_routes(app)
    assert len(rules) >= 30
    for rule in app.url_map.iter_rules():
        for name, converter in rule._converters.items():
            assert type(converter).__name__ != "IntegerConverter", (rule.rule, name)


def _path_with(rule, world: dict, value: int) -> str:
    """The rule's path, with `value` for every id and the world's own values for the rest."""
    known = {"kind": "suppliers", "slug": "fournisseurs", "software": "sandbox"}

    def replace(match: re.Match) -> str:
        converter, name = match.group(1), match.group(2)
        if converter in ("int", "bigid"):
            return str(world["dossier"] if name == "dossier_id" and value is None else value)
        return known.get(name, "x")

    return re.sub(r"<(?:(\w+):)?(\w+)>", replace, rule.rule)


@pytest.mark.parametrize("value", TOO_BIG)
def test_an_id_beyond_its_column_in_a_path_is_a_404(app, client, world, value):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    token = csrf_token(client, f"/dossiers/{world['dossier']}")
    staff = app.test_client()
    login(staff, "support@raccord.test", "mot-de-passe-support")
    staff_token = csrf_token(staff, "/support")
    before = _table_counts()
    for rule in _id_routes(app):
        user, user_token = (staff, staff_token) if rule.rule.startswith("/support") else (client, token)
        path = _path_with(rule, world, value)
        if "GET" in rule.methods:
            response = user.get(path)
        else:
            response = user.post(path, data={"csrf_token": user_token})
        assert response.status_code == 404, (path, response.status_code)
        assert "Page introuvable" in text_of(response), path
    # Only the dossier's own id is out of range: the rest of the path is the user's own.
    for rule in _id_routes(app):
        ids = [a for a in rule.arguments if type(rule._converters[a]).__name__.endswith("IdConverter")]
        if rule.rule.startswith("/support") or "dossier_id" not in ids or len(ids) < 2:
            continue
        path = _path_with(rule, world, value).replace(
            f"/dossiers/{value}", f"/dossiers/{world['dossier']}", 1
        )
        response = (
            client.get(path) if "GET" in rule.methods else client.post(path, data={"csrf_token": token})
        )
        assert response.status_code == 404, (path, response.status_code)
    assert _table_counts() == before


@pytest.mark.parametrize("value", [*TOO_BIG, -1, "²", " 7", "1e3", "0x10"])
def test_ids_and_pages_in_query_strings_never_break_a_page(app, client, world, value):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    dossier, integration = world["dossier"], world["integration"]
    for path in (
        f"/dossiers/{dossier}/integrations/{integration}?integration={value}&avant={value}",
        f"/dossiers/{dossier}/documents?page={value}",
        f"/dossiers/{dossier}/documents?statut=pret&page={value}",
        f"/dossiers/{dossier}/listes/suppliers?page={value}",
        f"/dossiers/{dossier}/listes/suppliers?q=edf&page={value}",
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    staff = app.test_client()
    login(staff, "support@raccord.test", "mot-de-passe-support")
    response = staff.get(f"/support/dossiers/{dossier}?integration={value}&avant={value}")
    assert response.status_code == 200


@pytest.mark.parametrize("value", TOO_BIG)
def test_an_id_beyond_its_column_in_a_form_is_a_french_error(app, client, world, value):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    dossier = world["dossier"]
    before = _table_counts()

    new_rule = f"/dossiers/{dossier}/regles/fournisseurs/nouvelle"
    token = csrf_token(client, new_rule)
    response = client.post(
        new_rule, data={"csrf_token": token, "party_id": value, "account_id": world["account"]}
    )
    assert response.status_code in (200, 400, 422)
    assert "dans la liste" in text_of(response)

    new_invoice = f"/dossiers/{dossier}/documents/nouvelle/achat"
    form = {"csrf_token": token, **invoice({"edf": world["supplier"]}, payment_method_id=value)}
    response = client.post(new_invoice, data=form)
    assert response.status_code in (200, 400, 422)
    assert "dans la liste" in text_of(response)

    response = client.post(
        f"/dossiers/{dossier}/documents/publier", data={"csrf_token": token, "document_id": [value, "x"]}
    )
    assert response.status_code in (200, 302, 303, 400)

    staff = app.test_client()
    login(staff, "support@raccord.test", "mot-de-passe-support")
    staff_token = csrf_token(staff, f"/support/dossiers/{dossier}")
    response = staff.post(
        f"/support/dossiers/{dossier}/voir-comme",
        data={"csrf_token": staff_token, "user_id": value},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Choisissez un utilisateur du cabinet de ce dossier." in text_of(response)
    assert _table_counts() == before


# --- NUL characters ----------------------------------------------------------------------------------


def test_a_nul_character_anywhere_is_refused_in_french_and_nothing_is_stored(client, world):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    dossier = world["dossier"]
    new_invoice = f"/dossiers/{dossier}/documents/nouvelle/achat"
    token = csrf_token(client, new_invoice)
    form = {"csrf_token": token, **invoice({"edf": world["supplier"]})}
    before = _table_counts()
    posts = [
        (new_invoice, {**form, "number": "F-2026\x00-001"}, None),
        (new_invoice, {**form, "party_id": "", "party_name": "EDF\x00 Entreprises"}, None),
        (
            new_invoice,
            form,
            lambda: {"pdf": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "facture\x00.pdf", "application/pdf")},
        ),
        (  # an empty first part, then the file the form reads: every part is looked at
            new_invoice,
            form,
            lambda: {
                "pdf": [
                    (io.BytesIO(b""), ""),
                    (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "a\x00b.pdf", "application/pdf"),
                ]
            },
        ),
        (
            f"/dossiers/{dossier}/parametres",
            {"csrf_token": token, "name": "Boulangerie\x00", "siren": ""},
            None,
        ),
    ]
    for path, form, files in posts:
        for htmx in (False, True):
            data = {**form, **(files() if files else {})}
            headers = {"HX-Request": "true"} if htmx else {}
            response = client.post(path, data=data, headers=headers, content_type="multipart/form-data")
            assert response.status_code == 400, (path, form)
            if htmx:  # htmx swaps no error answer: the message comes as a toast
                assert NUL_REFUSED in json.loads(response.headers["HX-Trigger"])["raccord:toast"]["message"]
            else:
                assert NUL_REFUSED in text_of(response)
    for path in (
        f"/dossiers/{dossier}/listes/suppliers?q=ed%00f",
        f"/dossiers/{dossier}/regles/fournisseurs/tiers?q=%00",
        f"/dossiers/{dossier}/documents?statut=%00",
        "/support?q=boulangerie%00",
        f"/dossiers/{dossier}/listes/suppliers?q=edf&q=ed%00f",  # a second value of the same name
        f"/dossiers/{dossier}%00",
        f"/dossiers/{dossier}/documents%00?statut=pret",
    ):
        response = client.get(path)
        assert response.status_code == 400, path
        assert NUL_REFUSED in text_of(response)
        assert b"\x00" not in response.data, path  # nor copied into the page (its address)
    assert _table_counts() == before
    assert db.session.get(Dossier, dossier).name == "Boulangerie Martin"


# --- amounts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    ["1" * 27, "1000000000000", "1 000 000 000 000,00", "999999999999999999999999,99", "-1000000000000"],
)
def test_an_amount_beyond_what_is_stored_is_refused_never_changed(client, world, amount):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    new_invoice = f"/dossiers/{world['dossier']}/documents/nouvelle/achat"
    token = csrf_token(client, new_invoice)
    form = {"csrf_token": token, **invoice({"edf": world["supplier"]}, amount_ht=amount)}
    response = client.post(new_invoice, data=form)
    assert response.status_code in (200, 400, 422)
    page = text_of(response)
    assert "dépasse le plus grand montant accepté (999 999 999 999,99)" in page or (
        amount.startswith("-") and "négatif" in page
    )
    assert db.session.scalar(select(func.count()).select_from(Document)) == 0


def test_the_largest_amount_is_stored_exactly(client, world):
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    new_invoice = f"/dossiers/{world['dossier']}/documents/nouvelle/achat"
    token = csrf_token(client, new_invoice)
    amounts = {"amount_ht": "999 999 999 979,99", "amount_tva": "20,00", "amount_ttc": "999 999 999 999,99"}
    form = {"csrf_token": token, **invoice({"edf": world["supplier"]}, **amounts)}
    response = client.post(new_invoice, data=form)
    assert response.status_code in (200, 302, 303), text_of(response)[:500]
    document = db.session.scalar(select(Document))
    assert document.amount_ttc == MAX_AMOUNT == Decimal("999999999999.99")
    assert document.amount_ht == Decimal("999999999979.99")


# --- 64-bit ids where tables grow with every reload --------------------------------------------------


def test_the_growing_tables_have_64_bit_ids_on_postgresql():
    """List items, their staging, events and job runs have BIGINT ids on PostgreSQL, and so has every
    column that points to them (the migrations make the same schema: test_migrations compares them)."""
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    growing = {"list_item", "list_item_staging", "event", "job_run"}
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            points = {key.column.table.name for key in column.foreign_keys}
            kind = column.type.dialect_impl(dialect).compile(dialect=dialect)
            if (table.name in growing and column.name == "id") or points & growing:
                assert kind == "BIGINT", f"{table.name}.{column.name}"
    assert db.metadata.tables["dossier"].c.id.type.compile(dialect=dialect) == "INTEGER"


def test_a_rule_on_an_item_past_two_billion_is_kept(app, world):
    """A list item whose id is past 2**31 (a dossier reloaded often, for years) codes rules as any."""
    item = make_item(db.session.get(Dossier, world["dossier"]).integrations[0], ListKind.SUPPLIERS, "Orange")
    big = 2**31 + 5
    db.session.execute(sa.update(type(item)).where(type(item).id == item.id).values(id=big))
    db.session.commit()
    db.session.add(
        Rule(
            dossier_id=world["dossier"],
            integration_id=world["integration"],
            party_kind=PartyKind.SUPPLIER,
            party_id=big,
        )
    )
    db.session.commit()
    db.session.expire_all()
    assert db.session.scalar(select(Rule.party_id)) == big
