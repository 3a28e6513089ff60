"""The kept parts of a dossier's pages (webapp.fragments): each write leads to a new version, a page
never shows a part older than the last write, and a part never reaches another dossier, another
language, or another person's session (CSRF tokens are the reader's own)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import delete, select, update

from tests.conftest import login, make_app, text_of, unescaped
from tests.factories import (
    make_document,
    make_dossier,
    make_integration,
    make_item,
    make_organisation,
    make_user,
)
from webapp.extensions import db
from webapp.models import (
    Document,
    DocumentStatus,
    DossierSummary,
    IntegrationStatus,
    JobRun,
    ListItem,
    ListKind,
    ListSync,
    PartyKind,
    Rule,
)
from webapp.models.base import utcnow
from webapp.models.lists import SyncStatus
from webapp.services.events import record_event
from webapp.services.jobs import get_redis

pytestmark = pytest.mark.usefixtures("summaries_stay_true")

PASSWORD = "mot-de-passe-solide"


def version_of(dossier_id: int) -> str:
    db.session.rollback()  # what is committed, not this session's snapshot
    return db.session.scalar(select(DossierSummary.version).where(DossierSummary.dossier_id == dossier_id))


def invoice(dossier, integration, number: str, **fields) -> Document:
    return make_document(dossier, integration, number, **fields)


@pytest.fixture
def cabinet(client, app_ctx):
    org = make_organisation("Cabinet Lefèvre")
    dossier = make_dossier(org, "Boulangerie Martin")
    integration = make_integration(dossier)
    edf = make_item(integration, ListKind.SUPPLIERS, "EDF Entreprises")
    make_item(integration, ListKind.SUPPLIERS, "Martin Matériaux")
    other = make_dossier(org, "Garage Dubois", siren=None)
    other_integration = make_integration(other)
    make_item(other_integration, ListKind.SUPPLIERS, "Martin Transports")
    claire = make_user(org, "claire@lefevre.test", PASSWORD)
    return {
        "org": org,
        "dossier": dossier,
        "integration": integration,
        "edf": edf,
        "other": other,
        "other_integration": other_integration,
        "claire": claire,
    }


def _write(name: str, world) -> None:
    """One write of something the dossier's pages show, as the app or a worker makes it."""
    dossier, integration = world["dossier"], world["integration"]
    if name == "document added":
        invoice(dossier, integration, "F-NOUVELLE")
    elif name == "document changed by a statement":
        db.session.execute(
            update(Document).where(Document.dossier_id == dossier.id).values(status=DocumentStatus.FAILED)
        )
    elif name == "item added":
        make_item(integration, ListKind.SUPPLIERS, "Orange Business")
    elif name == "item renamed":
        world["edf"].name = "EDF Pro"
    elif name == "list loaded":
        db.session.add(
            ListSync(integration_id=integration.id, kind=ListKind.ACCOUNTS, status=SyncStatus.SUCCEEDED)
        )
    elif name == "event":
        record_event(dossier_id=dossier.id, kind="integration.test", message="Un événement.")
    elif name == "rule added":
        db.session.add(
            Rule(
                dossier_id=dossier.id,
                integration_id=integration.id,
                party_kind=PartyKind.SUPPLIER,
                party_id=world["edf"].id,
            )
        )
    elif name == "rules removed by a statement":
        db.session.execute(delete(Rule).where(Rule.dossier_id == dossier.id))
    elif name == "integration expired":
        integration.status = IntegrationStatus.EXPIRED
    elif name == "dossier renamed":
        dossier.name = "Boulangerie Martin & Fils"
    elif name == "someone of the cabinet renamed":
        world["claire"].full_name = "Claire Lefèvre-Martin"
    db.session.commit()


WRITES = [
    "document added",
    "document changed by a statement",
    "item added",
    "item renamed",
    "list loaded",
    "event",
    "rule added",
    "rules removed by a statement",
    "integration expired",
    "dossier renamed",
    "someone of the cabinet renamed",
]


@pytest.mark.parametrize("write", WRITES)
def test_every_write_of_what_a_page_shows_gives_the_dossier_a_new_version(cabinet, write):
    dossier, other = cabinet["dossier"], cabinet["other"]
    if write == "rules removed by a statement":
        _write("rule added", cabinet)
    if write == "document changed by a statement":
        invoice(dossier, cabinet["integration"], "F-1")
    before, other_before = version_of(dossier.id), version_of(other.id)
    assert before and other_before and before != other_before

    _write(write, cabinet)

    assert version_of(dossier.id) != before
    if write == "someone of the cabinet renamed":
        assert version_of(other.id) != other_before  # every dossier of the cabinet names them
    else:
        assert version_of(other.id) == other_before  # another dossier's parts stay kept


