"""The list search index holds every column a search tests, in page order

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 21:30:00

"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

COVERING = ['integration_id', 'kind', 'name', 'id', 'active', 'code', 'vat_number', 'siren']


def upgrade():
    # A search reads the list in name order and tests the name, code, VAT number and SIREN of each
    # item: with all of them in the index, only the 50 items shown are read from the table.
    op.drop_index('ix_list_item_search', table_name='list_item')
    op.create_index('ix_list_item_search', 'list_item', COVERING)


def downgrade():
    op.drop_index('ix_list_item_search', table_name='list_item')
    op.create_index('ix_list_item_search', 'list_item', ['integration_id', 'kind', 'name'])
