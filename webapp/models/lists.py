"""The lists imported from the accounting software, and the state of their last load."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, UTCDateTime, utcnow
from webapp.models.integration import ListKind
from webapp.search import (
    SEARCH_TEXT_BYTES,
    SORT_NAME_BYTES,
    combined,
    compact,
    keep_search_columns,
    search_column,
    searchable,
    sort_key,
)

_kind_enum = Enum(
    ListKind, name="list_kind", native_enum=False, values_callable=lambda e: [m.value for m in e]
)


def item_search_text(get) -> str:
    """What a list search looks into: VAT number, SIREN, code and name."""
    return combined(
        compact(get("vat_number")), compact(get("siren")), searchable(get("code")), searchable(get("name"))
    )


def item_sort_name(get) -> str:
    return sort_key(get("name"))


class _ItemColumns:
    """What the software tells of an item: the same columns in the list and in its staging area."""

    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    kind: Mapped[ListKind] = mapped_column(_kind_enum)
    external_id: Mapped[str] = mapped_column(String(120))
    code: Mapped[str | None] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(300))
    vat_number: Mapped[str | None] = mapped_column(String(40))
    siren: Mapped[str | None] = mapped_column(String(9))
    rate: Mapped[str | None] = mapped_column(String(12))  # tax rates, as a decimal string: "5.5"
    active: Mapped[bool] = mapped_column(default=True)
    extras: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Normalised copies for searching and sorting (webapp.search), copied from the staging area as is.
    search_text: Mapped[str] = search_column(item_search_text, SEARCH_TEXT_BYTES)
    sort_name: Mapped[str] = search_column(item_sort_name, SORT_NAME_BYTES)


# Indexes made by a migration for one database only, unknown to the models (PostgreSQL's trigram index
# needs the pg_trgm extension): the schema comparison leaves them out.
DATABASE_ONLY_INDEXES = frozenset({"ix_list_item_trigram"})


def compared_in_schema_check(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object: everything but DATABASE_ONLY_INDEXES."""
    return not (type_ == "index" and reflected and name in DATABASE_ONLY_INDEXES)


class ListItem(_ItemColumns, db.Model):
    """One account, supplier, customer, tax rate, tracking category or payment method."""

    __tablename__ = "list_item"
    __table_args__ = (
        UniqueConstraint("integration_id", "kind", "external_id", name="uq_list_item_external"),
        # A search walks the list in page order (sort_name, id) and tests its status and search copy:
        # all in the index, only the items shown are read from the table (migration 0020).
        Index("ix_list_item_search", "integration_id", "kind", "sort_name", "id", "active", "search_text"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    visible: Mapped[bool] = mapped_column(default=True)  # 'Visible' in coding choices (accounts)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ListItemStaging(_ItemColumns, db.Model):
    """Pages of a running refresh, written as they arrive and merged into list_item in one go at the end."""

    __tablename__ = "list_item_staging"
    __table_args__ = (
        Index("ix_list_item_staging_run", "run_key", "external_id"),
        Index("ix_list_item_staging_list", "integration_id", "kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_key: Mapped[str] = mapped_column(String(64))


_SEARCHED = ("name", "code", "vat_number", "siren")
_COPIES = {"search_text": item_search_text, "sort_name": item_sort_name}
keep_search_columns(ListItem, _SEARCHED, _COPIES)
keep_search_columns(ListItemStaging, _SEARCHED, _COPIES)


class SyncStatus(enum.StrEnum):
    NEVER = "never"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The company's daily budget at its software is spent: the refresh waits for the next day, its
    # job scheduled, the list as it was (last_error says when it resumes). Fits the column as is.
    DEFERRED = "deferred"


class ListSync(db.Model):
    """Per integration and list: when it was last loaded, how big it is, and the refresh under way."""

    __tablename__ = "list_sync"
    __table_args__ = (
        UniqueConstraint("integration_id", "kind", name="uq_list_sync_integration_kind"),
        # 'Mes dossiers': an integration's lists failed or loading, and its last load, from the index (0026).
        Index("ix_list_sync_integration_status", "integration_id", "status", "last_loaded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integration.id"))
    kind: Mapped[ListKind] = mapped_column(_kind_enum)
    status: Mapped[SyncStatus] = mapped_column(
        Enum(
            SyncStatus, name="sync_status", native_enum=False, values_callable=lambda e: [m.value for m in e]
        ),
        default=SyncStatus.NEVER,
    )
    job_run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("job_run.id"))
    item_count: Mapped[int] = mapped_column(default=0)
    active_count: Mapped[int] = mapped_column(default=0)
    last_loaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
