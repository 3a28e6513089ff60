"""Each dossier's version: a token rewritten with every write its pages show, for their cached parts

The parts of a dossier's pages kept in the fragment cache (webapp.fragments) are found under the
version of the dossier they were made at. `dossier_summary.version` is rewritten, in the same
transaction, by every write of the dossier's integrations, lists, items, documents, rules and events
(webapp.services.summaries), so a page never finds a part made before the last change. The token is
random: a database made again from nothing never meets the parts of the one before.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05 02:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dossier_summary', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.String(length=32), nullable=False, server_default=''))
    # Every line starts with a token of its own: '' would be the same in every database.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE dossier_summary SET version = substr(md5(random()::text || dossier_id::text), 1, 16)")
    else:
        op.execute("UPDATE dossier_summary SET version = lower(hex(randomblob(8)))")


def downgrade():
    with op.batch_alter_table('dossier_summary', schema=None) as batch_op:
        batch_op.drop_column('version')
