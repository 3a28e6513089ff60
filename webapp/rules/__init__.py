"""'Règles fournisseurs' and 'Règles clients'."""

from flask import Blueprint

bp = Blueprint("rules", __name__, url_prefix="/dossiers/<int:dossier_id>/regles")

from webapp.rules import payment_routes, routes  # noqa: E402,F401
