"""Sandbox: only a hash of each issued token is kept

The tokens already issued are hashed in place, so connections made before keep working.

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-02 17:00:00

"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def _hash(value):
    return hashlib.sha256(value.encode()).hexdigest() if value else None


def upgrade():
    with op.batch_alter_table("sandbox_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("refresh_token_hash", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, access_token, refresh_token FROM sandbox_token")).all()
    for row in rows:
        bind.execute(
            sa.text(
                "UPDATE sandbox_token SET access_token_hash = :a, refresh_token_hash = :r WHERE id = :id"
            ),
            {"a": _hash(row.access_token), "r": _hash(row.refresh_token), "id": row.id},
        )
    with op.batch_alter_table("sandbox_token", schema=None) as batch_op:
        batch_op.drop_constraint("uq_sandbox_token_access_token", type_="unique")
        batch_op.drop_constraint("uq_sandbox_token_refresh_token", type_="unique")
        batch_op.drop_column("access_token")
        batch_op.drop_column("refresh_token")
        batch_op.alter_column("access_token_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_sandbox_token_access_token_hash"), ["access_token_hash"]
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_sandbox_token_refresh_token_hash"), ["refresh_token_hash"]
        )


def downgrade():
    # The tokens themselves are gone: the grants they belonged to end, as after a revocation.
    op.execute("DELETE FROM sandbox_token")
    with op.batch_alter_table("sandbox_token", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_sandbox_token_refresh_token_hash"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_sandbox_token_access_token_hash"), type_="unique")
        batch_op.drop_column("refresh_token_hash")
        batch_op.drop_column("access_token_hash")
        batch_op.add_column(sa.Column("access_token", sa.String(length=120), nullable=False))
        batch_op.add_column(sa.Column("refresh_token", sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint("uq_sandbox_token_access_token", ["access_token"])
        batch_op.create_unique_constraint("uq_sandbox_token_refresh_token", ["refresh_token"])
