"""« Équipe »: admins change roles, deactivate accounts and restrict members to some dossiers; the
cabinet always keeps an admin; members and other cabinets are refused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, login, text_of
from tests.factories import make_dossier, make_organisation, make_user
from webapp.extensions import db
from webapp.models import Dossier, Role, User, UserSession, dossier_access
from webapp.services.dossiers import users_who_may_see
from webapp.services.team import grant


@pytest.fixture
def cabinet(app_ctx):
    org = make_organisation("Cabinet Lefèvre")
    admin = make_user(org, "claire@lefevre.test", "bon-mot-de-passe", Role.ADMIN)
    member = make_user(org, "hugo@lefevre.test", "mot-de-passe-hugo")
    member.full_name = "Hugo Stagiaire"
    dossiers = [
        make_dossier(org, name, None) for name in ("Boulangerie Martin", "Garage Éric", "Épicerie Dubois")
    ]
    db.session.commit()
    return org, admin, member, dossiers


def _restrict(member: User, *dossiers: Dossier) -> None:
    member.dossiers_restricted = True
    grant(member.id, [d.id for d in dossiers])
    db.session.commit()


def test_the_team_page_lists_the_cabinet_with_roles_and_dossiers(client, cabinet):
    org, admin, member, dossiers = cabinet
    _restrict(member, dossiers[0], dossiers[2])
    make_user(make_organisation("Cabinet Girard"), "paul@girard.test")
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    home = text_of(client.get("/dossiers"))
    assert 'href="/equipe"' in home and "Équipe" in home
    page = text_of(client.get("/equipe"))
    assert "claire@lefevre.test" in page and "hugo@lefevre.test" in page
    assert "paul@girard.test" not in page
    assert "Tous les dossiers" in page and "2 dossiers" in page
    assert "Administrateur" in page and "Membre" in page
    assert "Jamais" in page  # Hugo never logged in; Claire just did
    assert "Actif" in page


def test_a_member_gets_403_in_french_and_no_link(client, cabinet):
    org, admin, member, dossiers = cabinet
    login(client, "hugo@lefevre.test", "mot-de-passe-hugo")
    assert 'href="/equipe"' not in client.get("/dossiers").get_data(as_text=True)
    token = csrf_token(client, "/dossiers")
    for method, path in [
        ("GET", "/equipe"),
        ("POST", f"/equipe/membres/{admin.id}/role"),
        ("POST", f"/equipe/membres/{admin.id}/desactiver"),
        ("POST", f"/equipe/membres/{member.id}/reactiver"),
        ("GET", f"/equipe/membres/{member.id}/dossiers"),
        ("POST", f"/equipe/membres/{member.id}/dossiers/mode"),
        ("POST", f"/equipe/membres/{member.id}/dossiers"),
    ]:
        response = client.open(
            path, method=method, data={"csrf_token": token, "role": "admin", "mode": "all", "shown": "1"}
        )
        assert response.status_code == 403, (method, path)
        assert "réservée aux administrateurs du cabinet" in text_of(response)
    db.session.expire_all()
    assert db.session.get(User, member.id).role is Role.MEMBER
    assert db.session.get(User, admin.id).is_active_account


def test_another_cabinets_admin_cannot_touch_my_team(client, cabinet):
    org, admin, member, dossiers = cabinet
    make_user(make_organisation("Cabinet Girard"), "paul@girard.test", "autre-mot-de-passe", Role.ADMIN)
    login(client, "paul@girard.test", "autre-mot-de-passe")
    token = csrf_token(client, "/equipe")
    assert "hugo@lefevre.test" not in text_of(client.get("/equipe"))
    for method, path in [
        ("POST", f"/equipe/membres/{member.id}/role"),
        ("POST", f"/equipe/membres/{member.id}/desactiver"),
        ("GET", f"/equipe/membres/{member.id}/dossiers"),
        ("POST", f"/equipe/membres/{member.id}/dossiers/mode"),
        ("POST", f"/equipe/membres/{member.id}/dossiers"),
    ]:
        response = client.open(
            path,
            method=method,
            data={"csrf_token": token, "role": "admin", "mode": "chosen", "shown": dossiers[0].id},
        )
        assert response.status_code == 404, (method, path)
    db.session.expire_all()
    hugo = db.session.get(User, member.id)
    assert hugo.role is Role.MEMBER and hugo.is_active_account and not hugo.dossiers_restricted


def test_staff_are_not_on_the_team_page_and_cannot_be_changed(client, cabinet):
    org, admin, member, dossiers = cabinet
    staff = make_user(org, "support@raccord.example", "support-secret", Role.STAFF)
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    assert "support@raccord.example" not in text_of(client.get("/equipe"))
    token = csrf_token(client, "/equipe")
    response = client.post(f"/equipe/membres/{staff.id}/role", data={"csrf_token": token, "role": "member"})
    assert response.status_code == 404
    assert db.session.scalar(select(User.role).where(User.id == staff.id)) is Role.STAFF


def test_change_a_role_and_keep_the_last_admin(client, cabinet):
    org, admin, member, dossiers = cabinet
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    token = csrf_token(client, "/equipe")
    # The only admin cannot make themselves a member.
    refused = client.post(
        f"/equipe/membres/{admin.id}/role",
        data={"csrf_token": token, "role": "member"},
        follow_redirects=True,
    )
    assert "doit garder au moins un administrateur actif" in text_of(refused)
    assert db.session.scalar(select(User.role).where(User.id == admin.id)) is Role.ADMIN
    # A role that is not one: refused, nothing changes (staff cannot be given from here).
    for wrong in ("staff", "superadmin", ""):
        page = client.post(
            f"/equipe/membres/{member.id}/role",
            data={"csrf_token": token, "role": wrong},
            follow_redirects=True,
        )
        assert page.status_code == 200 and "Choisissez le rôle" in text_of(page)
    assert db.session.scalar(select(User.role).where(User.id == member.id)) is Role.MEMBER
    promoted = client.post(
        f"/equipe/membres/{member.id}/role",
        data={"csrf_token": token, "role": "admin"},
        follow_redirects=True,
    )
    assert "Hugo Stagiaire est maintenant administrateur." in text_of(promoted)
    # With another admin, Claire may step down: she leaves the page she no longer may see.
    down = client.post(f"/equipe/membres/{admin.id}/role", data={"csrf_token": token, "role": "member"})
    assert down.headers["Location"] == "/dossiers"
    assert client.get("/equipe").status_code == 403
    db.session.expire_all()
    assert db.session.get(User, admin.id).role is Role.MEMBER
    assert db.session.get(User, member.id).role is Role.ADMIN


def test_deactivating_ends_every_session_and_reactivating_lets_them_back(app, client, cabinet):
    org, admin, member, dossiers = cabinet
    hugo = app.test_client()
    login(hugo, "hugo@lefevre.test", "mot-de-passe-hugo")
    assert hugo.get("/dossiers").status_code == 200
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    token = csrf_token(client, "/equipe")
    page = client.post(
        f"/equipe/membres/{member.id}/desactiver", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Le compte de Hugo Stagiaire est désactivé : ses sessions sont fermées." in text_of(page)
    assert "Désactivé" in text_of(page)
    assert hugo.get("/dossiers").headers["Location"].startswith("/login")
    assert not db.session.scalar(
        select(func.count())
        .select_from(UserSession)
        .where(UserSession.user_id == member.id, UserSession.ended_at.is_(None))
    )
    assert login(hugo, "hugo@lefevre.test", "mot-de-passe-hugo").status_code == 200  # refused
    # Claire cannot deactivate herself.
    self_page = client.post(
        f"/equipe/membres/{admin.id}/desactiver", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Vous ne pouvez pas désactiver votre propre compte." in text_of(self_page)
    back = client.post(
        f"/equipe/membres/{member.id}/reactiver", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Le compte de Hugo Stagiaire est de nouveau actif." in text_of(back)
    assert login(hugo, "hugo@lefevre.test", "mot-de-passe-hugo").headers["Location"] == "/dossiers"


def test_posts_without_csrf_change_nothing(client, cabinet):
    org, admin, member, dossiers = cabinet
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    for path, data in [
        (f"/equipe/membres/{member.id}/role", {"role": "admin"}),
        (f"/equipe/membres/{member.id}/desactiver", {}),
        (f"/equipe/membres/{member.id}/dossiers/mode", {"mode": "chosen"}),
        (f"/equipe/membres/{member.id}/dossiers", {"shown": dossiers[0].id, "dossier": dossiers[0].id}),
    ]:
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "session de sécurité du formulaire a expiré" in text_of(response)
    db.session.expire_all()
    hugo = db.session.get(User, member.id)
    assert hugo.role is Role.MEMBER and hugo.is_active_account and not hugo.dossiers_restricted
    assert not db.session.scalar(select(func.count()).select_from(dossier_access))


def test_restrict_a_member_to_chosen_dossiers(app, client, cabinet):
    org, admin, member, dossiers = cabinet
    theirs = make_dossier(make_organisation("Cabinet Girard"), "Garage Girard", None)
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    token = csrf_token(client, f"/equipe/membres/{member.id}/dossiers")
    page = text_of(client.get(f"/equipe/membres/{member.id}/dossiers"))
    assert (
        "Dossiers de Hugo Stagiaire" in page and "Boulangerie Martin" in page and "Garage Girard" not in page
    )
    # Ticks of a page: one dossier given; another cabinet's id is ignored.
    saved = client.post(
        f"/equipe/membres/{member.id}/dossiers",
        data={
            "csrf_token": token,
            "shown": [dossiers[0].id, dossiers[1].id, theirs.id],
            "dossier": [dossiers[0].id, theirs.id],
        },
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 200
    assert json.loads(saved.headers["HX-Trigger"])["raccord:toast"]["message"] == "1 dossier ajouté."
    assert db.session.scalars(select(dossier_access.c.dossier_id)).all() == [dossiers[0].id]
    # Not restricted yet: Hugo still sees every dossier.
    hugo = app.test_client()
    login(hugo, "hugo@lefevre.test", "mot-de-passe-hugo")
    assert "Garage Éric" in text_of(hugo.get("/dossiers"))
    restricted = client.post(
        f"/equipe/membres/{member.id}/dossiers/mode",
        data={"csrf_token": token, "mode": "chosen"},
        follow_redirects=True,
    )
    assert "Hugo Stagiaire ne voit plus que les dossiers cochés." in text_of(restricted)
    mine = text_of(hugo.get("/dossiers"))
    assert "Boulangerie Martin" in mine and "Garage Éric" not in mine and "Épicerie Dubois" not in mine
    assert hugo.get(f"/dossiers/{dossiers[1].id}").status_code == 404
    assert "1 dossier" in text_of(client.get("/equipe"))
    # Unticking on the page (without htmx) takes it back.
    client.post(
        f"/equipe/membres/{member.id}/dossiers",
        data={"csrf_token": token, "shown": [dossiers[0].id, dossiers[1].id]},
    )
    assert "Boulangerie Martin" not in text_of(hugo.get("/dossiers"))
    assert hugo.get(f"/dossiers/{dossiers[0].id}").status_code == 404
    # « Tous les dossiers du cabinet » again.
    client.post(f"/equipe/membres/{member.id}/dossiers/mode", data={"csrf_token": token, "mode": "all"})
    assert "Épicerie Dubois" in text_of(hugo.get("/dossiers"))
    bad = client.post(
        f"/equipe/membres/{member.id}/dossiers/mode",
        data={"csrf_token": token, "mode": "rien"},
        follow_redirects=True,
    )
    assert bad.status_code == 200 and "Choisissez « Tous les dossiers du cabinet »" in text_of(bad)


def test_the_restriction_list_is_searched_and_paged_at_thousands_of_dossiers(client, cabinet):
    org, admin, member, dossiers = cabinet
    db.session.add_all(Dossier(organisation_id=org.id, name=f"Société {n:04d}") for n in range(1, 121))
    db.session.commit()
    _restrict(member, dossiers[1])
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    url = f"/equipe/membres/{member.id}/dossiers"
    first = text_of(client.get(url))
    assert "123 dossiers · page 1 sur 3" in first
    assert first.count('name="shown"') == 50
    assert "Page suivante" in first
    last = text_of(client.get(url + "?page=99"))  # clamped
    assert "page 3 sur 3" in last and last.count('name="shown"') == 23
    found = client.get(url + "?q=eric", headers={"HX-Request": "true", "HX-Target": "access-list"})
    body = text_of(found)
    assert "<h1>" not in body and "Garage Éric" in body and "1 dossier · page 1 sur 1" in body
    assert "checked" in body  # Hugo has it
    ticked = text_of(client.get(url + "?coches=1"))
    assert "Garage Éric" in ticked and "Société 0001" not in ticked
    assert "Aucun dossier ne correspond" in text_of(client.get(url + "?q=zzzz"))
    for junk in ("page=-1", "page=abc", "q=" + "é" * 300, "coches=2"):
        assert client.get(f"{url}?{junk}").status_code == 200


def test_users_who_may_see_a_dossier(cabinet):
    org, admin, member, dossiers = cabinet
    other = make_user(org, "lea@lefevre.test")
    gone = make_user(org, "ancien@lefevre.test")
    gone.is_active_account = False
    make_user(org, "support@raccord.example", role=Role.STAFF)
    _restrict(member, dossiers[0])
    assert {u.email for u in users_who_may_see(dossiers[0])} == {
        "claire@lefevre.test",
        "hugo@lefevre.test",
        "lea@lefevre.test",
    }
    assert {u.email for u in users_who_may_see(dossiers[1])} == {"claire@lefevre.test", "lea@lefevre.test"}
    assert other in users_who_may_see(dossiers[1])
