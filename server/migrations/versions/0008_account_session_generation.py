"""Accounts count their session generations: disabling an account or resetting its password ends every
session it had, for good (re-enabling it does not bring them back).

Tokens carry the generation they were issued in; tokens from before this revision carry none and count as
generation 0, which every existing account is at, so nobody is logged out by the upgrade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
