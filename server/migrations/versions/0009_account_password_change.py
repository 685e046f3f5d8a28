"""Accounts remember that their password is temporary: one an administrator set when creating the account or
resetting its password. Until its user sets their own, every page leads to the change-password page and the
API answers 403 ``password-change-required``.

Existing accounts start without the flag, so nobody is stopped by the upgrade.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                      server_default='0'))  # a string: SQLite adds the column in place


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('must_change_password')
