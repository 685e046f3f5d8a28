"""Patient fields, consent by purpose, invitations, attachments, planned ends, calendar feeds.

Patients get a phone and a national ID kept as a keyed hash and its last four; consent becomes a
record per purpose with versioned texts; patient invitations, referral attachments, a consultation's
planned end and each user's calendar-feed nonce are added.

Recording consents move from recording_consent into consent, keeping their ids (recordings name the
consents they relied on): a withdrawal row becomes the withdrawn_at of the consent it ended. They point
at version 0 of the recording text, the sentence of the room's checkbox they were given to.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:12:46.966835
"""

from __future__ import annotations

from datetime import UTC, datetime
import hashlib

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Enum('video', 'recording', 'record_sharing', name='consentpurpose', native_enum=False, length=24), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_template')),
    sa.UniqueConstraint('purpose', 'version', 'locale', name=op.f('uq_consent_template_purpose'))
    )
    op.create_table('patient_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_patient_invitation_consultation_id_consultation')),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_patient_invitation_created_by_user_account')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_patient_invitation_patient_id_patient')),
    sa.ForeignKeyConstraint(['revoked_by'], ['user_account.id'], name=op.f('fk_patient_invitation_revoked_by_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_invitation'))
    )
    with op.batch_alter_table('patient_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_invitation_consultation_id'), ['consultation_id'], unique=False)

    op.create_table('attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=False),
    sa.Column('file', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], name=op.f('fk_attachment_referral_id_referral')),
    sa.ForeignKeyConstraint(['uploaded_by'], ['user_account.id'], name=op.f('fk_attachment_uploaded_by_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachment'))
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_referral_id'), ['referral_id'], unique=False)

    op.create_table('consent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Enum('video', 'recording', 'record_sharing', name='consentpurpose', native_enum=False, length=24), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.Enum('patient', 'participant', name='consentsubject', native_enum=False, length=24), nullable=False),
    sa.Column('identity', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=True),
    sa.Column('referral_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.Enum('clicked', 'verbal', name='consentmethod', native_enum=False, length=24), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.Column('given_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_agent', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_consent_consultation_id_consultation')),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_consent_patient_id_patient')),
    sa.ForeignKeyConstraint(['recorded_by'], ['user_account.id'], name=op.f('fk_consent_recorded_by_user_account')),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], name=op.f('fk_consent_referral_id_referral')),
    sa.ForeignKeyConstraint(['template_id'], ['consent_template.id'], name=op.f('fk_consent_template_id_consent_template')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_consent_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent'))
    )
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_consultation_id'), ['consultation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_purpose'), ['purpose'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_referral_id'), ['referral_id'], unique=False)

    _move_recording_consents()
    with op.batch_alter_table('recording_consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_consent_consultation_id'))

    op.drop_table('recording_consent')
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planned_end', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('national_id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('national_id_last4', sqlmodel.sql.sqltypes.AutoString(length=4), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_patient_national_id_hash'), ['national_id_hash'], unique=False)

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_nonce', sqlmodel.sql.sqltypes.AutoString(length=32), server_default='', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('calendar_nonce')

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_national_id_hash'))
        batch_op.drop_column('national_id_last4')
        batch_op.drop_column('national_id_hash')
        batch_op.drop_column('phone')

    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.drop_column('planned_end')

    op.create_table('recording_consent',
    sa.Column('id', sa.INTEGER(), nullable=False),
    sa.Column('consultation_id', sa.INTEGER(), nullable=False),
    sa.Column('identity', sa.VARCHAR(length=80), nullable=False),
    sa.Column('user_id', sa.INTEGER(), nullable=True),
    sa.Column('name', sa.VARCHAR(length=100), nullable=False),
    sa.Column('given', sa.BOOLEAN(), nullable=False),
    sa.Column('at', sa.DATETIME(), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'], name=op.f('fk_recording_consent_consultation_id_consultation')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_recording_consent_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_consent'))
    )
    with op.batch_alter_table('recording_consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_consent_consultation_id'), ['consultation_id'], unique=False)

    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_referral_id'))
        batch_op.drop_index(batch_op.f('ix_consent_purpose'))
        batch_op.drop_index(batch_op.f('ix_consent_patient_id'))
        batch_op.drop_index(batch_op.f('ix_consent_consultation_id'))

    _move_recording_consents_back()
    op.drop_table('consent')
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_referral_id'))

    op.drop_table('attachment')
    with op.batch_alter_table('patient_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_invitation_consultation_id'))

    op.drop_table('patient_invitation')
    op.drop_table('consent_template')