def test_a_write_no_page_shows_keeps_the_version(cabinet):
    before = version_of(cabinet["dossier"].id)
    cabinet["claire"].last_login_at = cabinet["claire"].created_at
    db.session.commit()
    assert version_of(cabinet["dossier"].id) == before


def kept_keys(app, name: str) -> list[bytes]:
    return [key for key in get_redis(app).scan_iter(f"raccord:fragment:*:{name}:*")]


def test_documents_page_is_kept_and_follows_each_write(client, app, cabinet):
    dossier, integration = cabinet["dossier"], cabinet["integration"]
    document = invoice(dossier, integration, "F-2026-001")
    login(client, "claire@lefevre.test", PASSWORD)
    url = f"/dossiers/{dossier.id}/documents"

    assert "F-2026-001" in text_of(client.get(url))
    assert len(kept_keys(app, "documents")) == 1
    assert "F-2026-001" in text_of(client.get(url))  # served from what was kept
    assert len(kept_keys(app, "documents")) == 1

    document.number = "F-2026-001-BIS"
    document.status = DocumentStatus.FAILED
    document.failure_reason = "Le logiciel a refusé la facture."
    db.session.commit()

    page = text_of(client.get(url))
    assert "F-2026-001-BIS" in page and "Le logiciel a refusé la facture." in page
    assert 'Échec <span class="count">1</span>' in page  # the tab counts follow too
    assert len(kept_keys(app, "documents")) == 2


def _statements_of(app, request) -> list[str]:
    """The SQL statements the request sends, in order."""
    from sqlalchemy import event

    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        request()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return sent


def test_a_kept_page_asks_the_database_one_thing_the_session_with_the_dossier(client, app, cabinet):
    dossier, integration = cabinet["dossier"], cabinet["integration"]
    invoice(dossier, integration, "F-2026-001", status=DocumentStatus.READY)
    for kind in ListKind:  # loaded once (else the first visit makes their lines: a write)
        db.session.add(ListSync(integration_id=integration.id, kind=kind, status=SyncStatus.SUCCEEDED))
    db.session.commit()
    login(client, "claire@lefevre.test", PASSWORD)
    pages = [
        f"/dossiers/{dossier.id}/documents",
        f"/dossiers/{dossier.id}/integrations/{integration.id}",
        f"/dossiers/{dossier.id}/listes/suppliers?q=martin",
    ]
    for url in pages:
        client.get(url)  # rendered and kept
        sent = _statements_of(app, lambda url=url: client.get(url))
        assert len(sent) == 1, (url, [each[:90] for each in sent])
        assert "user_session" in sent[0] and "dossier_summary" in sent[0]

    # An invoice 'En cours' without a publication job: nothing to look for either.
    invoice(dossier, integration, "F-2026-002", status=DocumentStatus.IN_PROGRESS)
    client.get(url := f"/dossiers/{dossier.id}/documents")
    assert len(_statements_of(app, lambda: client.get(url))) == 1
    # One being published whose job is gone (its worker died): Documents looks, and says Échec.
    run = JobRun(rq_job_id="publication-f-2026-003", kind="publish", dossier_id=dossier.id)
    db.session.add(run)
    db.session.flush()
    document = invoice(
        dossier, integration, "F-2026-003", status=DocumentStatus.IN_PROGRESS, job_run_id=run.id
    )
    sent = _statements_of(app, lambda: client.get(url))
    assert any("job_run_id IS NOT NULL" in each for each in sent)
    db.session.refresh(document)
    assert document.status is DocumentStatus.FAILED
    assert len(_statements_of(app, lambda: client.get(url))) == 1  # and no more once released


def test_search_results_follow_an_item_renamed(client, app, cabinet):
    dossier = cabinet["dossier"]
    login(client, "claire@lefevre.test", PASSWORD)
    url = f"/dossiers/{dossier.id}/listes/suppliers?q=martin"
    page = text_of(client.get(url))
    assert "Martin Matériaux" in page
    assert "Martin Transports" not in page  # the other dossier's supplier, same words
    assert kept_keys(app, "list-page")

    item = db.session.scalar(select(ListItem).where(ListItem.name == "Martin Matériaux"))
    item.name = "Martin Matériaux et Fils"
    db.session.commit()

    assert "Martin Matériaux et Fils" in text_of(client.get(url))
    # The fragment asked by the search box (htmx) is the same kept part.
    fragment = client.get(url, headers={"HX-Request": "true", "HX-Target": "list-results"})
    assert "Martin Matériaux et Fils" in text_of(fragment)


