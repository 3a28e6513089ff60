"""E-mail: the outbox, notifications and each user's choices

'outgoing_mail' keeps every e-mail Raccord sends until it has left (queued, sent or failed, with its
attempts and the SMTP server's last answer); its context never holds a secret. 'notification' keeps
each event told to each person, once (unique per user and event), and the mail that told it.
'user_account' gets the « Notifications par e-mail » choices and the « résumé quotidien ».

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

    op.create_table(
        'notification',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('dossier_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('dedupe_key', sa.String(length=200), nullable=False),
        sa.Column('context', sa.JSON(), nullable=False),
        sa.Column('mail_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user_account.id'], name='fk_notification_user_id_user_account', ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(
            ['dossier_id'], ['dossier.id'], name='fk_notification_dossier_id_dossier', ondelete='SET NULL'
        ),
        sa.ForeignKeyConstraint(
            ['mail_id'], ['outgoing_mail.id'], name='fk_notification_mail_id_outgoing_mail', ondelete='SET NULL'
        ),
        sa.PrimaryKeyConstraint('id', name='pk_notification'),
        sa.UniqueConstraint('user_id', 'dedupe_key', name='uq_notification_user_id'),
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_waiting', ['mail_id', 'user_id'], unique=False)
        batch_op.create_index('ix_notification_dossier_id', ['dossier_id'], unique=False)

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notification_prefs', sa.JSON(), server_default='{}', nullable=False))
        batch_op.add_column(
            sa.Column('notification_digest', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('notification_digest')
        batch_op.drop_column('notification_prefs')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_dossier_id')
        batch_op.drop_index('ix_notification_waiting')
    op.drop_table('notification')
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoing_mail_dossier_id')
        batch_op.drop_index('ix_outgoing_mail_user_id')
        batch_op.drop_index('ix_outgoing_mail_status_created')
    op.drop_table('outgoing_mail')
