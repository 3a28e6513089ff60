"""The invoices failed for an expiry are found by integration, status and reason together

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 21:50:00

"""
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    # Most documents have no failure reason: an index on the reason alone looked useless to SQLite's
    # planner, which then read every failed invoice of the integration to find the expired ones.
    op.drop_index('ix_document_integration_failure', table_name='document')
    op.create_index('ix_document_integration_failure', 'document', ['integration_id', 'status', 'failure_reason'])


def downgrade():
    op.drop_index('ix_document_integration_failure', table_name='document')
    op.create_index('ix_document_integration_failure', 'document', ['integration_id', 'failure_reason'])
