"""Consents waiting for the user's choice of company

One consent may cover several companies (Xero's organisations, Sage's businesses), or a company
already connected to another dossier: the tokens wait here, encrypted, until the user decides.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 08:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'pending_consent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('dossier_id', sa.Integer(), nullable=False),
        sa.Column('software', sa.String(length=40), nullable=False),
        sa.Column('purpose', sa.JSON(), nullable=False),
        sa.Column('token_ciphertext', sa.Text(), nullable=False),
        sa.Column('companies', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['dossier_id'], ['dossier.id'], name=op.f('fk_pending_consent_dossier_id_dossier'), ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user_account.id'], name=op.f('fk_pending_consent_user_id_user_account'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_consent')),
        sa.UniqueConstraint('key', name=op.f('uq_pending_consent_key')),
    )
    op.create_index(op.f('ix_pending_consent_dossier_id'), 'pending_consent', ['dossier_id'], unique=False)
    op.create_index(op.f('ix_pending_consent_user_id'), 'pending_consent', ['user_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_pending_consent_user_id'), table_name='pending_consent')
    op.drop_index(op.f('ix_pending_consent_dossier_id'), table_name='pending_consent')
    op.drop_table('pending_consent')
