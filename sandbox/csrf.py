"""The sandbox's own CSRF protection, for its consent and controls pages."""

from flask_wtf.csrf import CSRFProtect

sandbox_csrf = CSRFProtect()