# The sentence of the room's checkbox before versioned texts, in both languages.
CHECKBOX = {
    "en": ("Recording consent (the room's checkbox, before versioned texts)",
           "I agree to this consultation being recorded. I can withdraw at any time, which stops the recording."),
    "zh_CN": ("录像同意（版本化文本之前会诊室中的勾选框）", "我同意对本次会诊录像。我可以随时撤回同意，撤回后录像立即停止。"),
}

old_consent = sa.table(
    "recording_consent", sa.column("id", sa.Integer), sa.column("consultation_id", sa.Integer),
    sa.column("identity", sa.String), sa.column("user_id", sa.Integer), sa.column("name", sa.String),
    sa.column("given", sa.Boolean), sa.column("at", server.models.UTCDateTime()))
template = sa.table(
    "consent_template", sa.column("id", sa.Integer), sa.column("purpose", sa.String), sa.column("version", sa.Integer),
    sa.column("locale", sa.String), sa.column("title", sa.String), sa.column("body", sa.Text),
    sa.column("sha256", sa.String), sa.column("published_at", server.models.UTCDateTime()))
consent = sa.table(
    "consent", *(sa.column(name, sa.Integer) for name in ("id", "template_id", "user_id", "consultation_id")),
    *(sa.column(name, sa.String) for name in ("purpose", "subject", "identity", "name", "method", "ip",
                                                 "user_agent", "withdrawn_by")),
    sa.column("given_at", server.models.UTCDateTime()), sa.column("withdrawn_at", server.models.UTCDateTime()))


def _move_recording_consents() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(old_consent).order_by(old_consent.c.id)).all()
    if not rows:
        return
    now = datetime.now(UTC)
    for locale, (title, body) in CHECKBOX.items():
        bind.execute(template.insert().values(
            purpose="recording", version=0, locale=locale, title=title, body=body, published_at=now,
            sha256=hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()))
    template_id = bind.execute(sa.select(template.c.id).where(template.c.locale == "en")).scalar_one()
    standing: dict[tuple[int, str], dict] = {}
    moved: list[dict] = []
    for row in rows:
        key = (row.consultation_id, row.identity)
        if row.given:
            standing[key] = {
                "id": row.id, "template_id": template_id, "user_id": row.user_id,
                "consultation_id": row.consultation_id, "purpose": "recording",
                "subject": "participant" if row.user_id is not None else "patient", "identity": row.identity,
                "name": row.name, "method": "clicked", "ip": "", "user_agent": "", "withdrawn_by": "",
                "given_at": row.at, "withdrawn_at": None}
            moved.append(standing[key])
        elif key in standing:
            ended = standing.pop(key)
            ended["withdrawn_at"], ended["withdrawn_by"] = row.at, row.identity
    bind.execute(consent.insert(), moved)
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT setval(pg_get_serial_sequence('consent', 'id'), (SELECT max(id) FROM consent))"))


def _move_recording_consents_back() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(consent).where(consent.c.purpose == "recording").order_by(consent.c.id)).all()
    back = []
    for row in rows:
        back.append({"consultation_id": row.consultation_id, "identity": row.identity, "user_id": row.user_id,
                     "name": row.name, "given": True, "at": row.given_at})
        if row.withdrawn_at is not None:
            back.append({"consultation_id": row.consultation_id, "identity": row.identity, "user_id": row.user_id,
                         "name": row.name, "given": False, "at": row.withdrawn_at})
    if back:
        bind.execute(sa.table("recording_consent", *(sa.column(k) for k in back[0])).insert(), back)
