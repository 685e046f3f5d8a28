"""Chat lines of consultations, in the order their room log gave them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chat_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('session', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('participant_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_chat_line_consultation_id_consultation')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_chat_line_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_line')),
    sa.UniqueConstraint('consultation_id', 'session', 'seq', name=op.f('uq_chat_line_consultation_id'))
    )
    with op.batch_alter_table('chat_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_line_consultation_id'), ['consultation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('chat_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_line_consultation_id'))

    op.drop_table('chat_line')
