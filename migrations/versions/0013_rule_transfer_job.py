"""A rule transfer remembers its job

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 11:15:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('rule_transfer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job_run_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_rule_transfer_job_run_id_job_run'), 'job_run', ['job_run_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('rule_transfer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_rule_transfer_job_run_id_job_run'), type_='foreignkey')
        batch_op.drop_column('job_run_id')
