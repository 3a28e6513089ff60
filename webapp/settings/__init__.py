"""'Paramètres du dossier': the side menu, 'Connexions' and the page 'Intégration'."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/dossiers/<int:dossier_id>")

from webapp.settings import routes  # noqa: E402,F401
