"""The interface's languages: the catalogues are complete and up to date, every visible text of the
templates goes through them, French typography is applied (and only in French), and a user who
chooses English sees English while everyone else keeps French."""

from __future__ import annotations

import html
import re

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import make_integration, make_item
from webapp.extensions import db
from webapp.i18n import LOCALES, ROOT, TEMPLATE, TRANSLATIONS, extract
from webapp.models import Dossier, ListKind, User
from webapp.models.events import EVENT_LABELS, Event, event_label
from webapp.typography import NBSP, NNBSP, french

TEMPLATES = ROOT / "templates"


def catalogue(locale: str):
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=locale)


def strings(message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


# --- the catalogues ---------------------------------------------------------------------------


def test_the_catalogues_hold_exactly_the_strings_of_the_code_and_templates():
    found = {m.id: m for m in extract() if m.id}
    for path in (TEMPLATE, *(TRANSLATIONS / loc / "LC_MESSAGES" / "messages.po" for loc in LOCALES)):
        with path.open("rb") as f:
            kept = {m.id for m in read_po(f) if m.id}
        missing = [f"{found[key].locations[0][0]}: {key!r}" for key in found if key not in kept]
        assert not missing, f"not in {path.name} (run `flask i18n update`):\n" + "\n".join(missing)
        assert not (kept - found.keys()), f"{path.name} holds strings no longer used: {kept - found.keys()}"


@pytest.mark.parametrize("locale", LOCALES)
def test_each_catalogue_is_complete_and_never_fuzzy(locale):
    messages = [m for m in catalogue(locale) if m.id]
    assert len(messages) > 400
    empty = [m.id for m in messages if not all(strings(m))]
    fuzzy = [m.id for m in messages if "fuzzy" in m.flags]
    assert not empty, f"{locale}: not translated: {empty}"
    assert not fuzzy, f"{locale}: fuzzy: {fuzzy}"
    plurals = [m for m in messages if m.pluralizable]
    assert plurals and all(len(strings(m)) == catalogue(locale).num_plurals for m in plurals)


def test_the_french_catalogue_is_the_source_with_its_typography():
    for message in catalogue("fr"):
        if not message.id:
            continue
        if message.pluralizable:  # French has three forms: one, many (millions), other
            expected = (french(message.id[0]), *[french(message.id[1])] * (len(strings(message)) - 1))
        else:
            expected = (french(message.id),)
        assert strings(message) == expected, message.id


def test_the_english_catalogue_keeps_the_placeholders_and_no_french_spacing():
    placeholder = re.compile(r"%\(\w+\)[sd]")
    for message in catalogue("en"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        for source, text in zip(ids, strings(message), strict=True):
            if "%(num)d" in " ".join(ids) and source == ids[0]:
                assert set(placeholder.findall(text)) <= set(placeholder.findall(" ".join(ids)))
            else:
                assert set(placeholder.findall(text)) == set(placeholder.findall(source)), message.id
            assert NBSP not in text and NNBSP not in text and " :" not in text, text


def test_no_curly_apostrophe_in_templates_and_catalogues():
    files = [*TEMPLATES.rglob("*.html"), *TRANSLATIONS.rglob("*.po"), TEMPLATE]
    offenders = [str(p.relative_to(ROOT)) for p in files if "\u2019" in p.read_text()]
    assert not offenders, offenders


# --- every visible text of the templates goes through the catalogue --------------------------

VISIBLE_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")
ALLOWED_WORDS = re.compile(r"\b(?:Raccord|SIREN|PDF)\b")
LETTERS = re.compile(r"[^\W\d_]")


def untranslated_texts(source: str) -> list[tuple[int, str]]:
    """(line, text) of each visible text of a template outside `{% trans %}` and `_()`: text between
    tags, and the values of the attributes people read, read through Jinja's own lexer."""
    found = []
    state, quote, attribute, skip = "text", "", "", ""
    in_trans = False
    block: list[str] = []
    for lineno, kind, value in Environment(extensions=["jinja2.ext.i18n"], autoescape=True).lex(source):
        if kind == "block_begin":
            block = []
            continue
        if kind == "name" and not block:
            block.append(value)
            in_trans = {"trans": True, "endtrans": False}.get(value, in_trans)
            continue
        if kind != "data" or in_trans:
            continue
        i = 0
        while i < len(value):
            if skip:
                end = value.find(skip, i)
                if end < 0:
                    break
                i, skip = end, ""
                continue
            if state == "text":
                if value.startswith("<!--", i):
                    end = value.find("-->", i)
                    i = len(value) if end < 0 else end + 3
                    continue
                if value[i] == "<":
                    element = re.match(r"<(script|style)\b", value[i:])
                    skip_after = f"</{element.group(1)}" if element else ""
                    state, i = "tag", i + 1
                    continue
                end = value.find("<", i)
                end = len(value) if end < 0 else end
                text = value[i:end]
                if LETTERS.search(ALLOWED_WORDS.sub("", html.unescape(text))):
                    found.append((lineno + value.count("\n", 0, i), text.strip()))
                i = end
            elif state == "tag":
                if value[i] == ">":
                    state, i = "text", i + 1
                    skip, skip_after = skip_after, ""
                    continue
                attr = re.match(r"""([\w:.@-]+)=(["'])""", value[i:])
                if attr:
                    attribute, quote, state = attr.group(1), attr.group(2), "attribute"
                    i += len(attr.group(0))
                    continue
                i += 1
            else:
                end = value.find(quote, i)
                text = value[i : len(value) if end < 0 else end]
                if attribute in VISIBLE_ATTRIBUTES and LETTERS.search(ALLOWED_WORDS.sub("", text)):
                    found.append((lineno + value.count("\n", 0, i), f"[{attribute}] {text}"))
                if end < 0:
                    break
                i, state = end + 1, "tag"
    return found


def test_the_scan_finds_a_text_left_out_of_the_catalogue():
    source = (
        '{% block title %}Mes dossiers{% endblock %}\n<p title="Aide">{% trans %}Bonjour{% endtrans %}</p>\n'
        "<p>{{ _('Déjà traduit') }} Oublié</p><script>var x = 'pas du texte';</script><b>Raccord</b> ·"
    )
    assert untranslated_texts(source) == [(1, "Mes dossiers"), (2, "[title] Aide"), (3, "Oublié")]


def test_every_visible_text_of_the_templates_goes_through_the_catalogue():
    left = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for line, text in untranslated_texts(path.read_text())
    ]
    assert not left, "not through _() or {% trans %}:\n" + "\n".join(left)


# --- French typography ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Documents : 3", f"Documents{NBSP}: 3"),
        ("Pourquoi ? Oui ! Et ; non", f"Pourquoi{NNBSP}? Oui{NNBSP}! Et{NNBSP}; non"),
        ("« Publier »", f"«{NBSP}Publier{NBSP}»"),
        ("5,5 % et 12 €", f"5,5{NBSP}% et 12{NBSP}€"),
        ("%(rate)s %% de TVA", f"%(rate)s{NBSP}%% de TVA"),
        (
            "Le %(kind)s « %(name)s » : {count} ?",
            f"Le %(kind)s «{NBSP}%(name)s{NBSP}»{NBSP}: {{count}}{NNBSP}?",
        ),
        (
            '<a href="/x?a=1" title="Voir : tout">Voir : tout</a>',
            f'<a href="/x?a=1" title="Voir : tout">Voir{NBSP}: tout</a>',
        ),
        ("https://example.test/a?b=c ; 12:30", f"https://example.test/a?b=c{NNBSP}; 12:30"),
        ("Rien à changer.", "Rien à changer."),
    ],
)
def test_french_typography(source, expected):
    assert french(source) == expected
    assert french(expected) == expected  # idempotent


