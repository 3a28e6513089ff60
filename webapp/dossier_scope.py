"""Wires a blueprint under /dossiers/<dossier_id>: login required and the dossier checked on every URL."""

from __future__ import annotations

from flask import Blueprint, current_app, g
from flask_login import current_user

from webapp.services.dossiers import get_dossier_for


def scope_to_dossier(bp: Blueprint) -> None:
    @bp.url_value_preprocessor
    def pull_dossier_id(_endpoint, values):
        if values is not None and "dossier_id" in values:
            g.dossier_id = values.pop("dossier_id")

    @bp.url_defaults
    def add_dossier_id(endpoint, values):
        if (
            "dossier_id" not in values
            and g.get("dossier") is not None
            and current_app.url_map.is_endpoint_expecting(endpoint, "dossier_id")
        ):
            values["dossier_id"] = g.dossier.id

    @bp.before_request
    def load_dossier():
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        if "dossier_id" in g:
            g.dossier = get_dossier_for(current_user, g.dossier_id)
        return None
