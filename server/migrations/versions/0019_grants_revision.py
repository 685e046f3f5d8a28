"""Each account counts the changes to what it lets its clinician do in a consultation's room (``grants_revision``),
so that a room told of two changes out of order keeps the later one.

Accounts made before start at 0: the rooms running during the upgrade hold no revision, and take the next
change whatever its count.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('user_account', sa.Column('grants_revision', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('grants_revision')
