"""The interface's languages: French (the source and the default) and English.

msgids are the French text as written in the templates and modules; the catalogues live in
webapp/translations. The compiled .mo files are not kept in git: `make` (the `catalogues` step),
`flask i18n compile` and the tests' setup build them when a .po is newer than its .mo.
`flask i18n update` extracts the strings again, updates both catalogues, writes every French msgstr
with French typography (webapp/typography.py) and keeps the English translations.
The `sandbox/` package (the simulated accounting software) is not translated.
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import click
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from flask import Flask, has_request_context
from flask.cli import AppGroup

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "webapp" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LOCALE_NAMES = {"fr": "Français", "en": "English"}  # each in its own language, as menus show them
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy_gettext": None,
    "_l": None,
    "lazy_ngettext": (1, 2),
}


def select_locale() -> str:
    """The signed-in user's saved language; French for everyone else, and outside a request (jobs, CLI)."""
    if not has_request_context():
        return DEFAULT_LOCALE
    from flask_login import current_user

    locale = getattr(current_user, "locale", None) if current_user.is_authenticated else None
    return locale if locale in LOCALES else DEFAULT_LOCALE


# --- compiling -----------------------------------------------------------------------------------


def compile_catalogues(directory: Path = TRANSLATIONS) -> list[Path]:
    """Build each messages.mo whose .po is newer (or that is missing); the ones built.

    Written to a temporary file then renamed: two processes starting together (test workers) never
    read half a file."""
    built = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=po_path.parent.parent.name)
        fd, tmp = tempfile.mkstemp(dir=mo_path.parent, prefix=".messages.", suffix=".mo")
        with os.fdopen(fd, "wb") as f:
            write_mo(f, catalog)
        os.chmod(tmp, 0o644)  # as a .po checked out: readable by the account the app runs as
        os.replace(tmp, mo_path)
        built.append(mo_path)
    return built


# --- extracting and updating ---------------------------------------------------------------------


def extract(root: Path = ROOT) -> Catalog:
    """The strings of the code and templates now, as `pybabel extract -F babel.cfg` finds them."""
    with (root / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    catalog = Catalog(project="Raccord", charset="utf-8", fuzzy=False)
    found = extract_from_dir(
        str(root),
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _po_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    # File names without line numbers: a template edited elsewhere does not change the catalogues.
    write_po(out, catalog, width=100, include_lineno=False, omit_header=False)
    return out.getvalue()


def _write_if_changed(path: Path, data: bytes, ignore_prefixes: Iterable[bytes] = ()) -> bool:
    def significant(content: bytes) -> list[bytes]:
        return [line for line in content.splitlines() if not line.startswith(tuple(ignore_prefixes))]

    if path.exists() and significant(path.read_bytes()) == significant(data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def _french_msgstr(message, num_plurals: int) -> str | tuple[str, ...]:
    """The msgid with its typography; for a plural, CLDR's French has three forms (one, many for
    the millions, other): the singular, then the plural for the others."""
    from webapp.typography import french

    if message.pluralizable:
        return (french(message.id[0]), *[french(message.id[1])] * (num_plurals - 1))
    return french(message.id)


def update_catalogues(directory: Path = TRANSLATIONS) -> dict[str, int]:
    """Extract, update messages.pot and both catalogues; the number of English entries left to translate."""
    template = extract()
    _write_if_changed(directory / "messages.pot", _po_bytes(template), (b'"POT-Creation-Date:',))
    untranslated = {}
    for locale in LOCALES:
        path = directory / locale / "LC_MESSAGES" / "messages.po"
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=locale)
        else:
            catalog = Catalog(locale=locale, project="Raccord", charset="utf-8", fuzzy=False)
        # No guessing from a similar msgid: a new entry stays empty until it is translated.
        # A copy each: Catalog.update puts the template's own entries into the catalogue.
        catalog.update(copy.deepcopy(template), no_fuzzy_matching=True, update_creation_date=False)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        for message in catalog:
            if not message.id:
                continue
            if locale == DEFAULT_LOCALE:
                # French is the source: the msgstr is the msgid with its typography, never fuzzy.
                message.string = _french_msgstr(message, catalog.num_plurals)
                message.flags.discard("fuzzy")
        untranslated[locale] = sum(1 for m in catalog if m.id and not _is_translated(m))
        _write_if_changed(path, _po_bytes(catalog), (b'"POT-Creation-Date:', b'"PO-Revision-Date:'))
    return untranslated


def _is_translated(message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(strings) and "fuzzy" not in message.flags


# --- commands and setup --------------------------------------------------------------------------

i18n_cli = AppGroup("i18n", help="Les catalogues de traduction (français, anglais).")


@i18n_cli.command("compile")
def compile_command() -> None:
    """Compile les catalogues (.po → .mo) qui ont changé."""
    for path in compile_catalogues():
        click.echo(f"{path.relative_to(ROOT)}")


@i18n_cli.command("update")
def update_command() -> None:
    """Extrait les textes, met à jour les catalogues (français complet, anglais à traduire) et les compile."""
    left = update_catalogues()
    compile_catalogues()
    click.echo(f"Catalogues à jour ; entrées anglaises à traduire : {left.get('en', 0)}.")


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Paris")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
    app.jinja_env.globals["interface_language"] = interface_language
    app.cli.add_command(i18n_cli)


def interface_language() -> str:
    """'fr' or 'en', for `<html lang>`."""
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale else DEFAULT_LOCALE
