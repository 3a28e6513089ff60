"""Every search finds what people type: case, accents, punctuation and word order make no difference,
and results come in French order ('Sécuritas' before 'SFR'), on SQLite and on PostgreSQL.

The lists, the rule's supplier picker, the transfer review's picker, 'Mes dossiers' and the support's
search; then the normalised copies kept by every way a row is written."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert

from tests.conftest import login, text_of
from tests.factories import make_dossier, make_integration, make_item, make_organisation, make_user
from webapp.connectors.base import NormalisedItem
from webapp.extensions import db
from webapp.models import (
    Dossier,
    Integration,
    IntegrationStatus,
    ListItem,
    ListItemStaging,
    ListKind,
    Organisation,
    PartyKind,
    Role,
    RuleTransfer,
)
from webapp.models.base import utcnow
from webapp.search import MAX_QUERY_WORDS, matching_all, normalise, query_words, searchable, sort_key

# In French order, accents and case ignored.
NAMES = [
    "Centre Auto",
    "Centre Garage Dupont",
    "Épicerie Fine du Port",
    "Garage du Centre",
    "Garage Martin",
    "Lefèvre Frères",
    "Sécuritas Alarmes",
    "SÉCURITAS Direct",
    "SFR",
    "Würth France",
]
SEARCHES = {
    "Securitas": ["Sécuritas Alarmes", "SÉCURITAS Direct"],
    "SÉCURITAS": ["Sécuritas Alarmes", "SÉCURITAS Direct"],
    "sécuritas": ["Sécuritas Alarmes", "SÉCURITAS Direct"],
    "lefevre": ["Lefèvre Frères"],
    "LEFÈVRE freres": ["Lefèvre Frères"],
    "epicerie": ["Épicerie Fine du Port"],
    "wurth": ["Würth France"],
    "garage centre": ["Centre Garage Dupont", "Garage du Centre"],
    "centre  GARAGE": ["Centre Garage Dupont", "Garage du Centre"],
    "garage, du centre !": ["Centre Garage Dupont", "Garage du Centre"],  # "du" is in "Dupont"
    "« Garage-Martin » !": ["Garage Martin"],
    "s": ["Lefèvre Frères", "Sécuritas Alarmes", "SÉCURITAS Direct", "SFR"],
}
PASSWORD = "bon-mot-de-passe"


def shown(page: str, names=NAMES) -> list[str]:
    """The names of `names` the page shows, in the order it shows them (each exactly once)."""
    found = []
    for name in names:
        places = [m.start() for m in re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", page)]
        assert len(places) <= 1, (name, page)
        if places:
            found.append((places[0], name))
    return [name for _, name in sorted(found)]


@pytest.fixture
def world(client, app_ctx):
    """A dossier whose suppliers are NAMES (written in bulk, as a refresh or a reproduction writes
    them), a former integration with a rule transfer reviewing one supplier, and a user logged in."""
    org = make_organisation("Cabinet Girard")
    dossier = make_dossier(org, "Boulangerie Martin")
    old = make_integration(dossier, status=IntegrationStatus.DISCONNECTED)
    integration = make_integration(dossier)
    now = utcnow()
    rows = [
        {
            "integration_id": integration.id,
            "kind": ListKind.SUPPLIERS,
            "external_id": f"s-{i}",
            "name": name,
            "active": True,
            "extras": {},
            "visible": True,
            "created_at": now,
            "updated_at": now,
        }
        for i, name in enumerate(reversed(NAMES))
    ]
    db.session.execute(insert(ListItem), rows)
    gone = make_item(old, ListKind.SUPPLIERS, "Sécuritas (ancien)")
    run = RuleTransfer(
        dossier_id=dossier.id,
        target_integration_id=integration.id,
        status="review",
        to_review=[{"item_id": gone.id, "kind": "suppliers", "label": gone.name, "why": "introuvable"}],
    )
    db.session.add(run)
    db.session.commit()
    make_user(org, "claire@girard.test", PASSWORD)
    login(client, "claire@girard.test", PASSWORD)
    return {"dossier": dossier.id, "integration": integration.id, "run": run.id, "gone": gone.id}


def test_the_list_finds_what_people_type_in_french_order(client, world):
    for query in list(SEARCHES):
        page = text_of(
            client.get(f"/dossiers/{world['dossier']}/listes/suppliers", query_string={"q": query})
        )
        assert shown(page) == SEARCHES[query], query
        assert (
            f"{len(SEARCHES[query])} élément{'s' if len(SEARCHES[query]) > 1 else ''} · page 1 sur 1" in page
        )


def test_the_whole_list_comes_in_french_order(client, world):
    page = text_of(client.get(f"/dossiers/{world['dossier']}/listes/suppliers"))
    assert shown(page) == NAMES  # 'Épicerie' among the E, 'Sécuritas' before 'SFR'


def test_the_rule_picker_finds_what_people_type_in_french_order(client, world):
    for query in list(SEARCHES):
        fragment = text_of(
            client.get(
                f"/dossiers/{world['dossier']}/regles/fournisseurs/tiers",
                query_string={"q": query},
                headers={"HX-Request": "true"},
            )
        )
        assert shown(fragment) == SEARCHES[query], query


def test_the_transfer_picker_finds_what_people_type_in_french_order(client, world):
    url = f"/dossiers/{world['dossier']}/integrations/{world['integration']}/transferts/{world['run']}/tiers"
    for query in list(SEARCHES):
        fragment = text_of(
            client.get(url, query_string={"item": world["gone"], "q": query}, headers={"HX-Request": "true"})
        )
        assert shown(fragment) == SEARCHES[query], query
        assert "Sécuritas (ancien)" not in fragment  # only the new software's list


@pytest.mark.parametrize("cap", [3, 1000])
def test_many_matches_or_few_come_in_the_same_order(client, world, monkeypatch, cap):
    """Past the count cap the search index is walked in order, below it the matches are all found
    then sorted: either way the same French order, in the list and in the picker."""
    monkeypatch.setattr("webapp.services.lists.COUNT_CAP", cap)
    expected = SEARCHES["s"]  # 4 matches
    page = text_of(client.get(f"/dossiers/{world['dossier']}/listes/suppliers", query_string={"q": "s"}))
    assert shown(page) == expected
    assert ("précisez la recherche" in page) is (cap == 3)
    picker = f"/dossiers/{world['dossier']}/regles/fournisseurs/tiers"
    assert shown(text_of(client.get(picker, query_string={"q": "s"}))) == expected
    second = text_of(client.get(f"/dossiers/{world['dossier']}/listes/suppliers?q=s&statut=tous&page=2"))
    assert "page 1 sur 1" in second and shown(second) == expected


def test_a_search_of_wildcards_or_nothing_is_no_search(client, world):
    """'%' and '_' match nothing by themselves: the page is that of no search at all."""
    for query in ["%", "_", "%%_", "  ", "\u200b"]:
        base = f"/dossiers/{world['dossier']}/listes/suppliers"
        page = text_of(client.get(base, query_string={"q": query}))
        assert shown(page) == NAMES and "10 éléments" in page, query
        picker = client.get(
            f"/dossiers/{world['dossier']}/regles/fournisseurs/tiers", query_string={"q": query}
        )
        assert picker.status_code == 200 and shown(text_of(picker)) == []


def test_wildcards_between_words_only_separate_them(client, world):
    for query in ["Garage%Martin", "garage_martin", "s%r", "%frères"]:
        expected = {
            "Garage%Martin": ["Garage Martin"],
            "garage_martin": ["Garage Martin"],
            "s%r": ["Lefèvre Frères", "Sécuritas Alarmes", "SÉCURITAS Direct", "SFR"],  # an 's' and an 'r'
            "%frères": ["Lefèvre Frères"],
        }[query]
        page = text_of(
            client.get(f"/dossiers/{world['dossier']}/listes/suppliers", query_string={"q": query})
        )
        assert shown(page) == expected, query


def test_a_long_or_odd_search_is_answered_in_french(client, world):
    base = f"/dossiers/{world['dossier']}/listes/suppliers"
    for query in ("é" * 5000, "garage " * 400, "\U0001f600 wurth \u200b", "ǅ ﬁ ½ ⅻ", "'; DROP TABLE x; --"):
        response = client.get(base, query_string={"q": query})
        assert response.status_code == 200, query
    assert shown(text_of(client.get(base, query_string={"q": "\U0001f600 wurth \u200b"}))) == ["Würth France"]
    nothing = text_of(client.get(base, query_string={"q": "zzz"}))
    assert "Aucun élément ne correspond à « zzz »." in nothing


def test_a_nul_in_a_search_is_refused_in_french_and_the_searches_themselves_bear_it(client, world):
    """The app refuses a NUL before any page reads it (PostgreSQL takes none); the searches called
    from elsewhere (the support's command line) take it as a space."""
    from webapp.services.lists import search_items
    from webapp.services.rules import search_parties
    from webapp.services.support import find_dossiers

    for url in (
        f"/dossiers/{world['dossier']}/listes/suppliers",
        f"/dossiers/{world['dossier']}/regles/fournisseurs/tiers",
        "/dossiers",
    ):
        response = client.get(url, query_string={"q": "wurth\x00"})
        assert response.status_code == 400 and "caractère invisible interdit (NUL)" in text_of(response)
    integration = db.session.get(Integration, world["integration"])
    page = search_items(integration, ListKind.SUPPLIERS, query="wurth\x00zz", status="tous", page=1)
    assert page.items == []
    page = search_items(integration, ListKind.SUPPLIERS, query="\x00wurth", status="tous", page=1)
    assert [i.name for i in page.items] == ["Würth France"]
    assert [p.name for p in search_parties(integration, PartyKind.SUPPLIER, "wurth\x00")] == ["Würth France"]
    assert [f.dossier.name for f in find_dossiers("\x00boulangerie\x00")] == ["Boulangerie Martin"]


# --- 'Mes dossiers' and the support -------------------------------------------------------------


@pytest.fixture
def cabinets(app_ctx):
    """NAMES as the dossiers of one cabinet, one 'Sécuritas' dossier of another cabinet, and staff."""
    org = make_organisation("Cabinet Girard")
    for name in reversed(NAMES):
        make_dossier(org, name, siren="552100554" if name == "SFR" else "732829320")
    make_dossier(make_organisation("Cabinet Bénédicte Ôtéro"), "Sécuritas de l'Autre Cabinet")
    make_user(org, "claire@girard.test", PASSWORD)
    make_user(make_organisation("Équipe Raccord"), "support@raccord.example", PASSWORD, Role.STAFF)


def dossier_links(response) -> str:
    """The dossiers' names as 'Mes dossiers' lists them: the text of each row's link (the row's
    checkbox names the dossier too, for screen readers)."""
    page = text_of(response)
    return "\n".join(re.findall(r'<a href="/dossiers/\d+">([^<]*)</a>', page))


def test_my_dossiers_finds_what_people_type_in_french_order(client, cabinets):
    login(client, "claire@girard.test", PASSWORD)
    for query in list(SEARCHES):
        response = client.get("/dossiers", query_string={"q": query})
        assert shown(dossier_links(response)) == SEARCHES[query], query
        assert "Sécuritas de l'Autre Cabinet" not in text_of(response)


def test_my_dossiers_come_in_french_order_and_by_siren(client, cabinets):
    login(client, "claire@girard.test", PASSWORD)
    assert shown(dossier_links(client.get("/dossiers"))) == NAMES
    assert shown(dossier_links(client.get("/dossiers", query_string={"q": "552 100 554"}))) == ["SFR"]
    for query in ("%", "_", "x" * 5000):
        assert client.get("/dossiers", query_string={"q": query}).status_code == 200


def test_the_support_search_finds_what_people_type_in_french_order(client, cabinets):
    login(client, "support@raccord.example", PASSWORD)
    for query in [q for q in SEARCHES if q != "s"]:  # 's' is in every email
        page = text_of(client.get("/support", query_string={"q": query}))
        expected = SEARCHES[query]
        if query in ("Securitas", "SÉCURITAS", "sécuritas", "s"):  # the other cabinet's dossier too
            expected = sorted([*expected, "Sécuritas de l'Autre Cabinet"], key=sort_key)
        assert shown(page, [*NAMES, "Sécuritas de l'Autre Cabinet"]) == expected, query


def test_the_support_finds_a_cabinet_by_its_name_or_a_users_email(client, cabinets):
    login(client, "support@raccord.example", PASSWORD)
    by_cabinet = text_of(client.get("/support", query_string={"q": "otero BENEDICTE"}))
    assert shown(by_cabinet, [*NAMES, "Sécuritas de l'Autre Cabinet"]) == ["Sécuritas de l'Autre Cabinet"]
    by_email = text_of(client.get("/support", query_string={"q": "claire@girard"}))
    assert shown(by_email) == NAMES
    # A cabinet word and a dossier word together.
    both = text_of(client.get("/support", query_string={"q": "girard wurth"}))
    assert shown(both) == ["Würth France"]
    for query in ("%", "_", "%@%", "x" * 5000):
        response = client.get("/support", query_string={"q": query})
        assert response.status_code == 200 and shown(text_of(response)) == [], query


# --- the normalised copies, kept by every write ----------------------------------------------------


def _found(integration_id: int, query: str) -> list[str]:
    from webapp.services.lists import search_items

    integration = db.session.get(Integration, integration_id)
    page = search_items(integration, ListKind.SUPPLIERS, query=query, status="tous", page=1)
    return [item.name for item in page.items]


def test_an_item_changed_or_created_through_the_orm_is_found_by_its_new_name(app_ctx):
    integration = make_integration(make_dossier(make_organisation()))
    item = make_item(integration, ListKind.SUPPLIERS, "Ancien Nom", vat_number="FR 03 552 081 317")
    assert _found(integration.id, "fr03552081317") == ["Ancien Nom"]
    item.name = "Société Générale"
    db.session.commit()
    assert _found(integration.id, "generale societe") == ["Société Générale"]
    assert _found(integration.id, "ancien") == []
    item.vat_number = None
    db.session.commit()
    assert _found(integration.id, "552081317") == []
    assert db.session.get(ListItem, item.id).sort_name == "societe generale"


def test_a_refresh_merge_writes_the_copies_of_new_and_changed_items(app_ctx):
    from webapp.services.lists import merge_staging

    integration = make_integration(make_dossier(make_organisation()))
    db.session.add(
        ListItem(integration_id=integration.id, kind=ListKind.SUPPLIERS, external_id="e-1", name="Ancien Nom")
    )
    db.session.commit()
    staged = [
        {"external_id": "e-1", "name": "Œuvres Sociales Würth"},
        {
            "external_id": "e-2",
            "name": "Lefèvre & Fils",
            "code": "401-LEF",
            "vat_number": "FR 03 552 081 317",
        },
    ]
    db.session.connection().execute(
        ListItemStaging.__table__.insert(),
        [
            {"run_key": "r1", "integration_id": integration.id, "kind": ListKind.SUPPLIERS, "active": True}
            | {"extras": {}, "code": None, "vat_number": None, "siren": None, "rate": None}
            | row
            for row in staged
        ],
    )
    db.session.commit()
    counts = merge_staging(db.session, integration.id, ListKind.SUPPLIERS, "r1", full=True)
    assert (counts.added, counts.updated) == (1, 1)
    assert _found(integration.id, "oeuvres wurth") == ["Œuvres Sociales Würth"]
    assert _found(integration.id, "lefevre") == ["Lefèvre & Fils"]
    assert _found(integration.id, "401lef") == _found(integration.id, "401 lef") == ["Lefèvre & Fils"]
    assert _found(integration.id, "FR03552081317") == ["Lefèvre & Fils"]
    assert _found(integration.id, "ancien") == []


def test_an_item_the_software_just_created_is_found_at_once(app_ctx):
    from webapp.services.parties import upsert_list_item

    integration = make_integration(make_dossier(make_organisation()))
    upsert_list_item(
        integration, ListKind.SUPPLIERS, NormalisedItem(external_id="n-1", name="Épicerie Würth")
    )
    db.session.commit()
    assert _found(integration.id, "wurth epicerie") == ["Épicerie Würth"]
    upsert_list_item(
        integration, ListKind.SUPPLIERS, NormalisedItem(external_id="n-1", name="Épicerie Lefèvre")
    )
    db.session.commit()
    assert _found(integration.id, "lefevre") == ["Épicerie Lefèvre"] and _found(integration.id, "wurth") == []


def test_an_invoices_supplier_written_without_accents_is_the_one_in_the_list(app_ctx):
    """An invoice's supplier is looked for in the list through the same normalised copy: 'LEFEVRE
    FRERES' is 'Lefèvre Frères' (no second supplier is created), whatever the spaces of a VAT number."""
    from webapp.services.parties import PartyIdentity, match_in_list

    integration = make_integration(make_dossier(make_organisation()))
    lefevre = make_item(integration, ListKind.SUPPLIERS, "Lefèvre Frères")
    atelier = make_item(integration, ListKind.SUPPLIERS, "L'Atelier d'Élise")
    edf = make_item(integration, ListKind.SUPPLIERS, "EDF", vat_number="FR 03 552 081 317")
    make_item(integration, ListKind.SUPPLIERS, "Lefèvre Frères (ancien)", active=False)

    def match(**identity) -> int | None:
        found = match_in_list(integration, ListKind.SUPPLIERS, PartyIdentity(**identity))
        return found.id if found else None

    assert match(name="LEFEVRE FRERES SARL") == lefevre.id
    assert match(name="Latelier Delise") == atelier.id
    assert match(name="Électricité de France", vat_number="FR03552081317") == edf.id
    assert match(name="Autre", siren="552081317") == edf.id
    assert match(name="Lefèvre Sœurs") is None


def test_a_renamed_dossier_and_cabinet_are_found_by_their_new_names(app_ctx):
    from webapp.services.dossiers import update_dossier
    from webapp.services.support import find_dossiers

    org = make_organisation("Cabinet Martin")
    dossier = make_dossier(org, "Boulangerie")
    update_dossier(dossier, name="Épicerie Würth", siren="552100554")
    assert [f.dossier.name for f in find_dossiers("wurth")] == ["Épicerie Würth"]
    assert db.session.get(Dossier, dossier.id).sort_name == "epicerie wurth"
    db.session.get(Organisation, org.id).name = "Cabinet Lefèvre"
    db.session.commit()
    assert [f.dossier.name for f in find_dossiers("LEFEVRE")] == ["Épicerie Würth"]
    assert find_dossiers("cabinet martin") == []


# --- the normaliser ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (None, ""),
        ("   \t\n ", ""),
        ("%_", ""),
        ("a\x00b", "a b"),
        ("SÉCURITAS", "securitas"),
        ("Lefèvre", "lefevre"),
        ("Épicerie", "epicerie"),
        ("Würth", "wurth"),
        ("Œuvre Æther Straße ẞ", "oeuvre aether strasse ss"),
        ("Łódź Søren İstanbul", "lodz soren istanbul"),
        ("  Garage   du\u00a0Centre  ", "garage du centre"),
        ("L’Atelier d'Élise", "l atelier d elise"),
        ("ﬁne ½ Ⅻ", "fine 1 2 xii"),
        ("Москва Ёлка", "москва елка"),
    ],
)
def test_the_normaliser(text, expected):
    assert normalise(text) == expected