def test_a_siren_is_grouped_by_narrow_no_break_spaces(app_ctx):
    assert Dossier(name="x", siren="732829320").siren_display == f"732{NNBSP}829{NNBSP}320"
    assert Dossier(name="x", siren=None).siren_display == ""


# --- the timeline's events ------------------------------------------------------------------


def test_every_event_kind_recorded_has_a_label_and_an_unknown_one_says_event(app):
    recorded = set()
    for path in (ROOT / "webapp").rglob("*.py"):
        recorded |= set(re.findall(r"""kind(?:=|: str = )"((?:[a-z_]+)\.[a-z_]+)\"""", path.read_text()))
    recorded |= {
        "rule.updated",
        "payment_rule.updated",
    }  # written as 'x.created' if creating else 'x.updated'
    assert recorded and recorded <= EVENT_LABELS.keys(), recorded - EVENT_LABELS.keys()
    with app.test_request_context():
        assert Event(kind="integration.disconnected").label == "Logiciel déconnecté"
        assert event_label("something.new") == "Événement"


# --- choosing English ------------------------------------------------------------------------


def visible_text(response) -> str:
    """What a reader sees: no scripts, no tags, entities decoded (the typography kept)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    page = re.sub(r"<head>.*?</head>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.fixture
def demo(app, runner):
    """The demo's cabinet, its first dossier connected, with a list of suppliers."""
    runner.invoke(args=["seed-demo"])
    with app.app_context():
        dossier = db.session.scalar(select(Dossier).order_by(Dossier.id))
        integration = make_integration(dossier)
        make_item(integration, ListKind.SUPPLIERS, "Moulins Bio du Sud", code="F001")
        db.session.commit()
        return dossier.id, integration.id


