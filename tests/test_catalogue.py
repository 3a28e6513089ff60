"""'Logiciels disponibles': each software through its real endpoints, its sandbox dialect, or unavailable."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import csrf_token, login, make_app, text_of
from tests.factories import make_dossier, make_organisation, make_user
from webapp.config import ConfigError, load_config
from webapp.connectors.catalogue import available_software, get_connector


def test_vendor_credentials_go_together_and_urls_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="XERO_CLIENT_ID et XERO_CLIENT_SECRET vont ensemble"):
        load_config({"XERO_CLIENT_ID": "abc"}, tmp_path)
    with pytest.raises(ConfigError, match="XERO_API_URL doit commencer par https://"):
        load_config({"XERO_API_URL": "ftp://x"}, tmp_path)
    secret = tmp_path / "xero_secret"
    secret.write_text("s3cr3t\n")
    config = load_config({"XERO_CLIENT_ID": "abc", "XERO_CLIENT_SECRET_FILE": str(secret)}, tmp_path)
    assert (config["XERO_CLIENT_ID"], config["XERO_CLIENT_SECRET"]) == ("abc", "s3cr3t")
    assert config["XERO_API_URL"] == "https://api.xero.com/api.xro/2.0"


def test_without_credentials_nor_sandbox_xero_is_shown_unavailable_with_why(database_url):
    app = make_app(database_url, SANDBOX_ENABLED=False)
    client = app.test_client()
    with app.app_context():
        org = make_organisation()
        dossier = make_dossier(org, "Boulangerie Martin")
        make_user(org, "claire@lefevre.test", "bon-mot-de-passe")
        dossier_id = dossier.id
    login(client, "claire@lefevre.test", "bon-mot-de-passe")
    url = f"/dossiers/{dossier_id}/parametres/connexions"
    page = text_of(client.get(url))
    assert (
        "Non disponible : les identifiants de l'application Xero ne sont pas configurés "
        "(XERO_CLIENT_ID et XERO_CLIENT_SECRET)." in page
    )
    assert "Le logiciel de démonstration est désactivé sur ce serveur." in page
    assert f"/dossiers/{dossier_id}/connexions/xero/connecter" not in page
    refused = client.post(
        f"/dossiers/{dossier_id}/connexions/xero/connecter",
        data={"csrf_token": csrf_token(client, url)},
        follow_redirects=True,
    )
    assert "Xero : Non disponible" in text_of(refused)


def test_with_credentials_the_real_endpoints_are_used(database_url):
    app = make_app(database_url, SANDBOX_ENABLED=False, XERO_CLIENT_ID="raccord-app", XERO_CLIENT_SECRET="s")
    with app.test_request_context():
        assert [s.key for s in available_software() if s.available] == ["xero"]
        connector = get_connector("xero")
        url = connector.authorization_url(
            redirect_uri="https://raccord.fr/oauth/callback", state="st", code_verifier="v" * 50
        )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://login.xero.com/identity/connect/authorize"
    )
    assert query["client_id"] == ["raccord-app"] and query["state"] == ["st"]
    assert query["code_challenge_method"] == ["S256"]
    assert set(query["scope"][0].split()) >= {
        "offline_access",
        "accounting.transactions",
        "accounting.attachments",
    }
    assert connector.api_url == "https://api.xero.com/api.xro/2.0"


def test_by_default_xero_goes_through_the_sandbox_dialect(database_url):
    app = make_app(database_url, SANDBOX_BASE_URL="http://127.0.0.1:5000/sandbox")
    with app.test_request_context():
        xero = next(s for s in available_software() if s.key == "xero")
        assert xero.available and xero.through_sandbox
        connector = get_connector("xero")
    assert connector.api_url == "http://127.0.0.1:5000/sandbox/xero/api.xro/2.0"
    assert connector.connections_url == "http://127.0.0.1:5000/sandbox/xero/connections"


def test_sage_real_endpoints_keep_sages_filter_parameter(database_url):
    app = make_app(database_url, SANDBOX_ENABLED=False, SAGE_CLIENT_ID="raccord-sage", SAGE_CLIENT_SECRET="s")
    with app.test_request_context():
        connector = get_connector("sage")
        url = connector.authorization_url(
            redirect_uri="https://raccord.fr/oauth/callback", state="st", code_verifier="v" * 50
        )
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://www.sageone.com/oauth2/auth/central?")
    assert query["filter"] == ["apiv3.1"] and query["scope"] == ["full_access"]
    assert connector.api_url == "https://api.accounting.sage.com/v3.1"