def test_parts_never_cross_dossiers(client, cabinet):
    login(client, "claire@lefevre.test", PASSWORD)
    first = text_of(client.get(f"/dossiers/{cabinet['dossier'].id}/listes/suppliers?q=martin"))
    second = text_of(client.get(f"/dossiers/{cabinet['other'].id}/listes/suppliers?q=martin"))
    assert "Martin Matériaux" in first and "Martin Transports" not in first
    assert "Martin Transports" in second and "Martin Matériaux" not in second
    assert "Boulangerie Martin" in first and "Garage Dubois" in second


def _tokens(page: str) -> set[str]:
    return set(re.findall(r'name="csrf_token" value="([^"]+)"', unescaped(page)))


def test_a_kept_page_carries_each_readers_own_csrf_token(app, cabinet):
    dossier = cabinet["dossier"]
    invoice(dossier, cabinet["integration"], "F-2026-007")
    make_user(cabinet["org"], "paul@lefevre.test", PASSWORD)
    claire, paul = app.test_client(), app.test_client()
    login(claire, "claire@lefevre.test", PASSWORD)
    login(paul, "paul@lefevre.test", PASSWORD)
    url = f"/dossiers/{dossier.id}/documents"

    claires, pauls = claire.get(url).get_data(as_text=True), paul.get(url).get_data(as_text=True)
    assert len(kept_keys(app, "documents")) == 1  # Paul was served what Claire's visit kept
    assert "raccord-csrf" not in claires + pauls
    assert _tokens(claires) and _tokens(pauls) and not _tokens(claires) & _tokens(pauls)

    # Paul's token, read from the kept form, is his: the form works for him.
    document = db.session.scalar(select(Document).where(Document.number == "F-2026-007"))
    response = paul.post(
        f"/dossiers/{dossier.id}/documents/publier",
        data={"csrf_token": next(iter(_tokens(pauls))), "document_id": document.id, "statut": ""},
    )
    assert response.status_code in (200, 302, 303)
    assert "jeton" not in text_of(response).lower()


def test_each_language_has_its_own_parts(client, app, cabinet):
    make_user(cabinet["org"], "john@lefevre.test", PASSWORD).locale = "en"
    db.session.commit()
    url = f"/dossiers/{cabinet['dossier'].id}/documents"
    invoice(cabinet["dossier"], cabinet["integration"], "F-2026-010")
    login(client, "claire@lefevre.test", PASSWORD)
    assert "Nouvelle facture d'achat" in unescaped(client.get(url).get_data(as_text=True))
    english = app.test_client()
    login(english, "john@lefevre.test", PASSWORD)
    page = unescaped(english.get(url).get_data(as_text=True))
    assert "Nouvelle facture d'achat" not in page and "F-2026-010" in page


def test_integration_page_follows_a_list_that_fails(client, cabinet):
    dossier, integration = cabinet["dossier"], cabinet["integration"]
    login(client, "claire@lefevre.test", PASSWORD)
    url = f"/dossiers/{dossier.id}/integrations/{integration.id}"
    assert "Le logiciel n'a pas répondu." not in text_of(client.get(url))
    client.get(url)  # kept, with the list as it was
    sync = db.session.scalar(
        select(ListSync).where(ListSync.integration_id == integration.id, ListSync.kind == ListKind.SUPPLIERS)
    )
    sync.status, sync.last_error = SyncStatus.FAILED, "Le logiciel n'a pas répondu."
    db.session.commit()
    assert "Le logiciel n'a pas répondu." in text_of(client.get(url))


def test_pages_are_served_with_redis_unreachable(database_url, unused_port):
    app = make_app(database_url, REDIS_URL=f"redis://127.0.0.1:{unused_port}/0")
    with app.app_context():
        org = make_organisation()
        dossier = make_dossier(org, "Boulangerie Martin")
        integration = make_integration(dossier)
        invoice(dossier, integration, "F-2026-042")
        make_user(org, "claire@lefevre.test", PASSWORD)
        dossier_id = dossier.id
    client = app.test_client()
    login(client, "claire@lefevre.test", PASSWORD)
    response = client.get(f"/dossiers/{dossier_id}/documents")
    assert response.status_code == 200
    assert "F-2026-042" in text_of(response)
    assert "raccord-csrf" not in response.get_data(as_text=True)


