"""« Équipe »: the cabinet's admins run its users (roles, access to dossiers, invitations)."""

from flask import Blueprint

bp = Blueprint("team", __name__, url_prefix="/equipe")

from webapp.team import routes  # noqa: E402,F401
