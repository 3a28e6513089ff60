"""Sandbox GUIDs for vendor dialects

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 00:55:41.522217

"""

import uuid

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("sandbox_invoice", "sandbox_item")


def upgrade():
    connection = op.get_bind()
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("guid", sa.String(length=36), nullable=True))
        ids = [row[0] for row in connection.execute(sa.text(f"SELECT id FROM {table}"))]  # noqa: S608
        for start in range(0, len(ids), 5000):
            connection.execute(
                sa.text(f"UPDATE {table} SET guid = :guid WHERE id = :id"),  # noqa: S608
                [{"guid": str(uuid.uuid4()), "id": i} for i in ids[start : start + 5000]],
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("guid", existing_type=sa.String(length=36), nullable=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_guid"), ["guid"], unique=False)


def downgrade():
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_guid"))
            batch_op.drop_column("guid")
