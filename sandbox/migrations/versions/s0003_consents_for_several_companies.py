"""Sandbox: one consent for several companies, Xero's connections, the rotated refresh token's grace

A consent (authorisation code, grant) may cover several companies, as Xero's and Sage's do, and
carries its identifier (Xero's authentication_event_id). Xero's connections are one per app and
organisation. A refresh token replaced by a refresh keeps the moment it was replaced.

Revision ID: s0003
Revises: s0002
Create Date: 2026-12-03 08:30:00

"""

import uuid

import sqlalchemy as sa
from alembic import op

from sandbox.columns import UTCDateTime

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("sandbox_auth_code", "sandbox_grant"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("company_ids", sa.JSON(), nullable=True))
            batch_op.add_column(sa.Column("auth_event_id", sa.String(length=36), nullable=True))
    with op.batch_alter_table("sandbox_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rotated_at", sa.Double(), nullable=True))
    op.create_table(
        "sandbox_connection",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=80), nullable=False),
        sa.Column("company_id", sa.String(length=40), nullable=False),
        sa.Column("auth_event_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["sandbox_company.id"],
            name=op.f("fk_sandbox_connection_company_id_sandbox_company"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_connection")),
        sa.UniqueConstraint("client_id", "company_id", name=op.f("uq_sandbox_connection_client_id")),
    )
    op.create_index(op.f("ix_sandbox_connection_company_id"), "sandbox_connection", ["company_id"])
    # The grants made before: each stays the connection it was (only Xero's clients read them).
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT g.id, g.client_id, g.company_id, g.created_at FROM sandbox_grant g "
            "WHERE g.revoked_at IS NULL ORDER BY g.id"
        )
    ).all()
    seen = set()
    for row in rows:
        if (row.client_id, row.company_id) in seen:
            continue
        seen.add((row.client_id, row.company_id))
        bind.execute(
            sa.text(
                "INSERT INTO sandbox_connection (id, client_id, company_id, auth_event_id, created_at, "
                "updated_at) VALUES (:id, :client, :company, :event, :at, :at)"
            ),
            {
                "id": str(uuid.uuid4()),
                "client": row.client_id,
                "company": row.company_id,
                "event": str(uuid.uuid5(uuid.NAMESPACE_OID, f"xero-auth-event-{row.id}")),
                "at": row.created_at,
            },
        )


def downgrade():
    op.drop_index(op.f("ix_sandbox_connection_company_id"), table_name="sandbox_connection")
    op.drop_table("sandbox_connection")
    with op.batch_alter_table("sandbox_token", schema=None) as batch_op:
        batch_op.drop_column("rotated_at")
    for table in ("sandbox_grant", "sandbox_auth_code"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("auth_event_id")
            batch_op.drop_column("company_ids")
