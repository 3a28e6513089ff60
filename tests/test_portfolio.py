"""'Mes dossiers', the cabinet's dashboard: each dossier's connection at a glance, the counts that need
someone (each a filter), filters, search, sorting, pages, and the bulk actions « Actualiser les données
de l'intégration » and « Se reconnecter » (a queue walked one dossier after the other)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from tests.conftest import csrf_token, login, text_of
from tests.factories import make_dossier, make_integration, make_organisation, make_user
from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Dossier,
    Integration,
    IntegrationStatus,
    JobRun,
    ListKind,
    ListSync,
)
from webapp.models.base import utcnow
from webapp.models.lists import SyncStatus
from webapp.services.jobs import get_queue
from webapp.services.portfolio import month_end

# Every write these flows make keeps the dossiers' lines of 'Mes dossiers' true.
pytestmark = pytest.mark.usefixtures("summaries_stay_true")

EMAIL, PASSWORD = "claire@lefevre.test", "bon-mot-de-passe"


def add_documents(integration: Integration, *statuses: DocumentStatus) -> None:
    for i, status in enumerate(statuses):
        db.session.add(
            Document(
                dossier_id=integration.dossier_id,
                integration_id=integration.id,
                direction=Direction.PURCHASE,
                party_name="EDF Entreprises",
                number=f"F-{integration.id}-{i}",
                issue_date=date(2026, 11, 2),
                amount_ht=Decimal("10.00"),
                amount_tva=Decimal("2.00"),
                amount_ttc=Decimal("12.00"),
                status=status,
            )
        )
    db.session.commit()


def add_sync(integration: Integration, kind: ListKind, status: SyncStatus, loaded: datetime | None) -> None:
    db.session.add(ListSync(integration_id=integration.id, kind=kind, status=status, last_loaded_at=loaded))
    db.session.commit()


@pytest.fixture
def cabinet(app_ctx):
    """A cabinet with a dossier in each state, and another cabinet whose dossiers must never show."""
    mine = make_organisation("Cabinet Lefèvre")
    make_user(mine, EMAIL, PASSWORD)
    this_month = month_end() - timedelta(hours=1)

    boulangerie = make_dossier(mine, "Boulangerie Martin", "732829320")
    connected = make_integration(boulangerie, "sandbox", "Boulangerie Martin SARL")
    connected.consent_expires_at = this_month
    # A late evening in UTC is the next day in Paris: the column shows the date as the cabinet lives it.
    add_sync(connected, ListKind.ACCOUNTS, SyncStatus.SUCCEEDED, datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    add_sync(connected, ListKind.SUPPLIERS, SyncStatus.SUCCEEDED, datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    add_documents(connected, DocumentStatus.READY, DocumentStatus.PUBLISHED)

    garage = make_dossier(mine, "Garage Lemoine", "552100554")
    expired = make_integration(garage, "xero", "Garage Lemoine SAS", IntegrationStatus.EXPIRED)
    add_documents(expired, DocumentStatus.FAILED)

    hotel = make_dossier(mine, "Hôtel de l'Étoile", "443061841")
    old = make_integration(hotel, "sage", "Ancienne société", IntegrationStatus.DISCONNECTED)
    old.created_at = utcnow() - timedelta(days=30)
    quickbooks = make_integration(hotel, "quickbooks", "Hôtel Étoile SAS")
    quickbooks.consent_expires_at = month_end() + timedelta(days=40)
    add_sync(quickbooks, ListKind.SUPPLIERS, SyncStatus.FAILED, None)
    add_sync(quickbooks, ListKind.ACCOUNTS, SyncStatus.RUNNING, None)
    add_documents(
        quickbooks,
        DocumentStatus.FAILED,
        DocumentStatus.FAILED,
        DocumentStatus.READY,
        DocumentStatus.TO_REVIEW,
    )
    add_documents(old, DocumentStatus.FAILED)  # an earlier software's: not this dossier's figures now

    atelier = make_dossier(mine, "Atelier Dupont", "418306447")
    pharmacie = make_dossier(mine, "Pharmacie Léa", None)
    make_integration(pharmacie, "pennylane", "Pharmacie Léa SELARL", IntegrationStatus.DISCONNECTED)
    db.session.commit()

    theirs = make_organisation("Cabinet Girard")
    make_user(theirs, "paul@girard.test", "autre-mot-de-passe")
    other = make_dossier(theirs, "Transports Girard", "356000000")
    other_integration = make_integration(other, "sandbox", "Transports Girard", IntegrationStatus.EXPIRED)
    add_documents(other_integration, DocumentStatus.FAILED, DocumentStatus.FAILED)
    other_connected = make_dossier(theirs, "Menuiserie Girard", None)
    make_integration(other_connected, "sandbox", "Menuiserie Girard")
    return {
        "boulangerie": boulangerie.id,
        "garage": garage.id,
        "hotel": hotel.id,
        "atelier": atelier.id,
        "pharmacie": pharmacie.id,
        "other": other.id,
        "other_connected": other_connected.id,
        "connected": connected.id,
        "expired": expired.id,
        "quickbooks": quickbooks.id,
    }


def names_in(response) -> list[str]:
    """The dossiers of the list, in the order shown."""
    return re.findall(r'<th scope="row"><a href="/dossiers/\d+">([^<]+)</a>', text_of(response))


def row_of(response, dossier_id: int) -> str:
    page = text_of(response)
    match = re.search(rf'<tr id="dossier-{dossier_id}".*?</tr>', page, re.S)
    assert match, f"no row for dossier {dossier_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))).strip()


def test_each_row_tells_the_state_of_the_dossiers_connection(client, cabinet):
    login(client, EMAIL, PASSWORD)
    response = client.get("/dossiers")
    assert response.status_code == 200
    assert names_in(response) == [
        "Atelier Dupont",
        "Boulangerie Martin",
        "Garage Lemoine",
        "Hôtel de l'Étoile",
        "Pharmacie Léa",
    ]
    page = text_of(response)
    assert "Girard" not in page
    ending = month_end() - timedelta(hours=1)
    boulangerie = row_of(response, cabinet["boulangerie"])
    assert "732 829 320" in boulangerie and "Compta Démo Boulangerie Martin SARL" in boulangerie
    assert "Connectée" in boulangerie
    assert ending.astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y") in boulangerie
    assert "01/12/2026 à 00:30" in boulangerie  # the latest load, in Paris time
    assert "1 prête" in boulangerie
    garage = row_of(response, cabinet["garage"])
    assert "Xero" in garage and "Expirée" in garage and "1 facture" in garage
    hotel = row_of(response, cabinet["hotel"])
    # The integration in use, not the earlier one; its figures only.
    assert "QuickBooks" in hotel and "Hôtel Étoile SAS" in hotel and "Ancienne société" not in hotel
    assert "1 liste" in hotel and "2 factures" in hotel and "1 prête" in hotel and "1 à réviser" in hotel
    assert "Chargement en cours" in hotel
    assert "Non connecté" in row_of(response, cabinet["atelier"])
    assert "Déconnectée" in row_of(response, cabinet["pharmacie"])
    # The counts link where the dossier's own pages are.
    hotel_id, qb = cabinet["hotel"], cabinet["quickbooks"]
    assert f'href="/dossiers/{hotel_id}/documents?statut=echec"' in page
    assert f'href="/dossiers/{hotel_id}/documents?statut=pret"' in page
    assert f'href="/dossiers/{hotel_id}/documents?statut=a-reviser"' in page
    assert f'href="/dossiers/{hotel_id}/integrations/{qb}#listes"' in page


def test_the_counts_at_the_top_are_the_cabinets_own_and_each_is_a_filter(client, cabinet):
    login(client, EMAIL, PASSWORD)
    page = text_of(client.get("/dossiers?statut=connectee"))  # whatever the filters
    assert "1 à reconnecter</a>" in page
    assert "1 accès finit ce mois-ci</a>" in page
    assert (
        "3 factures en échec</a>" in page
    )  # the other cabinet's two and the earlier software's one left out
    assert 'href="/dossiers?statut=expiree"' in page
    assert 'href="/dossiers?acces=mois"' in page
    assert 'href="/dossiers?factures=echec"' in page
    assert names_in(client.get("/dossiers?statut=expiree")) == ["Garage Lemoine"]
    assert names_in(client.get("/dossiers?acces=mois")) == ["Boulangerie Martin"]
    assert names_in(client.get("/dossiers?factures=echec")) == ["Garage Lemoine", "Hôtel de l'Étoile"]


def test_the_plural_of_the_counts_follows_the_numbers(client, app_ctx):
    org = make_organisation()
    make_user(org, EMAIL, PASSWORD)
    for name in ("Garage A", "Garage B"):
        make_integration(make_dossier(org, name), status=IntegrationStatus.EXPIRED)
    for name in ("Hôtel A", "Hôtel B"):
        connected = make_integration(make_dossier(org, name))
        connected.consent_expires_at = month_end() - timedelta(days=1)
    db.session.commit()
    add_documents(connected, DocumentStatus.FAILED)
    login(client, EMAIL, PASSWORD)
    page = text_of(client.get("/dossiers"))
    assert (
        "2 à reconnecter" in page and "2 accès finissent ce mois-ci" in page and "1 facture en échec" in page
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("statut=connectee", ["Boulangerie Martin", "Hôtel de l'Étoile"]),
        ("statut=expiree", ["Garage Lemoine"]),
        ("statut=deconnectee", ["Pharmacie Léa"]),
        ("statut=non-connecte", ["Atelier Dupont"]),
        ("logiciel=xero", ["Garage Lemoine"]),
        ("logiciel=quickbooks", ["Hôtel de l'Étoile"]),
        ("logiciel=sage", []),  # only its earlier, disconnected software
        ("besoin=1", ["Boulangerie Martin", "Garage Lemoine", "Hôtel de l'Étoile"]),
        ("besoin=1&statut=connectee", ["Boulangerie Martin", "Hôtel de l'Étoile"]),
        ("q=hotel etoile", ["Hôtel de l'Étoile"]),
        ("q=ÉTOILE", ["Hôtel de l'Étoile"]),
        ("q=LEA pharmacie", ["Pharmacie Léa"]),
        ("q=552 100", ["Garage Lemoine"]),
        ("q=girard", []),
    ],
)
def test_each_filter_and_the_search(client, cabinet, query, expected):
    login(client, EMAIL, PASSWORD)
    response = client.get(f"/dossiers?{query}")
    assert response.status_code == 200
    assert names_in(response) == expected


@pytest.mark.parametrize(
    ("query", "expected", "aria"),
    [
        ("tri=nom&ordre=desc", ["Pharmacie Léa", "Hôtel de l'Étoile", "Garage Lemoine"], "Dossier"),
        ("tri=statut", ["Garage Lemoine", "Pharmacie Léa", "Atelier Dupont"], "Statut"),
        ("tri=fin-acces", ["Boulangerie Martin", "Hôtel de l'Étoile", "Atelier Dupont"], "Fin de l'accès"),
        ("tri=fin-acces&ordre=desc", ["Hôtel de l'Étoile", "Boulangerie Martin", "Atelier Dupont"], None),
        ("tri=actualisation&ordre=desc", ["Boulangerie Martin", "Atelier Dupont", "Garage Lemoine"], None),
        ("tri=echecs&ordre=desc", ["Hôtel de l'Étoile", "Garage Lemoine", "Atelier Dupont"], None),
    ],
)
def test_sorting_by_a_column(client, cabinet, query, expected, aria):
    login(client, EMAIL, PASSWORD)
    response = client.get(f"/dossiers?{query}")
    assert names_in(response)[:3] == expected
    page = text_of(response)
    sorted_header = re.search(r'<th scope="col" aria-sort="(ascending|descending)">\s*<a[^>]*>([^<]+)<', page)
    assert sorted_header is not None
    assert sorted_header.group(1) == ("descending" if "ordre=desc" in query else "ascending")
    if aria:
        assert sorted_header.group(2) == aria


def test_pages_of_fifty_with_previous_and_next(client, app_ctx):
    org = make_organisation()
    make_user(org, EMAIL, PASSWORD)
    db.session.execute(
        insert(Dossier),
        [{"organisation_id": org.id, "name": f"Société {i:03d}", "siren": None} for i in range(120)],
    )
    db.session.commit()
    login(client, EMAIL, PASSWORD)
    first = client.get("/dossiers")
    assert len(names_in(first)) == 50 and names_in(first)[0] == "Société 000"
    assert "Page 1 sur 3" in text_of(first) and "120 dossiers" in text_of(first)
    assert "Page précédente" not in text_of(first) and 'href="/dossiers?page=2"' in text_of(first)
    second = client.get("/dossiers?page=2")
    assert names_in(second)[0] == "Société 050" and "Page 2 sur 3" in text_of(second)
    assert '<a rel="prev" href="/dossiers"' in text_of(second) and 'href="/dossiers?page=3"' in text_of(
        second
    )
    last = client.get("/dossiers?page=999999999999")  # clamped to the last page
    assert names_in(last)[-1] == "Société 119" and "Page 3 sur 3" in text_of(last)
    assert "Page suivante" not in text_of(last)
    # The sort and the filters go along with the pages.
    backwards = text_of(client.get("/dossiers?tri=nom&ordre=desc&q=societe"))
    assert 'href="/dossiers?q=societe&ordre=desc&page=2"' in backwards


@pytest.mark.parametrize(
    "query",
    [
        "statut=zzz",
        "tri=DROP TABLE&ordre=sideways",
        "page=-3",
        "page=%C2%B2",
        "page=1e9",
        "logiciel=../../etc",
        "besoin=oui&acces=demain&factures=ECHEC",
        "q=" + "é" * 5000,
        "q=%25%5F",
        "statut=expiree&statut=connectee",
    ],
)
def test_bad_parameters_are_left_out_never_an_error(client, cabinet, query):
    login(client, EMAIL, PASSWORD)
    response = client.get(f"/dossiers?{query}")
    assert response.status_code == 200
    assert "Mes dossiers" in text_of(response)


def test_htmx_gets_the_list_region_only_and_caches_keep_them_apart(client, cabinet):
    login(client, EMAIL, PASSWORD)
    response = client.get(
        "/dossiers?statut=expiree", headers={"HX-Request": "true", "HX-Target": "dossier-list"}
    )
    page = text_of(response)
    assert page.lstrip().startswith('<div id="dossier-list"') and "<html" not in page
    assert names_in(response) == ["Garage Lemoine"]
    assert "HX-Request" in response.headers["Vary"]
    assert 'data-announce="1 résultat"' in page
    # The counts at the top come along, out of band: they never lag behind the rows.
    counts = re.search(r'<p class="portfolio-counts" id="a-traiter" hx-swap-oob="true">(.*?)</p>', page, re.S)
    assert counts and "1 à reconnecter" in counts.group(1) and "3 factures en échec" in counts.group(1)
    # Nothing loads: the list does not ask for itself again.
    assert 'id="suivi-liste"' not in page


def test_a_grouped_siren_finds_that_dossier_only(client, app_ctx):
    org = make_organisation("Cabinet Lefèvre")
    make_user(org, EMAIL, PASSWORD)
    make_dossier(org, "Centre Auto", "100000004")
    make_dossier(org, "Garage du Port", "004100000")  # holds each group, not the number
    login(client, EMAIL, PASSWORD)
    for typed in ("100 000 004", "100\u202f000\u202f004", "100000004"):
        assert names_in(client.get("/dossiers", query_string={"q": typed})) == ["Centre Auto"], typed


# --- « Actualiser les données de l'intégration » on a selection -------------------------------------


@pytest.fixture
def job_cabinet(job_app):
    with job_app.app_context():
        mine = make_organisation("Cabinet Lefèvre")
        make_user(mine, EMAIL, PASSWORD)
        ids = {}
        for name, status in (
            ("Boulangerie Martin", IntegrationStatus.CONNECTED),
            ("Hôtel Étoile", IntegrationStatus.CONNECTED),
            ("Garage Lemoine", IntegrationStatus.EXPIRED),
        ):
            integration = make_integration(make_dossier(mine, name), status=status)
            ids[name] = (integration.dossier_id, integration.id)
        ids["Atelier Dupont"] = (make_dossier(mine, "Atelier Dupont").id, None)
        theirs = make_organisation("Cabinet Girard")
        other = make_integration(make_dossier(theirs, "Transports Girard"))
        ids["Transports Girard"] = (other.dossier_id, other.id)
    return ids


def queued_integrations(job_app) -> list[int]:
    """The integration of each list refresh waiting in the queue."""
    with job_app.app_context():
        jobs = get_queue().get_jobs()
        assert all(job.func_name == "jobs.lists.refresh_list" for job in jobs)
        return sorted(job.args[0] for job in jobs)


def bulk(client, path: str, ids: list[int], *, htmx: bool = True, retour: str = ""):
    token = csrf_token(client, "/dossiers")
    headers = {"HX-Request": "true", "HX-Target": "dossier-list", "X-CSRFToken": token} if htmx else {}
    data = {"dossier_id": [str(i) for i in ids], "csrf_token": token, "retour": retour}
    return client.post(path, data=data, headers=headers)


def toast(response) -> str:
    import json

    from tests.conftest import plain_spaces

    return plain_spaces(json.loads(response.headers["HX-Trigger"])["raccord:toast"]["message"])


def test_bulk_refresh_starts_the_integration_pages_refresh_for_each_connected_dossier(job_app, job_cabinet):
    client = job_app.test_client()
    login(client, EMAIL, PASSWORD)
    ids = [
        job_cabinet[name][0]
        for name in ("Boulangerie Martin", "Hôtel Étoile", "Garage Lemoine", "Atelier Dupont")
    ]
    response = bulk(client, "/dossiers/actualiser", ids, retour="statut=connectee&tri=statut")
    assert response.status_code == 200
    assert toast(response) == (
        "Actualisation lancée pour 2 dossiers. "
        "1 dossier passé : son intégration a expiré (« Se reconnecter » d'abord). "
        "1 dossier passé : il n'est relié à aucun logiciel comptable."
    )
    # Every list of each connected dossier, as 'Actualiser les données de l'intégration' on its page.
    connected = [job_cabinet[name][1] for name in ("Boulangerie Martin", "Hôtel Étoile")]
    assert queued_integrations(job_app) == sorted(connected * len(ListKind))
    # The list comes back as it was (its filters and sort), with the loads under way.
    assert names_in(response) == ["Boulangerie Martin", "Hôtel Étoile"]
    assert "Chargement en cours" in text_of(response)
    # While lists load, the list asks for itself again, with the boxes ticked then, and stays ticked.
    assert 'id="suivi-liste"' in text_of(response) and 'hx-trigger="every 3s"' in text_of(response)
    hotel = job_cabinet["Hôtel Étoile"][0]
    polled = client.get(
        f"/dossiers?statut=connectee&tri=statut&dossier_id={hotel}",
        headers={"HX-Request": "true", "HX-Target": "dossier-list", "HX-Trigger": "suivi-liste"},
    )
    assert re.search(rf'id="choisir-{hotel}"[^>]* checked', text_of(polled))
    boulangerie = job_cabinet["Boulangerie Martin"][0]
    assert not re.search(rf'id="choisir-{boulangerie}"[^>]* checked', text_of(polled))
    assert "data-announce" not in text_of(polled)  # a follow-up is not announced as a new search
    # A second click joins the loads under way: nothing more is queued.
    again = bulk(client, "/dossiers/actualiser", ids[:1])
    assert toast(again) == "Actualisation lancée pour 1 dossier."
    assert len(queued_integrations(job_app)) == 2 * len(ListKind)


def test_bulk_refresh_never_acts_on_another_cabinets_dossier(job_app, job_cabinet):
    client = job_app.test_client()
    login(client, EMAIL, PASSWORD)
    theirs, their_integration = job_cabinet["Transports Girard"]
    response = bulk(client, "/dossiers/actualiser", [theirs, 2**31 + 5, 999_999])
    assert toast(response) == "Cochez au moins un dossier."
    mine = job_cabinet["Boulangerie Martin"]
    response = bulk(client, "/dossiers/actualiser", [theirs, mine[0]], htmx=False)
    assert response.status_code == 302 and response.headers["Location"] == "/dossiers"
    assert queued_integrations(job_app) == [mine[1]] * len(ListKind)
    with job_app.app_context():
        assert not db.session.scalar(select(JobRun.id).where(JobRun.dossier_id == theirs).limit(1))
        assert db.session.get(Dossier, theirs).name == "Transports Girard"


def test_bulk_actions_need_the_csrf_token(client, cabinet):
    login(client, EMAIL, PASSWORD)
    for path in ("/dossiers/actualiser", "/dossiers/reconnexions"):
        response = client.post(path, data={"dossier_id": [str(cabinet["garage"])]})
        assert response.status_code == 400, path


# --- « Se reconnecter » on a selection: the queue ---------------------------------------------------


def test_the_reconnection_queue_takes_only_the_users_expired_dossiers(client, cabinet):
    login(client, EMAIL, PASSWORD)
    token = csrf_token(client, "/dossiers")
    # Another cabinet's expired dossier and a connected one of mine: nothing to reconnect.
    response = client.post(
        "/dossiers/reconnexions",
        data={"dossier_id": [str(cabinet["other"]), str(cabinet["boulangerie"])], "csrf_token": token},
        follow_redirects=True,
    )
    assert "Aucun des dossiers cochés n'a d'intégration expirée" in text_of(response)
    with client.session_transaction() as session:
        assert "reconnect_queue" not in session
    response = client.post(
        "/dossiers/reconnexions",
        data={"dossier_id": [str(cabinet["other"]), str(cabinet["garage"])], "csrf_token": token},
    )
    assert response.status_code == 302
    assert "/sandbox/xero/" in response.headers["Location"]
    with client.session_transaction() as session:
        assert session["reconnect_queue"]["ids"] == [cabinet["garage"]]


def test_each_dossier_of_the_queue_is_checked_again_when_reached(client, app_ctx):
    org = make_organisation()
    make_user(org, EMAIL, PASSWORD)
    first = make_integration(make_dossier(org, "Garage A"), status=IntegrationStatus.EXPIRED)
    second = make_integration(make_dossier(org, "Garage B"), status=IntegrationStatus.EXPIRED)
    login(client, EMAIL, PASSWORD)
    token = csrf_token(client, "/dossiers")
    ids = [str(first.dossier_id), str(second.dossier_id)]
    started = client.post("/dossiers/reconnexions", data={"dossier_id": ids, "csrf_token": token})
    assert "/sandbox/" in started.headers["Location"]
    banner = text_of(client.get(f"/dossiers/{first.dossier_id}"))
    assert "Dossier 1 sur 2 : Garage A" in banner and "Continuer avec Garage B" in banner
    # Reconnected meanwhile (another tab, a colleague): passed when reached, and the series ends.
    db.session.get(Integration, second.id).status = IntegrationStatus.CONNECTED
    db.session.commit()
    response = client.post(
        "/dossiers/reconnexions/suivant", data={"csrf_token": token}, follow_redirects=True
    )
    page = text_of(response)
    assert "« Garage B » n'a plus d'intégration expirée : dossier passé." in page
    assert "Série de reconnexions terminée." in page and "Dossier 1 sur 2" not in page
    with client.session_transaction() as session:
        assert "reconnect_queue" not in session


def test_walking_two_expired_dossiers_through_the_sandbox_reconnect_flow(
    job_app, live, bookkeeper, dossier_id
):
    from tests.http_user import COMPANY, token_in

    browser = bookkeeper
    with job_app.app_context():
        atelier = make_dossier(
            db.session.get(Dossier, dossier_id).organisation, "Atelier Dupont & Fils", "552100554"
        )
        atelier_id = atelier.id
    for dossier, company in ((dossier_id, COMPANY), (atelier_id, "cmp-atelier-dupont")):
        assert browser.connect(dossier, company=company).status_code == 200
    with job_app.app_context():
        integrations = {
            i.dossier_id: i.id
            for i in db.session.scalars(
                select(Integration).where(Integration.dossier_id.in_([dossier_id, atelier_id]))
            )
        }
        for integration_id in integrations.values():
            db.session.get(Integration, integration_id).status = IntegrationStatus.EXPIRED
        db.session.commit()

    listing = browser.get("/dossiers?statut=expiree")
    assert "2 à reconnecter" in text_of_page(listing.text)
    start = browser.post_form(
        "/dossiers/reconnexions",
        {"dossier_id": [str(dossier_id), str(atelier_id)], "retour": "statut=expiree"},
        page="/dossiers?statut=expiree",
        allow_redirects=False,
    )
    assert start.status_code == 302

    # The first: consent given at the software, back on its Intégration page, with the queue's banner.
    consent = browser.get(start.headers["Location"])
    form = {"decision": "allow", "csrf_token": token_in(consent.text), "company_id": COMPANY}
    back = browser.http.post(start.headers["Location"], data=form, timeout=60)
    page = text_of_page(back.text)
    assert back.url.endswith(f"/dossiers/{dossier_id}/integrations/{integrations[dossier_id]}")
    assert "L'intégration avec Compta Démo est de nouveau connectée." in page
    assert "Dossier 1 sur 2 : Boulangerie Martin" in page
    assert "Continuer avec Atelier Dupont & Fils" in page

    # The second: the user cancels on the consent page; the flow ends as it always does, then the banner.
    following = browser.post_form("/dossiers/reconnexions/suivant", {}, page=back.url, allow_redirects=False)
    assert following.status_code == 302 and "/sandbox/" in following.headers["Location"]
    consent = browser.get(following.headers["Location"])
    form = {"decision": "deny", "csrf_token": token_in(consent.text), "company_id": "cmp-atelier-dupont"}
    cancelled = browser.http.post(following.headers["Location"], data=form, timeout=60)
    page = text_of_page(cancelled.text)
    assert cancelled.url.endswith(f"/dossiers/{atelier_id}/integrations/{integrations[atelier_id]}")
    assert "La connexion a été annulée : rien n'a été modifié." in page
    assert "Dossier 2 sur 2 : Atelier Dupont & Fils" in page and "Terminer" in page
    assert "Continuer avec" not in page

    done = browser.post_form("/dossiers/reconnexions/arreter", {}, page=cancelled.url)
    page = text_of_page(done.text)
    assert done.url.endswith("/dossiers?statut=expiree")
    assert "Série de reconnexions terminée." in page and "sur 2 :" not in page
    with job_app.app_context():
        assert db.session.get(Integration, integrations[dossier_id]).status is IntegrationStatus.CONNECTED
        assert db.session.get(Integration, integrations[atelier_id]).status is IntegrationStatus.EXPIRED


def text_of_page(html_text: str) -> str:
    from tests.conftest import unescaped

    return unescaped(html_text)
