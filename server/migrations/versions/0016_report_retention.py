"""Signed reports under retention: each version's PDFs sealed under a data key of their own (deleted when the
purge takes them, as for recordings and attachments), a purge mark, and an index on the PDFs' hash (verifying a
file looks the hash up).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (the reference inline), not batch mode: on SQLite a batch copies the table, and dropping
    # the old copy fails while renditions and amendments refer to its rows (see 0014).
    op.add_column('consultation_report', sa.Column(
        'data_key_id', sa.Integer(),
        sa.ForeignKey('data_key.id', name=op.f('fk_consultation_report_data_key_id_data_key')),
        nullable=True), inline_references=True)
    op.add_column('consultation_report', sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_consultation_report_pdf_sha256'), 'consultation_report', ['pdf_sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consultation_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consultation_report_pdf_sha256'))
        batch_op.drop_constraint(batch_op.f('fk_consultation_report_data_key_id_data_key'), type_='foreignkey')
        batch_op.drop_column('purged_at')
        batch_op.drop_column('data_key_id')
