"""'Reproduire dans le bac à sable': the copy's lists, rules, documents and state equal the original's,
the sandbox answers the copy with the same lists, and staff replay 'Se reconnecter' in it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.conftest import login, plain_spaces, run_worker_burst, seed_sandbox_for, text_of, unescaped
from tests.factories import make_dossier, make_organisation, make_user
from tests.http_user import Browser, controls_api
from tests.test_reconnect import expire, reconnect
from webapp.extensions import db
from webapp.models import (
    CodingDefault,
    Direction,
    Document,
    DocumentStatus,
    Dossier,
    Event,
    Integration,
    IntegrationStatus,
    JobRun,
    JobStatus,
    ListItem,
    ListSync,
    PaymentRule,
    Role,
    Rule,
)

STAFF = ("support@raccord.example", "support-secret")


def _ext(item: ListItem | None) -> str | None:
    return item.external_id if item is not None else None


def picture(dossier_id: int) -> dict:
    """What a reproduction must carry over, in terms that do not depend on row ids."""
    db.session.expire_all()
    dossier = db.session.get(Dossier, dossier_id)
    current = dossier.current_integration
    coding = ("account", "tax_rate", "payment_method", "tracking")
    return {
        "settings": (dossier.siren, dossier.warn_before_creating_supplier),
        "integrations": sorted(
            (i.status.value, i.status_reason, i.status_since) for i in dossier.integrations
        ),
        "items": sorted(
            (
                r.kind.value,
                r.external_id,
                r.code,
                r.name,
                r.vat_number,
                r.siren,
                r.rate,
                r.active,
                r.visible,
                repr(sorted((r.extras or {}).items())),
            )
            for r in db.session.scalars(select(ListItem).where(ListItem.integration_id == current.id))
        ),
        "loads": sorted(
            (s.kind.value, s.status.value, s.item_count, s.active_count, s.last_loaded_at, s.last_error)
            for s in db.session.scalars(select(ListSync).where(ListSync.integration_id == current.id))
        ),
        "rules": sorted(
            (
                r.party_kind.value,
                _ext(r.party),
                *(_ext(getattr(r, f)) for f in coding),
                r.due_days,
                r.auto_publish,
                r.description,
            )
            for r in db.session.scalars(select(Rule).where(Rule.dossier_id == dossier_id))
        ),
        "payment_rules": sorted(
            (p.direction.value, *(_ext(getattr(p, f)) for f in coding))
            for p in db.session.scalars(select(PaymentRule).where(PaymentRule.dossier_id == dossier_id))
        ),
        "defaults": sorted(
            (d.direction.value, *(_ext(getattr(d, f)) for f in coding))
            for d in db.session.scalars(select(CodingDefault).where(CodingDefault.dossier_id == dossier_id))
        ),
        "documents": sorted(
            (
                d.number,
                d.status.value,
                _ext(d.party),
                d.party_name,
                *(_ext(getattr(d, f)) for f in coding),
                d.amount_ttc,
                d.failure_reason,
                d.hold_reason,
                d.rule_id is not None,
            )
            for d in db.session.scalars(select(Document).where(Document.dossier_id == dossier_id))
        ),
    }


@pytest.fixture
def staff(job_app):
    with job_app.app_context():
        return make_user(make_organisation("Équipe Raccord"), STAFF[0], STAFF[1], Role.STAFF).id


@pytest.fixture
def configured(job_app, dossier_with_rule, staff):
    """The connected dossier with a rule, a payment rule, defaults, a hidden account, an archived
    supplier, and two invoices (one failed with its reason, one with its PDF)."""
    browser, dossier_id, integration_id, ids = dossier_with_rule
    with job_app.app_context():
        db.session.get(ListItem, ids["office"]).visible = False
        method = db.session.scalar(
            select(ListItem).where(
                ListItem.integration_id == integration_id, ListItem.kind == "payment_methods"
            )
        )
        db.session.add_all(
            [
                PaymentRule(
                    dossier_id=dossier_id,
                    integration_id=integration_id,
                    direction=Direction.PURCHASE,
                    payment_method_id=method.id,
                    account_id=ids["energy"],
                ),
                CodingDefault(
                    dossier_id=dossier_id,
                    integration_id=integration_id,
                    direction=Direction.PURCHASE,
                    tax_rate_id=ids["tva20"],
                ),
            ]
        )
        rule_id = db.session.scalar(select(Rule.id))
        for number, status, reason, pdf in (
            ("F-2026-118", DocumentStatus.FAILED, "Le logiciel comptable a refusé la demande.", None),
            ("F-2026-119", DocumentStatus.READY, "", b"%PDF-1.4 facture"),
        ):
            db.session.add(
                Document(
                    dossier_id=dossier_id,
                    integration_id=integration_id,
                    direction=Direction.PURCHASE,
                    party_id=ids["edf"],
                    account_id=ids["energy"],
                    tax_rate_id=ids["tva20"],
                    rule_id=rule_id,
                    number=number,
                    issue_date=date(2026, 11, 2),
                    amount_ht=Decimal("100"),
                    amount_tva=Decimal("20"),
                    amount_ttc=Decimal("120"),
                    status=status,
                    failure_reason=reason,
                    pdf_name=f"{number}.pdf" if pdf else None,
                    pdf_data=pdf,
                )
            )
        db.session.commit()
    controls_api.post(
        f"{browser.base}/sandbox/controls/api/companies/cmp-boulangerie-martin/items/sup-000002",
        json={"active": False},
        timeout=10,
    )
    page = f"/dossiers/{dossier_id}/listes/suppliers"
    browser.post_form(f"{page}/recharger", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    return browser, dossier_id, integration_id


def test_the_copy_carries_lists_rules_documents_and_state_and_the_sandbox_serves_the_same_lists(
    job_app, live, configured, staff, monkeypatch
):
    from datetime import UTC, datetime

    from webapp.services import reproduce as reproduce_module
    from webapp.services.reproduce import reproduce

    # A winter night at 01:59 UTC: the name says the hour of Paris, as the page's dates do.
    monkeypatch.setattr(reproduce_module, "utcnow", lambda: datetime(2026, 12, 2, 1, 59, tzinfo=UTC))
    _, dossier_id, integration_id = configured
    with job_app.app_context():
        before = picture(dossier_id)
        assert ("suppliers", "sup-000002") in {(i[0], i[1]) for i in before["items"] if not i[7]}  # archived
        done = reproduce(dossier_id, staff)
        copy_id = done.copy.id
        copy = picture(copy_id)
        assert copy == before
        assert picture(dossier_id) == before  # the original is untouched
        stored = db.session.get(Dossier, copy_id)
        assert stored.reproduced_from_id == dossier_id and stored.organisation.name == "Équipe Raccord"
        assert stored.name == "Boulangerie Martin — reproduction du 02/12/2026 à 02:59"
        current = stored.current_integration
        assert (current.software, current.status) == ("sandbox", IntegrationStatus.CONNECTED)
        assert current.company_id == done.sandbox_company_id != "cmp-boulangerie-martin"
        assert all(
            d.pdf_data is None and d.pdf_name is None
            for d in db.session.scalars(select(Document).where(Document.dossier_id == copy_id))
        )
        kinds = {e.kind for e in db.session.scalars(select(Event).where(Event.kind.startswith("support.")))}
        assert kinds == {"support.reproduced", "support.reproduction_created"}
        copy_integration_id = current.id

    # The sandbox company answers the copy with the same lists: a refresh changes nothing.
    staff_browser = Browser(live.url)
    staff_browser.login(*STAFF)
    page = f"/dossiers/{copy_id}/integrations/{copy_integration_id}"
    staff_browser.post_form(f"{page}/actualiser", {}, page=page, htmx=True)
    run_worker_burst(job_app)
    with job_app.app_context():
        refreshed = list(
            db.session.scalars(
                select(Event).where(Event.dossier_id == copy_id, Event.kind == "lists.refreshed")
            )
        )
        assert len(refreshed) == 6
        for event in refreshed:
            assert (event.details["added"], event.details["updated"], event.details["deactivated"]) == (
                0,
                0,
                0,
            )
        after = picture(copy_id)
        assert after["items"] == before["items"] and after["rules"] == before["rules"]


def test_an_expired_dossier_is_reproduced_expired_and_se_reconnecter_is_replayed_in_the_copy(
    job_app, live, connected_dossier, staff
):
    from webapp.services.reproduce import reproduce

    browser, dossier_id, integration_id = connected_dossier
    expire(job_app, live, browser, dossier_id, integration_id)
    with job_app.app_context():
        done = reproduce(dossier_id, staff)
        copy_id, company = done.copy.id, done.sandbox_company_id
        copy_integration = db.session.get(Dossier, copy_id).current_integration
        assert copy_integration.status is IntegrationStatus.EXPIRED
        assert (
            plain_spaces(copy_integration.status_reason)
            == db.session.get(Integration, integration_id).status_reason
        )
        copy_integration_id = copy_integration.id

    # In the copy, the software refuses as it did for the user: the refresh token has aged out.
    from webapp.connectors.base import IntegrationExpired
    from webapp.connectors.catalogue import get_connector
    from webapp.services.integrations import load_tokens

    with job_app.app_context(), pytest.raises(IntegrationExpired):
        get_connector("sandbox").refresh(load_tokens(db.session.get(Integration, copy_integration_id)))

    staff_browser = Browser(live.url)
    staff_browser.login(*STAFF)
    page = text_of_response(staff_browser.get(f"/dossiers/{copy_id}/integrations/{copy_integration_id}"))
    assert "Expirée" in page and "Se reconnecter" in page
    response = reconnect(staff_browser, copy_id, copy_integration_id, company=company)
    assert "L'intégration avec Compta Démo est de nouveau connectée." in unescaped(response.text)
    with job_app.app_context():
        assert db.session.get(Integration, copy_integration_id).status is IntegrationStatus.CONNECTED
        assert db.session.get(Integration, integration_id).status is IntegrationStatus.EXPIRED  # the user's


def text_of_response(response) -> str:
    return unescaped(response.text)


def test_reproduire_from_the_support_page_runs_a_job_with_a_link_to_the_copy(
    job_app, live, connected_dossier, staff
):
    _, dossier_id, _ = connected_dossier
    client = job_app.test_client()
    login(client, *STAFF)
    page = f"/support/dossiers/{dossier_id}"
    from tests.conftest import csrf_token

    response = client.post(
        f"{page}/reproduire", data={"csrf_token": csrf_token(client, page)}, follow_redirects=True
    )
    assert "La reproduction a commencé" in text_of(response)
    run_worker_burst(job_app)
    with job_app.app_context():
        run = db.session.scalar(select(JobRun).where(JobRun.kind == "reproduce"))
        assert run.status is JobStatus.SUCCEEDED and plain_spaces(run.message).startswith(
            "Copie créée : « Boulangerie Martin"
        )
        copy_id = db.session.scalar(select(Dossier.id).where(Dossier.reproduced_from_id == dossier_id))
        assert run.result_url == f"/support/dossiers/{copy_id}"
    fragment = text_of(client.get(f"/jobs/{run.id}", headers={"HX-Request": "true"}))
    assert f'href="/support/dossiers/{copy_id}"' in fragment and "Ouvrir" in fragment
    # Finished before the page came back: still in 'Tâches', with its link, as the toast says.
    tasks = text_of(client.get(page)).split('id="taches"')[1].split("</section>")[0]
    assert "Terminé" in tasks and f'href="/support/dossiers/{copy_id}"' in tasks
    copy_page = text_of(client.get(f"/support/dossiers/{copy_id}"))
    assert (
        "Ce dossier est une reproduction de" in copy_page
        and "contrôles du logiciel de démonstration" in copy_page
    )
    # Staff work in the copy as in any dossier of their own cabinet.
    assert client.get(f"/dossiers/{copy_id}/documents").status_code == 200


def test_support_commands_find_timeline_and_reproduce_in_french(app, runner):
    with app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        dossier = make_dossier(org, "Boulangerie Martin", "732829320")
        make_user(org, "claire@lefevre.test")
        make_user(make_organisation("Équipe Raccord"), STAFF[0], STAFF[1], Role.STAFF)
        from webapp.services.events import record_event

        record_event(
            dossier_id=dossier.id,
            kind="integration.expired",
            outcome="failed",
            message="L'intégration avec Compta Démo a expiré.",
            details={"answer": "invalid_grant"},
        )
        db.session.commit()
        dossier_id = dossier.id
    seed_sandbox_for(app)

    found = runner.invoke(args=["support", "find", "claire@lefevre"])
    assert found.exit_code == 0
    assert (
        f"n° {dossier_id} · Boulangerie Martin · SIREN 732 829 320 · cabinet « Cabinet Lefèvre »"
        in plain_spaces(found.output)
    )

    refused = runner.invoke(args=["support", "timeline", str(dossier_id), "--staff", "claire@lefevre.test"])
    assert refused.exit_code != 0 and "n'est pas un membre du support" in refused.output

    timeline = runner.invoke(args=["support", "timeline", "boulangerie", "--staff", STAFF[0], "--details"])
    assert timeline.exit_code == 0, timeline.output
    assert "Chronologie du dossier « Boulangerie Martin »" in timeline.output
    assert "ÉCHEC" in timeline.output and "L'intégration avec Compta Démo a expiré." in timeline.output
    assert '"answer": "invalid_grant"' in timeline.output

    reproduced = runner.invoke(args=["support", "reproduce", str(dossier_id), "--staff", STAFF[0]])
    assert reproduced.exit_code == 0, reproduced.output
    assert "Reproduction du dossier « Boulangerie Martin »" in reproduced.output
    assert "intégration : aucune intégration" in reproduced.output
    with app.app_context():
        kinds = [
            e.kind
            for e in db.session.scalars(
                select(Event).where(Event.dossier_id == dossier_id).order_by(Event.id)
            )
        ]
        assert kinds == ["integration.expired", "support.viewed", "support.reproduced"]

    unknown = runner.invoke(args=["support", "timeline", "999999", "--staff", STAFF[0]])
    assert unknown.exit_code != 0 and "Aucun dossier n° 999999." in unknown.output
