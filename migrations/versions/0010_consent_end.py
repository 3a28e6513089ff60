"""Consents that end: the date the software gives, and the one already announced

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 07:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('consent_announced_for', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('sandbox_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_ends_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('sandbox_grant', schema=None) as batch_op:
        batch_op.drop_column('consent_ends_at')

    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.drop_column('consent_announced_for')
        batch_op.drop_column('consent_expires_at')
