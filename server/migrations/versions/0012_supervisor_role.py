"""Supervisors: the partnerships each supervisor account (a regional health commission's) oversees.

The role itself needs no change to the schema: roles are stored as a VARCHAR(24) with no CHECK constraint
(``native_enum=False`` without ``create_constraint``), so "supervisor" fits on SQLite and PostgreSQL alike.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('partnership_supervisor',
    sa.Column('partnership_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['partnership_id'], ['partnership.id'],
                            name=op.f('fk_partnership_supervisor_partnership_id_partnership')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'],
                            name=op.f('fk_partnership_supervisor_user_id_user_account')),
    sa.PrimaryKeyConstraint('partnership_id', 'user_id', name=op.f('pk_partnership_supervisor'))
    )
    with op.batch_alter_table('partnership_supervisor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partnership_supervisor_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('partnership_supervisor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partnership_supervisor_user_id'))
    op.drop_table('partnership_supervisor')
