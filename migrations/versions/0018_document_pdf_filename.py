"""The name a document's PDF is sent and served under, cleaned once when stored

The user's file name stays in pdf_name, for display. Documents stored before get theirs here,
cleaned the same way (webapp.services.documents.attachment_name, as it was on this day).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 18:00:00

"""
import re
import unicodedata

import sqlalchemy as sa
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def _attachment_name(name):
    base = re.split(r"[/\\]", unicodedata.normalize("NFKD", name or ""))[-1]
    base = "".join(char for char in base if not unicodedata.combining(char))
    stem = base[:-4] if base.lower().endswith(".pdf") else base
    stem = re.sub(r"\s+", " ", re.sub(r"[^A-Za-z0-9 ()_,.-]+", "_", stem)).strip(" ._-")[:100].strip(" ._-")
    return f"{stem or 'facture'}.pdf"


def upgrade():
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pdf_filename', sa.String(length=120), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, pdf_name FROM document WHERE pdf_name IS NOT NULL")).all()
    for row in rows:
        bind.execute(
            sa.text("UPDATE document SET pdf_filename = :name WHERE id = :id"),
            {"name": _attachment_name(row.pdf_name), "id": row.id},
        )


def downgrade():
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_column('pdf_filename')
