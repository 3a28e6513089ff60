"""The owned status fragment of a background job."""

from flask import Blueprint

bp = Blueprint("jobstatus", __name__)

from webapp.jobstatus import routes  # noqa: E402,F401
