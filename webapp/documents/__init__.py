"""The 'Documents' page of a dossier: invoices waiting to be published."""

from flask import Blueprint

bp = Blueprint("documents", __name__, url_prefix="/dossiers/<int:dossier_id>/documents")

from webapp.documents import routes  # noqa: E402,F401
