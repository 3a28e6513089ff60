"""Each dossier's publications running on its line: 'Documents' looks for interrupted ones only when there are some

Every visit of 'Documents' looked for invoices 'En cours' whose publication job died. Most often there
is none: the count of invoices 'En cours' with a publication job, kept on the dossier's line (read
with the dossier), now says so, and the look is made only when it is not zero. Filled here from the documents, then kept by the same hooks as the
other counts (webapp.services.summaries).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05 23:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


_BACKFILL = (
    "UPDATE dossier_summary SET publications_running = (SELECT count(*) FROM document x "
    "WHERE x.integration_id = dossier_summary.integration_id AND x.status = 'in_progress' "
    "AND x.job_run_id IS NOT NULL) "
    "WHERE integration_id IS NOT NULL"
)


def upgrade():
    with op.batch_alter_table('dossier_summary', schema=None) as batch_op:
        batch_op.add_column(sa.Column('publications_running', sa.Integer(), nullable=False, server_default='0'))
    op.execute(_BACKFILL)


def downgrade():
    with op.batch_alter_table('dossier_summary', schema=None) as batch_op:
        batch_op.drop_column('publications_running')
