"""'Mes dossiers' as the cabinet's dashboard: its name order read from an index

The dashboard pages through a cabinet's dossiers in name order (sort_name, then id): with this index
a page is read in order, without sorting thousands of dossiers. The figures of each row use the
indexes already there (integration.dossier_id, list_sync (integration_id, kind), document
(integration_id, status, created_at)).

Revision ID: 0026
Revises: 0023
Create Date: 2026-12-08 10:00:00

"""
from alembic import op


revision = '0026'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.create_index('ix_dossier_organisation_sort', ['organisation_id', 'sort_name', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_organisation_sort')
