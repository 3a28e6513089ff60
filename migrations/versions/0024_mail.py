"""E-mail: the outbox

'outgoing_mail' keeps every e-mail Raccord sends until it has left (queued, sent or failed, with its
attempts and the SMTP server's last answer); its context never holds a secret.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outgoing_mail',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('kind', sa.String(length=60), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('dossier_id', sa.Integer(), nullable=True),
        sa.Column('to_address', sa.String(length=320), nullable=False),
        sa.Column('locale', sa.String(length=5), nullable=False),
        sa.Column('template', sa.String(length=80), nullable=False),
        sa.Column('context', sa.JSON(), nullable=False),
        sa.Column(
            'status',
            sa.Enum('queued', 'sent', 'failed', name='mail_status', native_enum=False),
            nullable=False,
        ),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user_account.id'], name='fk_outgoing_mail_user_id_user_account', ondelete='SET NULL'
        ),
        sa.ForeignKeyConstraint(
            ['dossier_id'], ['dossier.id'], name='fk_outgoing_mail_dossier_id_dossier', ondelete='SET NULL'
        ),
        sa.PrimaryKeyConstraint('id', name='pk_outgoing_mail'),
    )
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.create_index('ix_outgoing_mail_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_outgoing_mail_user_id', ['user_id'], unique=False)
        batch_op.create_index('ix_outgoing_mail_dossier_id', ['dossier_id'], unique=False)


def downgrade():
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoing_mail_dossier_id')
        batch_op.drop_index('ix_outgoing_mail_user_id')
        batch_op.drop_index('ix_outgoing_mail_status_created')
    op.drop_table('outgoing_mail')
