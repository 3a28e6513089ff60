"""'Mes dossiers' as the cabinet's dashboard: its name order and each dossier's integration read from indexes

The dashboard pages through a cabinet's dossiers in name order (sort_name, then id): with the first
index a page is read in order, without sorting thousands of dossiers. Each dossier's integration in
use (the newest not disconnected, else the newest) is read backwards along the second, status
included, without a sort or a table read per dossier; its lists failed or loading and its last load
come from the third alone. The invoices' counts use the document index already there
(integration_id, status, failure_reason).

Revision ID: 0026
Revises: 0023
Create Date: 2026-12-08 10:00:00

"""
from alembic import op


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.create_index('ix_dossier_organisation_sort', ['organisation_id', 'sort_name', 'id'], unique=False)
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.create_index(
            'ix_integration_dossier_created', ['dossier_id', 'created_at', 'id', 'status'], unique=False
        )
    with op.batch_alter_table('list_sync', schema=None) as batch_op:
        batch_op.create_index(
            'ix_list_sync_integration_status', ['integration_id', 'status', 'last_loaded_at'], unique=False
        )


def downgrade():
    with op.batch_alter_table('list_sync', schema=None) as batch_op:
        batch_op.drop_index('ix_list_sync_integration_status')
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.drop_index('ix_integration_dossier_created')
    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_organisation_sort')
