"""Documents follow a change of software; payment rules and defaults are transferred

'Transférer les règles' carries the documents waiting to be published to the new software
(where they came from, and the fields it could not place), and writes the payment-method rules and
the 'Codage par défaut' anew, each naming the one it was made from.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moved_from_integration_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('transfer_notes', sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_document_moved_from_integration_id_integration'),
            'integration', ['moved_from_integration_id'], ['id'],
        )
    with op.batch_alter_table('payment_rule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transferred_from_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_payment_rule_transferred_from_id'), ['transferred_from_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_payment_rule_transferred_from_id_payment_rule'),
            'payment_rule', ['transferred_from_id'], ['id'], ondelete='SET NULL',
        )
    with op.batch_alter_table('coding_default', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transferred_from_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_coding_default_transferred_from_id'), ['transferred_from_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_coding_default_transferred_from_id_coding_default'),
            'coding_default', ['transferred_from_id'], ['id'], ondelete='SET NULL',
        )


def downgrade():
    with op.batch_alter_table('coding_default', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_coding_default_transferred_from_id_coding_default'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_coding_default_transferred_from_id'))
        batch_op.drop_column('transferred_from_id')
    with op.batch_alter_table('payment_rule', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_payment_rule_transferred_from_id_payment_rule'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_payment_rule_transferred_from_id'))
        batch_op.drop_column('transferred_from_id')
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_document_moved_from_integration_id_integration'), type_='foreignkey')
        batch_op.drop_column('transfer_notes')
        batch_op.drop_column('moved_from_integration_id')
