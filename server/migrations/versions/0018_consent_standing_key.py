"""One standing record per consent: each consent record carries, while it stands, what makes it that consent
(purpose, person, scope: server/consent/rules.py ``standing_key``), under a unique index. Two gives of the same
consent at once (the patient's click and their doctor's button) could each write one.

Records standing when this runs get their key. Where the same consent stands twice, the newest stays (it is the
one ``standing`` reads) and the older ones are ended as a newer text's give ends them: at the newer one's time,
by the person's own identity, without an audit entry of withdrawal (the consent goes on).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def _key(purpose: str, identity: str, referral_id: int | None, consultation_id: int | None) -> str:
    # As server/consent/rules.py standing_key (a migration keeps its own copy: the code may change after it).
    where = f"referral:{referral_id}" if referral_id is not None else f"consultation:{consultation_id}"
    return f"{purpose}|{identity}|{where}"


def upgrade() -> None:
    op.add_column('consent', sa.Column('standing_key', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True))
    bind = op.get_bind()
    standing = bind.execute(sa.text(
        "SELECT id, purpose, identity, referral_id, consultation_id, given_at FROM consent "
        "WHERE withdrawn_at IS NULL ORDER BY id DESC")).all()
    kept: dict[str, object] = {}  # key -> the newest record's given_at
    for row in standing:
        key = _key(row.purpose, row.identity, row.referral_id, row.consultation_id)
        if key not in kept:
            kept[key] = row.given_at
            bind.execute(sa.text("UPDATE consent SET standing_key = :key WHERE id = :id"), {"key": key, "id": row.id})
        else:
            bind.execute(sa.text("UPDATE consent SET withdrawn_at = :at, withdrawn_by = identity WHERE id = :id"),
                         {"at": kept[key], "id": row.id})
    op.create_index(op.f('ix_consent_standing_key'), 'consent', ['standing_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_standing_key'))
        batch_op.drop_column('standing_key')
