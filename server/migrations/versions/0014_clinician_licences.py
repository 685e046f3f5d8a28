"""Clinicians' licences: each account's practising licence number (医师执业证书编码) and professional title, and
who verified them and when.

Accounts that exist at the upgrade start with no licence and unverified: a regulator relies on an
administrator having checked each clinician, so nobody is verified by a migration. Until an administrator
enters and verifies a clinician's licence (the console, or ``telemed user licence``), that clinician cannot
host a consultation, be booked or sign a report.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: on SQLite a batch copies user_account, and dropping the old copy fails
    # while other tables' rows refer to it (foreign keys are on, and cannot be turned off inside the
    # migration's transaction). The reference is written inline, which SQLite's ADD COLUMN accepts.
    op.add_column('user_account', sa.Column('licence_number', sa.String(length=32), nullable=False,
                                            server_default=''))
    op.add_column('user_account', sa.Column('professional_title',
                                            sa.Enum('none', 'resident', 'attending', 'associate_chief', 'chief',
                                                    name='professionaltitle', native_enum=False, length=24),
                                            nullable=False, server_default='none'))
    op.add_column('user_account', sa.Column('licence_verified_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('user_account', sa.Column(
        'licence_verified_by', sa.Integer(),
        sa.ForeignKey('user_account.id', name=op.f('fk_user_account_licence_verified_by_user_account')),
        nullable=True), inline_references=True)


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_user_account_licence_verified_by_user_account'), type_='foreignkey')
        batch_op.drop_column('licence_verified_by')
        batch_op.drop_column('licence_verified_at')
        batch_op.drop_column('professional_title')
        batch_op.drop_column('licence_number')