def test_a_row_polled_unchanged_is_a_304_and_a_change_is_sent_whole(client, cabinet):
    dossier = cabinet["dossier"]
    document = invoice(dossier, cabinet["integration"], "F-2026-020", status=DocumentStatus.IN_PROGRESS)
    login(client, "claire@lefevre.test", PASSWORD)
    url = f"/dossiers/{dossier.id}/documents/{document.id}/ligne?suivi=1"
    first = client.get(url, headers={"HX-Request": "true"})
    assert first.status_code == 200 and "F-2026-020" in text_of(first)
    etag = first.headers["ETag"]
    assert "no-store" not in first.headers["Cache-Control"] and "private" in first.headers["Cache-Control"]

    again = client.get(url, headers={"HX-Request": "true", "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""

    document.status = DocumentStatus.PUBLISHED
    document.upstream_id = "INV-77"
    db.session.commit()
    done = client.get(url, headers={"HX-Request": "true", "If-None-Match": etag})
    assert done.status_code == 200
    assert "Réf. INV-77" in text_of(done)
    assert "raccord:integration-changed" in done.headers["HX-Trigger"]  # the page's other regions follow


def test_a_list_loading_is_never_served_from_what_was_kept(client, cabinet):
    dossier, integration = cabinet["dossier"], cabinet["integration"]
    login(client, "claire@lefevre.test", PASSWORD)
    url = f"/dossiers/{dossier.id}/listes/suppliers"
    client.get(url)
    sync = db.session.scalar(
        select(ListSync).where(ListSync.integration_id == integration.id, ListSync.kind == ListKind.SUPPLIERS)
    )
    sync.status = SyncStatus.RUNNING
    db.session.commit()
    assert "Chargement en cours" in text_of(client.get(url))
    sync.status = SyncStatus.FAILED
    sync.last_error = "Le logiciel n'a pas répondu."
    db.session.commit()
    page = text_of(client.get(url))
    assert "Chargement en cours" not in page and "Le logiciel n'a pas répondu." in page


def test_an_integration_of_another_dossier_stays_a_404_whatever_was_kept(client, cabinet):
    dossier, other_integration = cabinet["dossier"], cabinet["other_integration"]
    stranger = make_dossier(make_organisation("Cabinet Voisin"), "Pharmacie Dubois")
    foreign = make_integration(stranger)
    login(client, "claire@lefevre.test", PASSWORD)
    own = f"/dossiers/{dossier.id}/integrations/{cabinet['integration'].id}"
    assert client.get(own).status_code == 200
    assert client.get(own).status_code == 200  # kept
    for integration in (other_integration, foreign):
        for _ in range(2):  # a 404 is never kept either
            assert client.get(f"/dossiers/{dossier.id}/integrations/{integration.id}").status_code == 404
    assert client.get(f"/dossiers/{stranger.id}/integrations/{foreign.id}").status_code == 404


def test_the_page_around_a_kept_part_names_its_reader_and_carries_their_token(app, cabinet):
    dossier = cabinet["dossier"]
    paul = make_user(cabinet["org"], "paul@lefevre.test", PASSWORD)
    paul.full_name = "Paul <Martin> & Fils"
    db.session.commit()
    claire_client, paul_client = app.test_client(), app.test_client()
    login(claire_client, "claire@lefevre.test", PASSWORD)
    login(paul_client, "paul@lefevre.test", PASSWORD)
    url = f"/dossiers/{dossier.id}/listes/suppliers"
    claires = claire_client.get(url).get_data(as_text=True)
    pauls = paul_client.get(url).get_data(as_text=True)
    assert ">Claire Comptable</a>" in claires and "Paul" not in claires
    assert ">Paul &lt;Martin&gt; &amp; Fils</a>" in pauls and "Claire Comptable" not in pauls
    assert "raccord-name" not in claires + pauls and "raccord-csrf" not in claires + pauls
    header = re.compile(r'"X-CSRFToken": "([^"]+)"')
    claire_token = header.search(unescaped(claires)).group(1)
    paul_token = header.search(unescaped(pauls)).group(1)
    assert claire_token != paul_token
    assert _tokens(pauls) == {paul_token} or paul_token in _tokens(pauls)  # the logout form too


def test_text_that_looks_like_the_marks_of_kept_parts_is_shown_as_typed(client, cabinet):
    """Where a kept part takes the reader's token and name is marked with words no user can know:
    a search, a supplier or a dossier named like a mark is shown as typed, and the reader's CSRF
    token appears nowhere but in the page's forms and headers."""
    dossier, integration = cabinet["dossier"], cabinet["integration"]
    looks_like = "raccord-csrf-token-of-the-session raccord-name-of-the-user raccord-csrf"
    make_item(integration, ListKind.SUPPLIERS, f"Martin {looks_like}")
    dossier.name = f"Boulangerie {looks_like}"
    invoice(dossier, integration, "F-2026-001", party_name=f"EDF {looks_like}")
    db.session.commit()
    login(client, "claire@lefevre.test", PASSWORD)
    pages = [
        f"/dossiers/{dossier.id}/listes/suppliers?q=raccord-csrf-token-of-the-session",
        f"/dossiers/{dossier.id}/listes/suppliers?q=martin",
        f"/dossiers/{dossier.id}/documents",
        f"/dossiers/{dossier.id}/integrations/{integration.id}",
    ]
    for url in pages:
        for _ in range(2):  # rendered and kept, then served from what was kept
            html = client.get(url).get_data(as_text=True)
            token = re.search(r'"X-CSRFToken": "([^"]+)"', unescaped(html)).group(1)
            outside_forms = re.sub(r'value="[^"]*"|hx-headers=\'[^\']*\'', "", html)
            assert token not in outside_forms, url
            assert "Claire Comptable" not in outside_forms.replace(">Claire Comptable</a>", ""), url
            assert f"Boulangerie {looks_like}" in unescaped(html), url
    assert f"Martin {looks_like}" in unescaped(client.get(pages[1]).get_data(as_text=True))
    assert f"EDF {looks_like}" in unescaped(client.get(pages[2]).get_data(as_text=True))


def test_a_message_flashed_for_the_next_page_is_shown_on_it(client, cabinet):
    dossier = cabinet["dossier"]
    login(client, "claire@lefevre.test", PASSWORD)
    url = f"/dossiers/{dossier.id}/documents"
    client.get(url)  # the page around is kept
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "Facture F-2026-099 publiée.")]
    assert "Facture F-2026-099 publiée." in text_of(client.get(url))
    assert "Facture F-2026-099 publiée." not in text_of(client.get(url))  # said once


