"""The support area (/support): staff only. Find a dossier, read its timeline, view it as its user,
reproduce it in the sandbox, retry a failed job, see the queues' health."""

from flask import Blueprint

bp = Blueprint("support", __name__, url_prefix="/support")

from webapp.support import routes  # noqa: E402,F401