def test_punctuated_words_are_also_kept_joined_up():
    assert searchable("S.A.R.L. l'Église") == "s a r l l eglise sarl leglise"
    assert searchable("Coca-Cola") == "coca cola cocacola"


def test_a_search_is_cut_into_its_words():
    assert query_words("garage centre GARAGE gar") == ["centre", "garage"]  # longest first
    assert query_words("") == query_words(None) == query_words("  ") == query_words("%_%") == []
    assert query_words("a\x00b") == ["a", "b"]
    many = query_words(" ".join(f"mot{i:03d}" for i in range(500)))
    assert len(many) == MAX_QUERY_WORDS
    assert query_words("é" * 1_000_000) == ["e" * 200]  # only the start of a very long search is read


def test_a_search_pattern_holds_no_wildcard_but_its_ends():
    conditions = matching_all(ListItem.search_text, query_words("50%_off 1_000"))
    patterns = sorted(c.right.value for c in conditions)
    assert patterns == ["%000%", "%1%", "%50%", "%off%"]


def test_the_copies_fit_their_columns_whatever_the_name():
    from webapp.search import SEARCH_TEXT_BYTES, SORT_NAME_BYTES, combined

    for name in ("﷽" * 300, "𠀀" * 300, "a." * 150, "Ǆ" * 300):
        text = combined(searchable("9" * 60), searchable(name))
        assert len(text.encode()) <= SEARCH_TEXT_BYTES and len(sort_key(name).encode()) <= SORT_NAME_BYTES


