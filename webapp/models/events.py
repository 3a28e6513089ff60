"""The dossier's timeline: one row per action on an integration, never edited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext
from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, UTCDateTime, utcnow

# What each `Event.kind` is called on a page: the codes themselves never reach one.
EVENT_LABELS = {
    "integration.connected": lazy_gettext("Logiciel connecté"),
    "integration.reconnected": lazy_gettext("Reconnexion"),
    "integration.reconnect_refused": lazy_gettext("Reconnexion refusée"),
    "integration.refresh_frequency": lazy_gettext("Actualisation automatique"),
    "integration.expired": lazy_gettext("Intégration expirée"),
    "integration.consent_ending": lazy_gettext("Fin d'accès annoncée"),
    "integration.disconnected": lazy_gettext("Logiciel déconnecté"),
    "integration.switched": lazy_gettext("Changement de logiciel"),
    "lists.refresh_requested": lazy_gettext("Actualisation des listes demandée"),
    "lists.refreshed": lazy_gettext("Listes actualisées"),
    "lists.refresh_failed": lazy_gettext("Échec de l'actualisation des listes"),
    "lists.refresh_deferred": lazy_gettext("Actualisation reportée au lendemain"),
    "rule.created": lazy_gettext("Règle créée"),
    "rule.updated": lazy_gettext("Règle modifiée"),
    "rule.deleted": lazy_gettext("Règle supprimée"),
    "rule.reapplied": lazy_gettext("Règle appliquée de nouveau"),
    "rules.transferred": lazy_gettext("Règles transférées"),
    "payment_rule.created": lazy_gettext("Règle de moyen de paiement créée"),
    "payment_rule.updated": lazy_gettext("Règle de moyen de paiement modifiée"),
    "payment_rule.deleted": lazy_gettext("Règle de moyen de paiement supprimée"),
    "defaults.updated": lazy_gettext("Codage par défaut modifié"),
    "document.created": lazy_gettext("Facture ajoutée"),
    "document.coded": lazy_gettext("Facture codée"),
    "document.published": lazy_gettext("Facture publiée"),
    "document.held": lazy_gettext("Publication en attente"),
    "document.publish_failed": lazy_gettext("Échec de la publication"),
    "document.publish_deferred": lazy_gettext("Publication reportée au lendemain"),
    "document.party_resolved": lazy_gettext("Tiers trouvé"),
    "document.party_creation_approved": lazy_gettext("Création du tiers acceptée"),
    "support.viewed": lazy_gettext("Consultation par le support"),
    "support.view_as": lazy_gettext("Vue utilisateur ouverte par le support"),
    "support.view_as_ended": lazy_gettext("Vue utilisateur fermée"),
    "support.reproduction_created": lazy_gettext("Dossier de reproduction créé"),
    "support.reproduced": lazy_gettext("Dossier reproduit dans le bac à sable"),
}
UNKNOWN_EVENT = lazy_gettext("Événement")


def event_label(kind: str) -> str:
    """The event's name as people read it, in the interface's language; « Événement » if unknown."""
    return str(EVENT_LABELS.get(kind, UNKNOWN_EVENT))


class Event(db.Model):
    __tablename__ = "event"
    __table_args__ = (Index("ix_event_dossier_created", "dossier_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id"))
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("integration.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    job_run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("job_run.id"))
    kind: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(20), default="ok")  # ok | failed
    message: Mapped[str] = mapped_column(Text)  # French, for the user
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # redacted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def label(self) -> str:
        return event_label(self.kind)