def choose_locale(client, value: str):
    return client.post("/profil/langue", data={"locale": value, "csrf_token": csrf_token(client, "/profil")})


def test_a_user_who_chooses_english_sees_english_and_keeps_it(app, client, demo):
    dossier_id, _ = demo
    login(client, "demo@raccord.test", "demo")
    assert "Mes dossiers" in client.get("/dossiers").get_data(as_text=True)
    response = choose_locale(client, "en")
    assert response.status_code == 302
    profile = client.get("/profil").get_data(as_text=True)
    assert '<html lang="en">' in profile and "The interface language has been saved." in profile
    page = visible_text(client.get("/dossiers"))
    assert "My dossiers" in page and "Accounting software" in page and "Mes dossiers" not in page
    home = visible_text(client.get(f"/dossiers/{dossier_id}"))
    assert "View the integration" in home and "Dossier settings" in home and "Voir l'intégration" not in home
    with app.app_context():
        assert db.session.scalar(select(User.locale).where(User.email == "demo@raccord.test")) == "en"

    # A new session (another browser) finds English again; another user keeps French.
    other = app.test_client()
    login(other, "demo@raccord.test", "demo")
    assert "My dossiers" in visible_text(other.get("/dossiers"))
    staff = app.test_client()
    login(staff, "support@raccord.test", "support")
    french_page = staff.get("/dossiers").get_data(as_text=True)
    assert '<html lang="fr">' in french_page and "Mes dossiers" in french_page


@pytest.mark.parametrize("value", ["de", "", "en'><script>", "x" * 300])
def test_a_bad_locale_is_refused_in_french_and_changes_nothing(app, client, demo, value):
    login(client, "demo@raccord.test", "demo")
    response = choose_locale(client, value)
    assert response.status_code == 422
    assert "Choisissez le français ou l'anglais." in html.unescape(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(User.locale).where(User.email == "demo@raccord.test")) == "fr"


def test_the_locale_form_needs_its_csrf_token(app, client, demo):
    login(client, "demo@raccord.test", "demo")
    assert client.post("/profil/langue", data={"locale": "en"}).status_code in (400, 403)
    with app.app_context():
        assert db.session.scalar(select(User.locale).where(User.email == "demo@raccord.test")) == "fr"


# --- typography on the pages of the story ---------------------------------------------------


def test_the_main_pages_carry_french_typography(app, client, demo):
    dossier_id, integration_id = demo
    login(client, "demo@raccord.test", "demo")
    base = f"/dossiers/{dossier_id}"
    pages = [
        "/dossiers",
        base,
        f"{base}/documents",
        f"{base}/integrations/{integration_id}",
        f"{base}/integrations/{integration_id}/changer",
        f"{base}/listes/suppliers",
        f"{base}/listes/tax_rates",
        f"{base}/regles/fournisseurs",
        f"{base}/parametres",
        f"{base}/parametres/connexions",
        f"{base}/parametres/codage",
        "/profil",
    ]
    staff = app.test_client()
    login(staff, "support@raccord.test", "support")
    checked = []
    for who, url in [
        *((client, p) for p in pages),
        (staff, "/support"),
        (staff, f"/support/dossiers/{dossier_id}"),
    ]:
        response = who.get(url)
        assert response.status_code == 200, url
        text = visible_text(response)
        checked.append(text)
        for bad in (" :", " ;", " ?", " !", "« ", " »"):
            at = text.find(bad)
            assert at < 0, f"{url}: ordinary space in {bad!r}: …{text[max(0, at - 40) : at + 20]}…"
        if "/listes/" in url:
            assert not re.search(r"\b\d{9}\b", text), f"{url}: a SIREN not grouped"
    every = "\n".join(checked)
    assert f"732{NNBSP}829{NNBSP}320" in every or re.search(rf"\d{{3}}{NNBSP}\d{{3}}{NNBSP}\d{{3}}", every)
    assert not re.search(r"\b\d{3} \d{3} \d{3}\b", every), "a SIREN grouped by ordinary spaces"
    assert f"{NBSP}:" in every and f"«{NBSP}" in every


def test_a_date_and_time_reads_in_the_users_language(app):
    from datetime import UTC, datetime

    from flask_babel import force_locale

    from webapp.templating import datetime_fr

    moment = datetime(2026, 12, 2, 1, 59, tzinfo=UTC)
    with app.test_request_context():
        assert datetime_fr(moment) == "02/12/2026 à 02:59"
    with app.test_request_context(), force_locale("en"):
        assert datetime_fr(moment) == "02/12/2026 at 02:59"