def test_the_migration_fills_the_copies_as_the_app_computes_them():
    """0020 keeps its own copy of the normaliser, as it was on its day: today they agree."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0020_search_text.py"
    spec = importlib.util.spec_from_file_location("migration_0020", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    from webapp.models.lists import item_search_text

    samples = [*NAMES, "S.A.R.L. l'Église", "Œuvre ß", "﷽" * 300, "", "Łódź", "a\x00b", "401-DUP"]
    for name in samples:
        values = {"name": name, "code": "401-dup", "vat_number": "FR 03 552", "siren": "552 100"}
        row = type("Row", (), values)
        filled = migration.FILLED["list_item"][1](row)
        assert filled == {"search_text": item_search_text(values.get), "sort_name": sort_key(name)}


def test_the_migration_fills_the_rows_already_there_in_batches(database_url):
    """Lists, dossiers and cabinets made before 0020 are found as the new ones are, all of them (more
    rows than one batch), and the list index and PostgreSQL's trigram index are the new ones."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from tests import conftest
    from tests.test_migrations import _fresh_app, _row_for

    app = _fresh_app(database_url)
    try:
        with app.app_context():
            upgrade(revision="0019")
            tables = sa.MetaData()
            tables.reflect(db.engine)
            ids: dict[str, int] = {}

            def add(table_name: str, **values) -> int:
                table = tables.tables[table_name]
                row = _row_for(table, db.metadata.tables[table_name], ids) | values
                with db.engine.begin() as conn:
                    key = conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one()
                ids[table_name] = key
                return key

            add("organisation", name="Cabinet Lefèvre")
            add("dossier", name="Épicerie Würth", siren="552100554")
            integration = add("integration")
            model = db.metadata.tables["list_item"]
            base = _row_for(tables.tables["list_item"], model, ids) | {"kind": "suppliers", "active": True}
            base |= {"code": None, "vat_number": None}
            rows = [base | {"external_id": f"e-{i}", "name": f"Boulangerie {i}"} for i in range(5003)]
            rows[-1] |= {"name": "SÉCURITAS Lefèvre", "code": "401-SEC", "vat_number": "FR 03 552 081 317"}
            with db.engine.begin() as conn:
                conn.execute(tables.tables["list_item"].insert(), rows)
            upgrade(revision="0020")
            with db.engine.connect() as conn:
                empty = conn.execute(
                    sa.text("SELECT count(*) FROM list_item WHERE search_text = '' OR sort_name = ''")
                )
                assert empty.scalar_one() == 0
                last = conn.execute(
                    sa.text("SELECT search_text, sort_name FROM list_item WHERE external_id = 'e-5002'")
                ).one()
                assert tuple(last) == ("fr03552081317 401 sec 401sec securitas lefevre", "securitas lefevre")
                assert conn.execute(sa.text("SELECT search_text, sort_name FROM dossier")).one() == (
                    "552100554 epicerie wurth",
                    "epicerie wurth",
                )
                assert (
                    conn.execute(sa.text("SELECT search_text FROM organisation")).scalar_one()
                    == "cabinet lefevre"
                )
            indexes = {i["name"]: i for i in sa.inspect(db.engine).get_indexes("list_item")}
            assert indexes["ix_list_item_search"]["column_names"][2:4] == ["sort_name", "id"]
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect() as conn:
                    definition = conn.execute(
                        sa.text(
                            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_list_item_trigram'"
                            " AND schemaname = current_schema()"
                        )
                    ).scalar_one()
                assert "gin (search_text" in definition and "gin_trgm_ops" in definition
            upgrade(revision="heads")  # the search below is today's code, on today's tables
            found = _found(integration, "lefevre securitas 401sec")
            assert found == ["SÉCURITAS Lefèvre"]
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        conftest._schemas_made.discard(database_url)
