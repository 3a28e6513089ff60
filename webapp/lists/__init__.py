"""The 'Listes' of a dossier: one page per list, with search and 'Recharger la liste'."""

from flask import Blueprint

bp = Blueprint("lists", __name__, url_prefix="/dossiers/<int:dossier_id>/listes")

from webapp.lists import routes  # noqa: E402,F401
