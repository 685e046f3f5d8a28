"""Each recording names the node run that writes it, so that when that node is lost another one finishes the
recordings it left (server/consultations/recovery.py).

Recordings made before have no node (NULL): finished or not, only a node's start-up recovery takes them, as
before.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: nothing refers to a recording, but no table copy is needed either.
    op.add_column('recording', sa.Column('node', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('recording', schema=None) as batch_op:
        batch_op.drop_column('node')
