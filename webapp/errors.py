"""Error pages in French: no stack trace ever reaches a page."""

from __future__ import annotations

import json
import logging

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

MESSAGES = {
    400: (_l("Requête invalide"), _l("La demande n'a pas pu être comprise. Rechargez la page et réessayez.")),
    403: (_l("Accès refusé"), _l("Vous n'avez pas accès à cette page.")),
    404: (_l("Page introuvable"), _l("Cette page n'existe pas, ou vous n'y avez pas accès.")),
    405: (_l("Action non permise"), _l("Cette action n'est pas possible ici.")),
    413: (_l("Fichier trop volumineux"), _l("Le fichier envoyé dépasse la taille permise.")),
    429: (
        _l("Trop de demandes"),
        _l("Trop de demandes en peu de temps. Patientez un instant puis réessayez."),
    ),
    500: (_l("Erreur inattendue"), _l("Une erreur inattendue s'est produite. Réessayez dans un instant.")),
    503: (
        _l("Service indisponible"),
        _l("Le service est momentanément indisponible. Réessayez dans un instant."),
    ),
}


def render_error(code: int, message: str | None = None):
    title, default_message = MESSAGES.get(code, MESSAGES[500])
    title, message = str(title), str(message or default_message)
    if request.headers.get("HX-Request") == "true":
        # htmx does not swap an error answer: the message comes as a toast.
        toast = {"raccord:toast": {"message": message, "level": "error"}}
        body = render_template("errors/_error.html", code=code, title=title, message=message)
        return body, code, {"HX-Trigger": json.dumps(toast)}
    return render_template("errors/error.html", code=code, title=title, message=message), code


NUL_REFUSED = _l(
    "Le texte envoyé contient un caractère invisible interdit (NUL), souvent venu d'un copier-coller : "
    "retirez-le puis réessayez."
)


def has_nul() -> bool:
    """A NUL anywhere in what the request sends (every value of the query and the form, every file
    name, the path): PostgreSQL cannot store it, so it is refused before anything reads it."""
    values = [value for _key, values in request.args.lists() for value in values]
    values += [value for _key, values in request.form.lists() for value in values]
    values += [upload.filename or "" for _key, uploads in request.files.lists() for upload in uploads]
    return "\x00" in request.path or any("\x00" in value for value in values)


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_nul_characters():
        if has_nul():
            if request.method == "POST":
                return render_error(400, _("%(refused)s Rien n'a été enregistré.", refused=NUL_REFUSED))
            return render_error(400, str(NUL_REFUSED))
        return None

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return render_error(
            400, _("La session de sécurité du formulaire a expiré. Rechargez la page et réessayez.")
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        return render_error(code)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("Unhandled error on %s %s", request.method, request.path)
        from webapp.extensions import db

        db.session.rollback()
        return render_error(500)
