"""Connecting a dossier to an accounting software: 'Connecter' and the OAuth callback."""

from flask import Blueprint

bp = Blueprint("connections", __name__)

from webapp.connections import routes  # noqa: E402,F401
