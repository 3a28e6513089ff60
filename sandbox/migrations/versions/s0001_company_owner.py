"""Sandbox: each company belongs to one organisation (the key Raccord gives it)

The sandbox's own branch of migrations starts here. Its first tables were made by Raccord's
migrations 0001 to 0008, from before the sandbox had a package of its own; they stay as they are.

Revision ID: s0001
Revises:
Create Date: 2026-12-02 13:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None
branch_labels = ("sandbox",)
depends_on = "0002"  # where the sandbox_company table was made


def upgrade():
    with op.batch_alter_table("sandbox_company", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_sandbox_company_owner"), ["owner"], unique=False)


def downgrade():
    with op.batch_alter_table("sandbox_company", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_company_owner"))
        batch_op.drop_column("owner")
