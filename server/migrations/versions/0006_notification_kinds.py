"""Notifications keep their kind and facts, so each reader sees them in their language and time zone.

Rows from before keep ``kind`` empty and are shown by their stored English text.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('params', sqlmodel.sql.sqltypes.AutoString(length=2000), server_default='{}',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('params')
        batch_op.drop_column('kind')
