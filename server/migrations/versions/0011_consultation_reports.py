"""Consultation reports: the specialist's signed report (会诊报告) on a referral, one row per signed version
(with its renditions in the other languages), and the ICD-10 code list its diagnosis is picked from.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'consultation_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('consultation_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('findings', sa.Text(), nullable=False),
        sa.Column('diagnosis_code', sa.String(length=16), nullable=False),
        sa.Column('diagnosis_text', sa.String(length=300), nullable=False),
        sa.Column('recommendations', sa.Text(), nullable=False),
        sa.Column('locale', sa.String(length=16), nullable=False),
        sa.Column('created_at', server.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('file', sa.String(length=200), nullable=False),
        sa.Column('pdf_sha256', sa.String(length=64), nullable=False),
        sa.Column('signer_subject', sa.String(length=300), nullable=False),
        sa.Column('acknowledged_by', sa.Integer(), nullable=True),
        sa.Column('acknowledged_at', server.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('supersedes_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['acknowledged_by'], ['user_account.id'],
                                name=op.f('fk_consultation_report_acknowledged_by_user_account')),
        sa.ForeignKeyConstraint(['author_id'], ['user_account.id'],
                                name=op.f('fk_consultation_report_author_id_user_account')),
        sa.ForeignKeyConstraint(['consultation_id'], ['consultation.id'],
                                name=op.f('fk_consultation_report_consultation_id_consultation')),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'],
                                name=op.f('fk_consultation_report_referral_id_referral')),
        sa.ForeignKeyConstraint(['supersedes_id'], ['consultation_report.id'],
                                name=op.f('fk_consultation_report_supersedes_id_consultation_report')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consultation_report')),
        sa.UniqueConstraint('referral_id', 'version', name=op.f('uq_consultation_report_referral_id')),
    )
    op.create_index(op.f('ix_consultation_report_referral_id'), 'consultation_report', ['referral_id'], unique=False)
    op.create_table(
        'consultation_report_rendition',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('report_id', sa.Integer(), nullable=False),
        sa.Column('locale', sa.String(length=16), nullable=False),
        sa.Column('file', sa.String(length=200), nullable=False),
        sa.Column('pdf_sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['report_id'], ['consultation_report.id'],
                                name=op.f('fk_consultation_report_rendition_report_id_consultation_report')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consultation_report_rendition')),
        sa.UniqueConstraint('report_id', 'locale', name=op.f('uq_consultation_report_rendition_report_id')),
    )
    op.create_index(op.f('ix_consultation_report_rendition_report_id'), 'consultation_report_rendition',
                    ['report_id'], unique=False)
    op.create_index(op.f('ix_consultation_report_rendition_pdf_sha256'), 'consultation_report_rendition',
                    ['pdf_sha256'], unique=False)
    op.create_table(
        'icd10_code',
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('title_en', sa.String(length=300), nullable=False),
        sa.Column('title_zh', sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_icd10_code')),
    )


def downgrade() -> None:
    op.drop_table('icd10_code')
    op.drop_index(op.f('ix_consultation_report_rendition_pdf_sha256'), table_name='consultation_report_rendition')
    op.drop_index(op.f('ix_consultation_report_rendition_report_id'), table_name='consultation_report_rendition')
    op.drop_table('consultation_report_rendition')
    op.drop_index(op.f('ix_consultation_report_referral_id'), table_name='consultation_report')
    op.drop_table('consultation_report')
