"""Jinja filters and globals: French formatting through Babel, htmx asset, toasts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from importlib.resources import files

from babel.numbers import format_currency as babel_format_currency
from babel.numbers import format_percent, get_currency_precision
from flask import Flask, current_app, g, send_from_directory
from flask_babel import (
    format_date,
    format_datetime,
    format_decimal,
    format_timedelta,
    get_locale,
    get_timezone,
)
from werkzeug.urls import iri_to_uri

from webapp.fragments import csrf_token as fragment_csrf_token
from webapp.fragments import dossier_sidebar, integration_banner, user_name
from webapp.live import dossier_version, live
from webapp.models.base import utcnow
from webapp.models.integration import ListKind
from webapp.typography import siren_grouped

HTMX_DIR = files("js_lib_htmx") / "static" / "htmx"


_DATETIME_PATTERNS = {"fr": "dd/MM/yyyy 'à' HH:mm", "en": "dd/MM/yyyy 'at' HH:mm"}


# Babel's output depends only on the value, the locale and the time zone: it is kept for the values
# pages show over and over (list loads, events, invoice dates), each costing 10 to 30 µs to format.
@lru_cache(maxsize=8192)
def _babel_formatted(kind: str, value, _locale: str, _timezone: str) -> str:
    if kind == "date":
        return format_date(value, "dd/MM/yyyy")
    if kind == "datetime":
        # « le 02/12/2026 à 02:59 » in French, "02/12/2026 at 02:59" in English (the day first, as the
        # dates are read in the rest of the page).
        return format_datetime(value, _DATETIME_PATTERNS.get(_locale[:2], _DATETIME_PATTERNS["fr"]))
    return format_decimal(value)


def _locale_and_zone() -> tuple[str, str]:
    """The request's locale and time zone, asked of Flask-Babel once per request (each ask walks
    its context: a few µs, for each of the 200 values a page of invoices formats)."""
    try:
        return g.babel_locale_and_zone
    except AttributeError:
        g.babel_locale_and_zone = (str(get_locale() or "fr"), str(get_timezone()))
        return g.babel_locale_and_zone


def _formatted(kind: str, value) -> str:
    return _babel_formatted(kind, value, *_locale_and_zone())


def date_fr(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    return _formatted("date", value)


def datetime_fr(value: datetime | None) -> str:
    if value is None:
        return "—"
    return _formatted("datetime", value)


def since_fr(value: datetime | None) -> str:
    """'il y a 3 heures' style, for 'since when' and 'last loaded'."""
    if value is None:
        return "—"
    return format_timedelta(value - utcnow(), add_direction=True, threshold=0.9)


def number_fr(value: int | float | Decimal | None) -> str:
    if value is None:
        return "—"
    return _formatted("decimal", value)


def percent_fr(value: int | float | Decimal | None) -> str:
    """A rate given in percent (5.5) as the locale writes it: '5,5 %' (no-break space) in French,
    '5.5%' in English; its decimals kept."""
    if value is None:
        return "—"
    rate = Decimal(str(float(value))) / 100
    return format_percent(rate, locale=_locale_and_zone()[0], decimal_quantization=False)


@lru_cache(maxsize=64)
def _money_shape(currency: str, locale: str) -> tuple[str, str, str, str] | None:
    """(group, decimal, prefix, suffix) of the locale's pattern for `currency`, read off Babel's own
    output once; None when it is not the plain one (another precision, a sign elsewhere)."""
    if get_currency_precision(currency) != 2:
        return None
    sample = babel_format_currency(Decimal("-1234567.89"), currency, locale=locale)
    digits = [i for i, ch in enumerate(sample) if ch.isdigit()]
    prefix, body, suffix = sample[: digits[0]], sample[digits[0] : digits[-1] + 1], sample[digits[-1] + 1 :]
    group = body[1 : body.index("234")]
    decimal = body[body.index("567") + 3 : body.index("89")]
    if not prefix.endswith("-") or body != f"1{group}234{group}567{decimal}89":
        return None
    return group, decimal, prefix[:-1], suffix


def money_fr(value: Decimal | None, currency: str = "EUR") -> str:
    """Babel's format_currency, without its pattern engine (a page of 50 invoices formats 150 amounts:
    it was most of the page's time). The output is Babel's, checked by tests/test_formatting.py."""
    if value is None:
        return "—"
    locale = _locale_and_zone()[0]
    shape = _money_shape(currency, locale)
    if shape is None:
        return babel_format_currency(value, currency, locale=locale)
    group, decimal, prefix, suffix = shape
    amount = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    integer, cents = f"{abs(amount):.2f}".split(".")
    grouped = f"{int(integer):,}".replace(",", group)
    return f"{prefix}{'-' if amount.is_signed() else ''}{grouped}{decimal}{cents}{suffix}"


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        date_fr=date_fr,
        datetime_fr=datetime_fr,
        since_fr=since_fr,
        number_fr=number_fr,
        money_fr=money_fr,
        percent_fr=percent_fr,
        siren=lambda value: siren_grouped(value) if value else value,
        # An address as it travels (percent-encoded), not as Flask decodes it: a page's own address
        # written into it never carries a character typed in the URL (a NUL) as such.
        as_uri=iri_to_uri,
    )
    app.jinja_env.globals["app_name"] = "Raccord"
    app.jinja_env.globals["list_kinds"] = list(ListKind)
    app.jinja_env.globals["live"] = live
    app.jinja_env.globals["dossier_version"] = dossier_version
    app.jinja_env.globals["dossier_sidebar"] = dossier_sidebar
    app.jinja_env.globals["integration_banner"] = integration_banner
    app.jinja_env.globals["user_name"] = user_name
    # Flask-WTF's csrf_token, which gives a mark instead while a kept part renders (webapp.fragments);
    # Flask-WTF also adds its own by a context processor, which this later one overrides.
    app.jinja_env.globals["csrf_token"] = fragment_csrf_token
    app.context_processor(lambda: {"csrf_token": fragment_csrf_token})

    @app.get("/assets/htmx.min.js")
    def htmx_script():
        # Served from the registry package's own data: the script is never copied into the repo.
        return send_from_directory(
            str(HTMX_DIR),
            "htmx.min.js",
            mimetype="text/javascript",
            max_age=current_app.get_send_file_max_age(None),
        )
