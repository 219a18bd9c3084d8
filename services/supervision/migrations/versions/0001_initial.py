"""Initial supervision schema: platform tables, projections of other services' events, postings,
complaints, community supervision and the beneficiary timeline.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.db import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("timeline_entry", "finding", "inspection", "board", "project", "public_filing",
          "complaint_history", "complaint_contact", "complaint", "posting_item", "posting",
          "commune_area", "household_area", "classification")


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    op.create_table('classification',
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('classification_id', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('village', sa.Text(), nullable=False),
    sa.Column('head_name', sa.Text(), nullable=False),
    sa.Column('category', sa.Text(), nullable=False),
    sa.Column('previous_category', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('review_round', sa.Text(), nullable=True),
    sa.Column('explanation', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('household_id', name=op.f('pk_classification'))
    )
    op.create_index(op.f('ix_classification_commune_code'), 'classification', ['commune_code'], unique=False)
    op.create_table('commune_area',
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('commune_code', name=op.f('pk_commune_area'))
    )
    op.create_table('household_area',
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('village', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('household_id', name=op.f('pk_household_area'))
    )
    op.create_table('posting',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('review_round', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('opens_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.Column('closed_by', sa.Text(), nullable=True),
    sa.Column('approved_by', sa.Text(), nullable=True),
    sa.Column('approved', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status in ('open', 'closed', 'approved')", name=op.f('ck_posting_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posting'))
    )
    op.create_index(op.f('ix_posting_commune_code'), 'posting', ['commune_code'], unique=False)
    op.create_table('project',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('budget_vnd', sa.BigInteger(), nullable=False),
    sa.Column('investor', sa.Text(), nullable=False),
    sa.Column('contractor', sa.Text(), nullable=True),
    sa.Column('planned_start', sa.Date(), nullable=False),
    sa.Column('planned_end', sa.Date(), nullable=False),
    sa.Column('status', sa.Text(), server_default='open', nullable=False),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project'))
    )
    op.create_index(op.f('ix_project_commune_code'), 'project', ['commune_code'], unique=False)
    op.create_table('public_filing',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('client_key', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_public_filing'))
    )
    op.create_index(op.f('ix_public_filing_client_key'), 'public_filing', ['client_key'], unique=False)
    op.create_table('timeline_entry',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('event_id', sa.Text(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('summary_vi', sa.Text(), nullable=False),
    sa.Column('summary_en', sa.Text(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('correlation_id', sa.Text(), nullable=True),
    sa.Column('causation_id', sa.Text(), nullable=True),
    sa.Column('trace_id', sa.Text(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timeline_entry')),
    sa.UniqueConstraint('event_id', 'household_id', name='uq_timeline_entry_event_household')
    )
    op.create_index(op.f('ix_timeline_entry_household_id'), 'timeline_entry', ['household_id'], unique=False)
    op.create_table('board',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('project_id', sa.Text(), nullable=True),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('members', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_board_project_id_project')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_board'))
    )
    op.create_index(op.f('ix_board_commune_code'), 'board', ['commune_code'], unique=False)
    op.create_table('complaint',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('posting_id', sa.Text(), nullable=True),
    sa.Column('household_id', sa.Text(), nullable=True),
    sa.Column('not_on_list', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('category', sa.Text(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('assignee', sa.Text(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('action', sa.Text(), nullable=True),
    sa.Column('hold_active', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('carried_over', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.CheckConstraint("status in ('received', 'open', 'in_progress', 'resolved', 'rejected', 'closed')", name=op.f('ck_complaint_status')),
    sa.ForeignKeyConstraint(['posting_id'], ['posting.id'], name=op.f('fk_complaint_posting_id_posting')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint'))
    )
    op.create_index(op.f('ix_complaint_commune_code'), 'complaint', ['commune_code'], unique=False)
    op.create_index(op.f('ix_complaint_household_id'), 'complaint', ['household_id'], unique=False)
    op.create_index(op.f('ix_complaint_posting_id'), 'complaint', ['posting_id'], unique=False)
    op.create_table('posting_item',
    sa.Column('posting_id', sa.Text(), nullable=False),
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('reference', sa.Text(), nullable=False),
    sa.Column('classification_id', sa.Text(), nullable=False),
    sa.Column('village', sa.Text(), nullable=False),
    sa.Column('head_name', sa.Text(), nullable=False),
    sa.Column('category', sa.Text(), nullable=False),
    sa.Column('previous_category', sa.Text(), nullable=True),
    sa.Column('indicators', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('deprivation_count', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['posting_id'], ['posting.id'], name=op.f('fk_posting_item_posting_id_posting')),
    sa.PrimaryKeyConstraint('posting_id', 'household_id', name=op.f('pk_posting_item'))
    )
    op.create_table('complaint_contact',
    sa.Column('complaint_id', sa.Text(), nullable=False),
    sa.Column('contact', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'], name=op.f('fk_complaint_contact_complaint_id_complaint')),
    sa.PrimaryKeyConstraint('complaint_id', name=op.f('pk_complaint_contact'))
    )
    op.create_table('complaint_history',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('complaint_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'], name=op.f('fk_complaint_history_complaint_id_complaint')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_history'))
    )
    op.create_index(op.f('ix_complaint_history_complaint_id'), 'complaint_history', ['complaint_id'], unique=False)
    op.create_table('inspection',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('project_id', sa.Text(), nullable=False),
    sa.Column('board_id', sa.Text(), nullable=False),
    sa.Column('inspected_on', sa.Date(), nullable=False),
    sa.Column('members_present', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('checklist', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['board_id'], ['board.id'], name=op.f('fk_inspection_board_id_board')),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_inspection_project_id_project')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection'))
    )
    op.create_index(op.f('ix_inspection_project_id'), 'inspection', ['project_id'], unique=False)
    op.create_table('finding',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('board_id', sa.Text(), nullable=False),
    sa.Column('project_id', sa.Text(), nullable=True),
    sa.Column('inspection_id', sa.Text(), nullable=True),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('severity', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('recommendation', sa.Text(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answer_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_by', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['board_id'], ['board.id'], name=op.f('fk_finding_board_id_board')),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspection.id'], name=op.f('fk_finding_inspection_id_inspection')),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_finding_project_id_project')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finding'))
    )
    op.create_index(op.f('ix_finding_commune_code'), 'finding', ['commune_code'], unique=False)


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
    drop_platform_tables(op.get_bind())
