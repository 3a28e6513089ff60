"""In Chromium: an admin invites a colleague from « Équipe », chooses the dossier they will see, and
the colleague follows the link of the mail received, sets a password and lands on 'Mes dossiers'."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.conftest import WorkerProcess
from tests.factories import make_dossier, make_organisation, make_user
from webapp.models import Role

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def test_an_admin_invites_a_colleague_who_joins_from_the_mail(page, mail_app, smtp_server, live):
    with mail_app.app_context():
        org = make_organisation("Cabinet Lefèvre")
        make_user(org, "claire@lefevre.test", "bon-mot-de-passe", Role.ADMIN)
        for name in ("Boulangerie Martin", "Garage Éric"):
            make_dossier(org, name, None)
    worker = WorkerProcess(live.app)
    try:
        page.goto(live.url + "/login")
        page.get_by_label("Adresse e-mail").fill("claire@lefevre.test")
        page.get_by_label("Mot de passe").fill("bon-mot-de-passe")
        page.get_by_role("button", name="Se connecter").click()
        page.get_by_role("navigation", name="Navigation principale").get_by_role(
            "link", name="Équipe"
        ).click()

        page.get_by_label("Adresse e-mail").fill("hugo@lefevre.test")
        page.get_by_label("Rôle", exact=True).select_option("member")
        page.get_by_label("Seulement des dossiers choisis").check()
        page.get_by_role("button", name="Envoyer l'invitation").click()
        expect(page.get_by_role("heading", name="Dossiers de hugo@lefevre.test")).to_be_visible()
        page.get_by_label("Boulangerie Martin").check()  # saved at once
        expect(page.locator("#toasts-messages")).to_contain_text("1 dossier ajouté.")

        (received,) = smtp_server.wait_for(1, timeout=60)
        assert received.envelope_to == ["hugo@lefevre.test"]
        (link,) = set(re.findall(r"https://raccord\.cabinet\.test/invitation\?token=[\w.\-]+", received.text))
        parts = urlsplit(link)

        page.get_by_role("button", name="Fermer la session").click()
        page.goto(f"{live.url}{parts.path}?{parts.query}")
        expect(page.get_by_role("heading", name="Rejoindre « Cabinet Lefèvre »")).to_be_visible()
        page.get_by_label("Votre nom").fill("Hugo Stagiaire")
        page.get_by_label("Nouveau mot de passe", exact=True).fill("mot-de-passe-hugo")
        page.get_by_label("Confirmez le nouveau mot de passe").fill("mot-de-passe-hugo")
        page.get_by_role("button", name="Créer mon compte").click()

        expect(page.get_by_role("heading", name="Mes dossiers")).to_be_visible()
        expect(page.get_by_role("link", name="Boulangerie Martin")).to_be_visible()
        expect(page.get_by_role("link", name="Garage Éric")).to_have_count(0)
        expect(page.get_by_role("link", name="Équipe")).to_have_count(0)
    finally:
        worker.stop()
