"""Reading a dossier's timeline: the events, filtered, with who did them, in French."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import aliased

from webapp.extensions import db
from webapp.ids import parse_id
from webapp.models import Event, Integration, User

# Filters on the kind of event: the label shown, and the prefixes of `Event.kind` they cover.
CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "connexion": ("Connexion", ("integration.",)),
    "listes": ("Listes", ("lists.",)),
    "regles": ("Règles", ("rule.", "rules.", "payment_rule.", "defaults.")),
    "documents": ("Documents", ("document.",)),
    "support": ("Support", ("support.",)),
}

OUTCOMES = {"ok": "Réussi", "failed": "Échec"}

PAGE_SIZE = 50


@dataclass(frozen=True)
class TimelineFilters:
    category: str = ""
    outcome: str = ""
    integration_id: int | None = None
    before_id: int | None = None  # paging: events older than this one

    @classmethod
    def from_args(cls, args: Any) -> TimelineFilters:
        """From a query string; what is not understood is ignored rather than refused."""
        category = args.get("categorie", "")
        outcome = args.get("resultat", "")
        return cls(
            category=category if category in CATEGORIES else "",
            outcome=outcome if outcome in OUTCOMES else "",
            integration_id=parse_id(args.get("integration")),
            before_id=parse_id(args.get("avant"), big=True),  # an event's id
        )

    def as_args(self, **changes: Any) -> dict[str, Any]:
        values = {
            "categorie": self.category,
            "resultat": self.outcome,
            "integration": self.integration_id,
            "avant": self.before_id,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "")}


@dataclass(frozen=True)
class TimelineEntry:
    event: Event
    actor: User | None
    software_name: str

    @property
    def who(self) -> str:
        """The person who acted, 'Support Raccord' said as such; a job or the software otherwise."""
        if self.actor is None:
            return "Raccord (automatique)"
        if self.actor.is_staff:
            return f"{self.actor.display_name} (support)"
        return self.actor.display_name

    @property
    def category_label(self) -> str:
        for label, prefixes in CATEGORIES.values():
            if self.event.kind.startswith(prefixes):
                return label
        return "Autre"

    @property
    def details_json(self) -> str:
        return json.dumps(self.event.details or {}, ensure_ascii=False, indent=2, sort_keys=True)


# Made once: a new alias per call rebuilt its column collection on every page showing events.
_ACTOR = aliased(User, name="actor")


def _query(dossier_id: int, filters: TimelineFilters) -> Select:
    actor = _ACTOR
    query = (
        select(Event, actor, Integration.software)
        .outerjoin(actor, actor.id == Event.actor_id)
        .outerjoin(Integration, Integration.id == Event.integration_id)
        .where(Event.dossier_id == dossier_id)
        .order_by(Event.id.desc())
    )
    if filters.category:
        prefixes = CATEGORIES[filters.category][1]
        query = query.where(or_(*(Event.kind.startswith(p) for p in prefixes)))
    if filters.outcome:
        query = query.where(Event.outcome == filters.outcome)
    if filters.integration_id:
        query = query.where(Event.integration_id == filters.integration_id)
    if filters.before_id:
        query = query.where(Event.id < filters.before_id)
    return query


def timeline(
    dossier_id: int, filters: TimelineFilters | None = None, limit: int = PAGE_SIZE
) -> tuple[list[TimelineEntry], bool]:
    """The newest events first, and whether older ones remain."""
    from webapp.connectors.catalogue import software_name

    rows = db.session.execute(_query(dossier_id, filters or TimelineFilters()).limit(limit + 1)).all()
    entries = [
        TimelineEntry(event, actor, software_name(software) if software else "")
        for event, actor, software in rows[:limit]
    ]
    return entries, len(rows) > limit


def recent_for_user(dossier_id: int, limit: int = 8) -> list[TimelineEntry]:
    """What the 'Intégration' page shows the user: the last events of the dossier's connections,
    lists, rules and publications (the support's visits included: the user may know them)."""
    return timeline(dossier_id, limit=limit)[0]
