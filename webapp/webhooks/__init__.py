"""POST /webhooks/xero and /webhooks/quickbooks: what the accounting software pushes (see
webapp.services.webhooks). No session and no CSRF token: the vendor's signature over the raw body
is what is checked."""

from flask import Blueprint

from webapp.extensions import csrf

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)

from webapp.webhooks import routes  # noqa: E402,F401
