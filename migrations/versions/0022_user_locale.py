"""The interface's language of each user

'Langue de l'interface' on the profile page: French (everyone, as before) or English.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=5), server_default='fr', nullable=False))


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('locale')
