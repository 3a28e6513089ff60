"""'Documents' finds the invoices being published by a job in an index

Each visit of 'Documents' looks for the invoices left « En cours » by a publication whose worker died
(services.publishing.release_if_crashed): those of the integration, in progress, with a job. The job
is in the index, so the invoices in progress without one (waiting for the software's daily budget,
say) are never read from the table.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05 02:45:00

"""
from alembic import op


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_document_awaiting_job', 'document', ['integration_id', 'status', 'job_run_id'], unique=False
    )


def downgrade():
    op.drop_index('ix_document_awaiting_job', table_name='document')
