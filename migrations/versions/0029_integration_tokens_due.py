"""The hourly token pass finds the integrations due for a renewal in an index

`keep_tokens_alive` asks every hour for the connected integrations whose tokens were not renewed for
a day (or never, created a day ago): (status, tokens_refreshed_at, created_at) answers both branches
of its condition from the index, so an hour with nothing due reads nothing, however many dossiers.

Revision ID: 0029
Revises: 0027
Create Date: 2026-12-05 02:00:00

"""
from alembic import op


revision = '0029'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_integration_tokens_due', 'integration', ['status', 'tokens_refreshed_at', 'created_at'], unique=False
    )


def downgrade():
    op.drop_index('ix_integration_tokens_due', table_name='integration')
