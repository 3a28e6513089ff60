"""Changes pushed by the accounting software (webhooks), and hourly refreshes for the others

'webhook_delivery' keeps each delivery Xero or QuickBooks sent (its body's SHA-256, never the body);
each integration gets its 'Actualisation automatique des listes' (nightly, or also every hour).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 19:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('vendor', sa.String(length=40), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('body_sha256', sa.String(length=64), nullable=False),
        sa.Column('company_ids', sa.JSON(), nullable=False),
        sa.Column('integration_ids', sa.JSON(), nullable=False),
        sa.Column('lists', sa.JSON(), nullable=False),
        sa.Column('detail', sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_digest', ['body_sha256', 'received_at'], unique=False)
        batch_op.create_index('ix_webhook_delivery_vendor_received', ['vendor', 'received_at'], unique=False)
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('refresh_frequency', sa.String(length=10), server_default='nightly', nullable=False)
        )
        batch_op.add_column(sa.Column('last_webhook_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('integration', schema=None) as batch_op:
        batch_op.drop_column('last_webhook_at')
        batch_op.drop_column('refresh_frequency')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_delivery_vendor_received')
        batch_op.drop_index('ix_webhook_delivery_digest')
    op.drop_table('webhook_delivery')