def test_a_renewal_of_the_tokens_keeps_the_version_and_wakes_no_page(cabinet):
    from webapp.connectors.base import TokenSet
    from webapp.services.integrations import store_tokens

    integration = cabinet["integration"]
    store_tokens(integration, TokenSet(access_token="premier", refresh_token="r1", expires_at=2_000_000_000))
    db.session.commit()
    before = version_of(cabinet["dossier"].id)
    store_tokens(integration, TokenSet(access_token="second", refresh_token="r2", expires_at=2_000_001_800))
    db.session.commit()
    assert version_of(cabinet["dossier"].id) == before
    integration.company_name = "Boulangerie Martin SAS"
    db.session.commit()
    assert version_of(cabinet["dossier"].id) != before


def test_a_colleagues_invoice_wakes_the_open_documents_page_and_its_rows_follow(client, cabinet):
    dossier = cabinet["dossier"]
    invoice(dossier, cabinet["integration"], "F-2026-030")
    login(client, "claire@lefevre.test", PASSWORD)
    page = client.get(f"/dossiers/{dossier.id}/documents").get_data(as_text=True)
    version = page.split('data-version="')[1].split('"')[0]
    changes = f"/dossiers/{dossier.id}/changements"
    assert client.get(changes, headers={"If-None-Match": f'"{version}"'}).status_code == 204
    assert 'id="documents-liste" data-live' in page  # « Tous »: the rows are a live region

    invoice(dossier, cabinet["integration"], "F-2026-031")  # a colleague's, from elsewhere
    answer = client.get(changes, headers={"If-None-Match": f'"{version}"'})
    assert answer.status_code == 200 and "raccord:integration-changed" in answer.headers["HX-Trigger"]
    assert "F-2026-031" in text_of(client.get(f"/dossiers/{dossier.id}/documents"))
    filtered = client.get(f"/dossiers/{dossier.id}/documents?statut=pret").get_data(as_text=True)
    assert 'id="documents-liste">' in filtered  # filtered: a row being published stays in view


def test_a_list_with_no_inactive_item_says_so_rather_than_empty(client, cabinet):
    dossier, integration = cabinet["dossier"], cabinet["integration"]
    login(client, "claire@lefevre.test", PASSWORD)
    client.get(f"/dossiers/{dossier.id}/listes/suppliers")  # its list state made
    sync = db.session.scalar(
        select(ListSync).where(ListSync.integration_id == integration.id, ListSync.kind == ListKind.SUPPLIERS)
    )
    sync.status, sync.last_loaded_at = SyncStatus.SUCCEEDED, utcnow()
    db.session.commit()
    page = text_of(client.get(f"/dossiers/{dossier.id}/listes/suppliers?statut=inactifs"))
    assert "Aucun élément inactif dans cette liste." in page and "Cette liste est vide." not in page
