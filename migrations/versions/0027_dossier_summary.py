"""'Mes dossiers' reads one line per dossier, kept true by every write

Each dossier's figures on the dashboard (its shown integration, the lists in failure or loading, the
last successful load, the invoices in Échec and waiting) are copied into `dossier_summary`, rewritten
in the same transaction as any change of the dossier's integrations, lists or documents
(webapp.services.summaries). The lines of the dossiers already there are made here, in one
statement, by the same definition as services.portfolio.summary_select.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-09 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

_BACKFILL = """
INSERT INTO dossier_summary (
    dossier_id, organisation_id, sort_name, integration_id, software, company_name, integration_status, consent_expires_at,
    last_loaded_at, lists_failed, lists_running, invoices_failed, invoices_ready, invoices_to_review
)
SELECT
    d.id, d.organisation_id, d.sort_name, s.id, s.software, s.company_name, s.status, s.consent_expires_at,
    (SELECT max(l.last_loaded_at) FROM list_sync l WHERE l.integration_id = s.id),
    (SELECT count(*) FROM list_sync l WHERE l.integration_id = s.id AND l.status = 'failed'),
    (SELECT count(*) FROM list_sync l WHERE l.integration_id = s.id AND l.status = 'running'),
    (SELECT count(*) FROM document x WHERE x.integration_id = s.id AND x.status = 'failed'),
    (SELECT count(*) FROM document x WHERE x.integration_id = s.id AND x.status = 'ready'),
    (SELECT count(*) FROM document x WHERE x.integration_id = s.id AND x.status = 'to_review')
FROM (
    SELECT dossier.id, dossier.organisation_id, dossier.sort_name, COALESCE(
        (SELECT i.id FROM integration i WHERE i.dossier_id = dossier.id AND i.status <> 'disconnected'
         ORDER BY i.created_at DESC, i.id DESC LIMIT 1),
        (SELECT i.id FROM integration i WHERE i.dossier_id = dossier.id
         ORDER BY i.created_at DESC, i.id DESC LIMIT 1)
    ) AS shown_id
    FROM dossier
) d
LEFT OUTER JOIN integration s ON s.id = d.shown_id
"""


def upgrade():
    op.create_table(
        'dossier_summary',
        sa.Column('dossier_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('sort_name', sa.String(length=200), nullable=False),
        sa.Column('integration_id', sa.Integer(), nullable=True),
        sa.Column('software', sa.String(length=40), nullable=True),
        sa.Column('company_name', sa.String(length=200), nullable=True),
        sa.Column(
            'integration_status',
            sa.Enum('connected', 'expired', 'disconnected', name='integration_status', native_enum=False),
            nullable=True,
        ),
        sa.Column('consent_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_loaded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lists_failed', sa.Integer(), nullable=False),
        sa.Column('lists_running', sa.Integer(), nullable=False),
        sa.Column('invoices_failed', sa.Integer(), nullable=False),
        sa.Column('invoices_ready', sa.Integer(), nullable=False),
        sa.Column('invoices_to_review', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('dossier_id'),
    )
    with op.batch_alter_table('dossier_summary', schema=None) as batch_op:
        batch_op.create_index(
            'ix_dossier_summary_organisation',
            ['organisation_id', 'integration_status', 'consent_expires_at', 'invoices_failed'],
            unique=False,
        )
        batch_op.create_index(
            'ix_dossier_summary_failed_first',
            [
                'organisation_id',
                sa.text('invoices_failed DESC'),
                'sort_name',
                'dossier_id',
                'integration_status',
                'consent_expires_at',
                'lists_failed',
            ],
            unique=False,
        )
    op.execute(_BACKFILL)


def downgrade():
    with op.batch_alter_table('dossier_summary', schema=None) as batch_op:
        batch_op.drop_index('ix_dossier_summary_failed_first')
        batch_op.drop_index('ix_dossier_summary_organisation')
    op.drop_table('dossier_summary')
