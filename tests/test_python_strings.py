"""Every French text the Python code shows goes through gettext.

An AST scan of webapp/ and jobs/ (the simulated vendor software in sandbox/ is not Raccord's own text).
A string literal is *visible text* when

- it sits where a user or staff member reads it: an argument of flash(), the message of a toast
  ({"message": …}), of a WTForms ValidationError or of one of the project's user-facing errors (raised),
  a WTForms field's label, description or validator message, what a ``label``/``message`` property
  returns, a click option's help or an echoed line — and it holds a word of two letters or more and a
  space (or an accented letter);
- or, anywhere else, it holds an accented French letter or a French quotation mark.

It is fine when it is the msgid of ``_()``/``gettext``/``ngettext``/``lazy_gettext``/``_l``, a docstring,
the message of a log call, SQL, a dict key or subscript used as an identifier, or in ALLOWED below
(each with its reason). The test names file:line of every other one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = [ROOT / "webapp", ROOT / "jobs"]

GETTEXT = {"_", "gettext", "ngettext", "lazy_gettext", "_l", "lazy_ngettext", "pgettext", "npgettext"}
ACCENTED = re.compile(r"[àâäçéèêëîïôöùûüÿœæÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ«»]")
WORDS = re.compile(r"[A-Za-zÀ-ÿœŒ]{2,}")
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|WITH)\b", re.IGNORECASE)
# The project's errors whose message is shown to the user (connectors, documents, rules, jobs, demo).
USER_ERRORS = {
    "ConnectorError",
    "IntegrationExpired",
    "RateLimited",
    "ProviderError",
    "ProviderValidationError",
    "AccessTokenRejected",
    "DocumentError",
    "AmountTooLarge",
    "RuleError",
    "UserFacingJobError",
    "NotRetryable",
    "DemoRefused",
    "CompanyMismatch",
    "JobBackendUnavailable",
    "ValidationError",
    "StopValidation",
    "ClickException",
    "BadParameter",
    "UsageError",
    "ConfigError",
}
# Where a text is read: flash(…), click.echo(…), a toast's {"message": …}.
SHOWN_BY = {"flash", "echo", "secho", "abort"}
FIELD_KEYWORDS = {"label", "description", "message", "help"}

# (file relative to the root, literal): why it is not a translatable text.
ALLOWED: dict[tuple[str, str], str] = {
    ("webapp/i18n.py", "Français"): "a language's own name in the language menu, never translated",
    ("webapp/services/demo.py", "Léa Collaboratrice"): "a demo person's name, data and not interface",
    ("webapp/i18n.py", "Les catalogues de traduction (français, anglais)."): "an operator's command help",
    ("webapp/i18n.py", "Catalogues à jour ; entrées anglaises à traduire : "): "an operator's command output",
    ("webapp/typography.py", "(?<=«) +"): "a pattern of the French typography, not a text",
    ("webapp/typography.py", " +(?=»)"): "a pattern of the French typography, not a text",
    ("webapp/search.py", "œ"): "folding of ligatures for the search index, not a text",
    ("webapp/search.py", "Œ"): "folding of ligatures for the search index, not a text",
    ("webapp/search.py", "æ"): "folding of ligatures for the search index, not a text",
    ("webapp/services/parties.py", "œ"): "folding of ligatures to compare names, not a text",
    ("webapp/services/parties.py", "Œ"): "folding of ligatures to compare names, not a text",
    ("webapp/services/parties.py", "æ"): "folding of ligatures to compare names, not a text",
    ("webapp/templating.py", "dd/MM/yyyy 'à' HH:mm"): "a Babel date pattern, not a sentence",
    ("webapp/connectors/catalogue.py", "Compta Démo"): "the name of a software product",
    ("webapp/connectors/sandbox.py", "Compta Démo"): "the name of a software product",
    ("webapp/connectors/catalogue.py", "Sage Business Cloud Comptabilité"): "the name of a software product",
    ("webapp/connectors/sage.py", "Sage Business Cloud Comptabilité"): "the name of a software product",
    (
        "webapp/connectors/pennylane.py",
        "Exonéré (0 %)",
    ): "the name Pennylane's exempt VAT code gets in the list",
    # The demo's seed data (names stored in the database, as a user would have typed them) and the
    # demo supplier's invoice PDF: a French supplier's document, not Raccord's words.
    ("webapp/services/demo.py", "Cabinet Médical Rousseau"): "a demo dossier's name (data)",
    ("webapp/services/demo.py", "Cabinet Démo"): "the demo organisation's name (data, looked up by it)",
    ("webapp/services/demo.py", "Équipe Raccord"): "the demo support team's name (data)",
    ("webapp/services/demo.py", "Électricité du magasin"): "a demo rule's description (data)",
    ("webapp/services/demo.py", "Raccord (démonstration)"): "the demo PDF's creator field",
    (
        "webapp/services/demo.py",
        "Document de démonstration : aucune somme n'est due.",
    ): "the demo supplier's PDF",
    # The timeline's filter labels and the mask of secrets belong to the events module, whose label
    # table goes through gettext with the catalogues (with the templates).
    ("webapp/services/timeline.py", "Règles"): "the timeline's label table (events module)",
    ("webapp/services/timeline.py", "Réussi"): "the timeline's label table (events module)",
    ("webapp/services/timeline.py", "Échec"): "the timeline's label table (events module)",
    ("webapp/services/events.py", "[masqué]"): "the events module's mask of secrets, stored in the details",
}


# Not scanned yet, each for its reason: webapp/auth/ is wrapped with the locale work (the user's
# language lives there); the operator's commands and the configuration's errors (read in a terminal)
# are still to wrap. Remove an entry once its file is done: the scan then holds it too.
NOT_YET = {
    "webapp/cli.py": "operator commands, still to wrap",
    "webapp/support/cli.py": "support commands, still to wrap",
    "webapp/config.py": "configuration errors at start-up, still to wrap",
}


def _sources() -> list[Path]:
    found = sorted(p for base in SCANNED for p in base.rglob("*.py"))
    return [p for p in found if p.relative_to(ROOT).as_posix() not in NOT_YET]


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    return ""


def _is_log_call(call: ast.Call) -> bool:
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in LOG_METHODS):
        return False
    owner = ast.unparse(func.value)
    return owner.endswith(("logger", "log", "logging")) or owner.endswith("_LOG")


def _strings_in(node: ast.AST):
    """The str constants of an expression (an f-string's pieces included)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub


def _is_wtforms_field(call: ast.Call) -> bool:
    return _name(call.func).endswith("Field")


def _is_validator(call: ast.Call) -> bool:
    return _name(call.func) in {
        "DataRequired",
        "InputRequired",
        "Length",
        "NumberRange",
        "Optional",
        "Email",
        "EqualTo",
        "Regexp",
        "AnyOf",
        "NoneOf",
        "URL",
    }


def _wordy(text: str) -> bool:
    return bool(ACCENTED.search(text)) or (" " in text.strip() and bool(WORDS.search(text)))


def scan(path: Path, source: str | None = None) -> list[str]:
    """file:line — literal, for each visible text of `path` that does not go through gettext."""
    source = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(source)
    exempt: set[int] = set()  # ids of the constants that are fine where they are
    visible: set[int] = set()  # ids of the constants in a place that shows them

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                exempt.add(id(first.value))
        if isinstance(node, ast.Call):
            callee = _name(node.func)
            if callee in GETTEXT:
                for arg in node.args:
                    if isinstance(arg, ast.Constant):
                        exempt.add(id(arg))
            elif _is_log_call(node):
                for arg in node.args:
                    exempt.update(id(c) for c in _strings_in(arg))
            elif callee == "text" or callee == "execute":
                for arg in node.args:
                    exempt.update(id(c) for c in _strings_in(arg) if SQL.match(c.value))
            if callee in SHOWN_BY or callee in USER_ERRORS:
                for arg in node.args:
                    visible.update(id(c) for c in _strings_in(arg))
            if _is_wtforms_field(node) or _is_validator(node) or callee in {"option", "argument", "command"}:
                if _is_wtforms_field(node) and node.args:
                    visible.update(id(c) for c in _strings_in(node.args[0]))
                for kw in node.keywords:
                    if kw.arg in FIELD_KEYWORDS or kw.arg == "choices":
                        visible.update(id(c) for c in _strings_in(kw.value))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant):
                    exempt.add(id(key))
                    if key.value == "message" and value is not None:
                        visible.update(id(c) for c in _strings_in(value))
        if isinstance(node, ast.Subscript):
            exempt.update(id(c) for c in _strings_in(node.slice))
        if isinstance(node, ast.FunctionDef) and node.name in {"label", "message"}:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and sub.value is not None:
                    visible.update(id(c) for c in _strings_in(sub.value))

    rel = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in exempt:
            continue
        text = node.value
        if (rel, text) in ALLOWED:
            continue
        if ACCENTED.search(text) or (id(node) in visible and _wordy(text)):
            found.append(f"{rel}:{node.lineno} — {text!r}")
    return sorted(found)


