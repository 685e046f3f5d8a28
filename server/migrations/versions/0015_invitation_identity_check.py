"""Invitations count wrong answers to the patient's identity check, and lock when there are too many.

Existing invitations start at no failures and unlocked (``server_default``), so nobody's link stops working
with the upgrade; the check itself applies to them from then on.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('patient_invitation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_identity_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('patient_invitation', schema=None) as batch_op:
        batch_op.drop_column('locked_at')
        batch_op.drop_column('failed_identity_attempts')
