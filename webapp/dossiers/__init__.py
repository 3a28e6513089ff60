"""'Mes dossiers' and a dossier's home."""

from flask import Blueprint

bp = Blueprint("dossiers", __name__)

from webapp.dossiers import routes  # noqa: E402,F401
