"""The consultation request (会诊申请单) on a referral: the question, the working diagnosis (with an optional
ICD-10 code), relevant history and results, and the professional title wanted.

Every column has a server default, so referrals from before it stay valid: empty text and any title.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

TEXT_COLUMNS = ('question', 'history', 'results')


def upgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        for name in TEXT_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('working_diagnosis', sqlmodel.sql.sqltypes.AutoString(length=500),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('diagnosis_code', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('title_wanted', sa.Enum('any', 'attending', 'associate_chief', 'chief',
                                                              name='titlewanted', native_enum=False, length=24),
                                      server_default='any', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        for name in ('title_wanted', 'diagnosis_code', 'working_diagnosis', *reversed(TEXT_COLUMNS)):
            batch_op.drop_column(name)
