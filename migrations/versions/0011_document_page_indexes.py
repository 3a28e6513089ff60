"""Indexes for the 'Documents' page and the invoices to publish again after a reconnection

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 11:10:00

"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_document_integration_created', 'document', ['integration_id', 'created_at', 'id'])
    op.create_index('ix_document_integration_status', 'document', ['integration_id', 'status', 'created_at'])
    op.create_index('ix_document_integration_failure', 'document', ['integration_id', 'failure_reason'])


def downgrade():
    op.drop_index('ix_document_integration_failure', table_name='document')
    op.drop_index('ix_document_integration_status', table_name='document')
    op.drop_index('ix_document_integration_created', table_name='document')