def test_every_visible_python_string_goes_through_gettext():
    found = [line for path in _sources() for line in scan(path)]
    assert not found, f"{len(found)} visible text(s) without gettext:\n" + "\n".join(found)


def test_the_scan_sees_each_kind_of_visible_text():
    """The scan itself can fail: each kind of place it watches, written without gettext, is named."""
    path = ROOT / "webapp" / "example.py"
    source = '''
from flask import flash
from wtforms import StringField
from wtforms.validators import Length
import logging
logger = logging.getLogger(__name__)

class Form:
    name = StringField("Nom du dossier", validators=[Length(max=3, message="Trop long pour le nom")])

def view(kind):
    """Une docstring accentuée : permise."""
    flash("Les paramètres sont enregistrés.")
    flash("Saved settings for the file")
    logger.info("Journal accentué : permis")
    toast = {"message": "Liste chargee", "level": "success"}
    raise RuleError(f"La regle {kind} existe deja")

class Status:
    @property
    def label(self):
        return "En cours"
'''
    found = scan(path, source)
    texts = [line.split(" — ", 1)[1] for line in found]
    assert texts == [
        "'Nom du dossier'",
        "'Trop long pour le nom'",
        "'Les paramètres sont enregistrés.'",
        "'Saved settings for the file'",
        "'Liste chargee'",
        "'La regle '",
        "' existe deja'",
        "'En cours'",
    ] or sorted(texts) == sorted(
        [
            "'Nom du dossier'",
            "'Trop long pour le nom'",
            "'Les paramètres sont enregistrés.'",
            "'Saved settings for the file'",
            "'Liste chargee'",
            "'La regle '",
            "' existe deja'",
            "'En cours'",
        ]
    )
    wrapped = source.replace(
        'flash("Les paramètres sont enregistrés.")', 'flash(_("Les paramètres sont enregistrés."))'
    )
    assert "'Les paramètres sont enregistrés.'" not in [
        line.split(" — ", 1)[1] for line in scan(path, wrapped)
    ]


