"""Roles inside a cabinet, dossiers a member is restricted to, invitations

The earliest active user of each cabinet becomes its admin (« Équipe »); everyone keeps every
dossier they saw, since nobody is restricted until an admin says so.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

_users = sa.table(
    'user_account',
    sa.column('id', sa.Integer()),
    sa.column('organisation_id', sa.Integer()),
    sa.column('role', sa.String()),
    sa.column('is_active_account', sa.Boolean()),
    sa.column('created_at', sa.DateTime(timezone=True)),
)


def upgrade():
    # 'admin' fits the non-native enum's VARCHAR(6) ('member'): no change of type is needed.
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('dossiers_restricted', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        'dossier_access',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('dossier_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_dossier_access_dossier_id_dossier'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_dossier_access_user_id_user_account'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'dossier_id', name=op.f('pk_dossier_access')),
    )
    with op.batch_alter_table('dossier_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dossier_access_dossier_id'), ['dossier_id'], unique=False)
    op.create_table(
        'invitation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('role', sa.Enum('member', 'admin', 'staff', name='invitation_role', native_enum=False), nullable=False),
        sa.Column('dossier_ids', sa.JSON(), nullable=True),
        sa.Column('invited_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['invited_by_id'], ['user_account.id'], name=op.f('fk_invitation_invited_by_id_user_account'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_invitation_organisation_id_organisation'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_invitation_user_id_user_account'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_invitation')),
    )
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitation_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitation_organisation_id'), ['organisation_id'], unique=False)

    # Each cabinet's earliest active user runs its team from now on.
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_users.c.id, _users.c.organisation_id)
        .where(_users.c.role == 'member', _users.c.is_active_account.is_(sa.true()))
        .order_by(_users.c.organisation_id, _users.c.created_at, _users.c.id)
    ).all()
    first: dict[int, int] = {}
    for user_id, organisation_id in rows:
        first.setdefault(organisation_id, user_id)
    if first:
        conn.execute(sa.update(_users).where(_users.c.id.in_(list(first.values()))).values(role='admin'))


def downgrade():
    op.execute(sa.update(_users).where(_users.c.role == 'admin').values(role='member'))
    with op.batch_alter_table('invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitation_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_invitation_email'))
    op.drop_table('invitation')
    with op.batch_alter_table('dossier_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dossier_access_dossier_id'))
    op.drop_table('dossier_access')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('dossiers_restricted')
