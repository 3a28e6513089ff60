"""Jinja filters and globals: French formatting through Babel, htmx asset, toasts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from importlib.resources import files

from flask import Flask, current_app, send_from_directory
from flask_babel import format_currency, format_date, format_datetime, format_decimal, format_timedelta

from webapp.models.base import utcnow
from webapp.models.integration import ListKind

HTMX_DIR = files("js_lib_htmx") / "static" / "htmx"


def date_fr(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    return format_date(value, "dd/MM/yyyy")


def datetime_fr(value: datetime | None) -> str:
    if value is None:
        return "—"
    return format_datetime(value, "dd/MM/yyyy 'à' HH:mm")


def since_fr(value: datetime | None) -> str:
    """'il y a 3 heures' style, for 'since when' and 'last loaded'."""
    if value is None:
        return "—"
    return format_timedelta(value - utcnow(), add_direction=True, threshold=0.9)


def number_fr(value: int | float | Decimal | None) -> str:
    if value is None:
        return "—"
    return format_decimal(value)


def money_fr(value: Decimal | None, currency: str = "EUR") -> str:
    if value is None:
        return "—"
    return format_currency(value, currency)


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        date_fr=date_fr, datetime_fr=datetime_fr, since_fr=since_fr, number_fr=number_fr, money_fr=money_fr
    )
    app.jinja_env.globals["app_name"] = "Raccord"
    app.jinja_env.globals["list_kinds"] = list(ListKind)

    @app.get("/assets/htmx.min.js")
    def htmx_script():
        # Served from the registry package's own data: the script is never copied into the repo.
        return send_from_directory(
            str(HTMX_DIR),
            "htmx.min.js",
            mimetype="text/javascript",
            max_age=current_app.get_send_file_max_age(None),
        )