# --- what the wrapped sentences say: real plurals, and the hour of Paris -----------------------


def test_counts_are_said_with_real_plurals_and_none_for_zero(app):
    from jobs.transfer import transfer_rules  # noqa: F401 - the job's module imports cleanly
    from webapp.services.lists import MergeCounts
    from webapp.services.reproduce import copied_contents
    from webapp.services.transfer import documents_moved, rules_outcome
    from webapp.typography import french  # the French catalogue's spacing: « Documents\u00a0: »

    with app.app_context():
        assert MergeCounts(added=47, updated=1, deactivated=0, received=48).summary() == (
            "47 ajoutés, 1 modifié, aucun rendu inactif"
        )
        assert MergeCounts(added=0, updated=2, deactivated=1, received=3).summary() == (
            "aucun ajouté, 2 modifiés, 1 rendu inactif"
        )
        assert documents_moved({"moved": 3, "to_review": 1}) == french(
            "Documents : 3 transférés, dont 1 à réviser."
        )
        assert documents_moved({"moved": 1, "to_review": 0}) == french(
            "Documents : 1 transféré, aucun à réviser."
        )
        assert documents_moved({"moved": 0, "to_review": 0}) == french("Documents : aucun transféré.")
        assert rules_outcome(2, 0, 1) == "2 entières, aucune avec des champs vides, 1 non transférée"
        assert copied_contents(1, 2, 0) == "1 élément de liste, 2 règles, aucun document"
        assert "(s)" not in documents_moved({"moved": 2, "to_review": 2}) + rules_outcome(1, 1, 1)


def test_a_reproduction_is_named_at_the_hour_of_paris_outside_a_request(app):
    """A winter night at 01:59 UTC is 02:59 in Paris: the name says 02:59, as the page's dates do,
    in a job (an app context, no request) as in a request."""
    from datetime import UTC, datetime

    from webapp.templating import datetime_fr

    winter = datetime(2026, 12, 2, 1, 59, tzinfo=UTC)
    summer = datetime(2026, 7, 2, 1, 59, tzinfo=UTC)
    with app.app_context():
        assert datetime_fr(winter) == "02/12/2026 à 02:59"
        assert datetime_fr(summer) == "02/07/2026 à 03:59"
    with app.test_request_context():
        assert datetime_fr(winter) == "02/12/2026 à 02:59"
