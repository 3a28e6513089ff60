"""Notifications by e-mail (webapp.services.notifications): the expiry hook, the sweep, the digest."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from webapp.services import notifications


def integration_expired(integration_id: int) -> str:
    count = notifications.notify_integration_expired(integration_id)
    return ngettext("%(num)d personne prévenue.", "%(num)d personnes prévenues.", count)


def sweep() -> str:
    count = notifications.sweep()
    if count == 0:
        return _("Personne à prévenir.")
    return ngettext("%(num)d personne prévenue.", "%(num)d personnes prévenues.", count)


def send_digests() -> str:
    count = notifications.send_digests()
    if count == 0:
        return _("Aucun résumé quotidien à envoyer.")
    return ngettext("%(num)d résumé quotidien envoyé.", "%(num)d résumés quotidiens envoyés.", count)
