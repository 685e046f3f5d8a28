"""Retention: per-file data keys (crypto-shredding), legal holds, and the lease that lets one node at a time
run the purge.

Files written before this revision have no data key: they stay sealed under the deployment's recording key
and readable as before; the purge deletes them like any other, but a backup of one stays readable to whoever
holds that key.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

FILES = ('recording', 'attachment')


def upgrade() -> None:
    op.create_table('data_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wrapped', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_key'))
    )
    op.create_table('legal_hold',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('consultation_id', sa.Integer(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('placed_by', sa.Integer(), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_by', sa.Integer(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.CheckConstraint('(patient_id IS NULL) <> (consultation_id IS NULL)', name=op.f('ck_legal_hold_one_subject')),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'],
                            name=op.f('fk_legal_hold_consultation_id_consultation')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_legal_hold_patient_id_patient')),
    sa.ForeignKeyConstraint(['placed_by'], ['user_account.id'], name=op.f('fk_legal_hold_placed_by_user_account')),
    sa.ForeignKeyConstraint(['released_by'], ['user_account.id'],
                            name=op.f('fk_legal_hold_released_by_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_hold'))
    )
    with op.batch_alter_table('legal_hold', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_hold_consultation_id'), ['consultation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_legal_hold_patient_id'), ['patient_id'], unique=False)
    op.create_table('job_lease',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_lease'))
    )
    for table in FILES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('data_key_id', sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
            batch_op.create_foreign_key(batch_op.f(f'fk_{table}_data_key_id_data_key'), 'data_key',
                                        ['data_key_id'], ['id'])


def downgrade() -> None:
    for table in FILES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'fk_{table}_data_key_id_data_key'), type_='foreignkey')
            batch_op.drop_column('purged_at')
            batch_op.drop_column('data_key_id')
    op.drop_table('job_lease')
    with op.batch_alter_table('legal_hold', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_hold_patient_id'))
        batch_op.drop_index(batch_op.f('ix_legal_hold_consultation_id'))
    op.drop_table('legal_hold')
    op.drop_table('data_key')
