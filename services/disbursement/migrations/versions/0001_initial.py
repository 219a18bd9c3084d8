"""Initial disbursement schema: platform tables and the disbursement tables.

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


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    op.create_table('budget',
    sa.Column('programme_code', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('total_vnd', sa.BigInteger(), nullable=False),
    sa.Column('committed_vnd', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('source', sa.Text(), server_default='default', nullable=False),
    sa.Column('updated_by', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('committed_vnd >= 0 and committed_vnd <= total_vnd', name=op.f('ck_budget_within_total')),
    sa.PrimaryKeyConstraint('programme_code', 'commune_code', name=op.f('pk_budget'))
    )
    op.create_table('commune_area',
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('commune_code', name=op.f('pk_commune_area'))
    )
    op.create_table('hold',
    sa.Column('complaint_id', sa.Text(), nullable=False),
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('complaint_id', 'household_id', name=op.f('pk_hold'))
    )
    op.create_table('household',
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=True),
    sa.Column('village', sa.Text(), nullable=True),
    sa.Column('head_name', sa.Text(), nullable=True),
    sa.Column('category', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=True),
    sa.Column('programs', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('household_id', name=op.f('pk_household'))
    )
    op.create_table('savings_group',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('village', sa.Text(), nullable=False),
    sa.Column('organisation', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('leader_name', sa.Text(), nullable=True),
    sa.Column('member_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('member_count between 0 and 60', name=op.f('ck_savings_group_member_count')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_savings_group'))
    )
    op.create_table('application',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('programme_code', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('amount_vnd', sa.BigInteger(), nullable=False),
    sa.Column('term_months', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('group_id', sa.Text(), nullable=True),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('village', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['savings_group.id'], name=op.f('fk_application_group_id_savings_group')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_application'))
    )
    op.create_table('group_member',
    sa.Column('group_id', sa.Text(), nullable=False),
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('added_by', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['savings_group.id'], name=op.f('fk_group_member_group_id_savings_group')),
    sa.PrimaryKeyConstraint('group_id', 'household_id', name=op.f('pk_group_member')),
    sa.UniqueConstraint('household_id', name=op.f('uq_group_member_household_id'))
    )
    op.create_table('application_status',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('application_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['application.id'], name=op.f('fk_application_status_application_id_application')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_application_status'))
    )
    op.create_table('instruction',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('application_id', sa.Text(), nullable=False),
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('programme_code', sa.Text(), nullable=False),
    sa.Column('partner', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('beneficiary_reference', sa.Text(), nullable=False),
    sa.Column('payee_name', sa.Text(), nullable=False),
    sa.Column('transaction_point', sa.Text(), nullable=False),
    sa.Column('amount_vnd', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.Text(), server_default='VND', nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('term_months', sa.Integer(), nullable=True),
    sa.Column('annual_rate_pct', sa.Float(), nullable=True),
    sa.Column('scheduled_date', sa.Date(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('bank_reference', sa.Text(), nullable=True),
    sa.Column('settled_amount_vnd', sa.BigInteger(), nullable=True),
    sa.Column('settled_messages', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['application.id'], name=op.f('fk_instruction_application_id_application')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instruction')),
    sa.UniqueConstraint('application_id', name=op.f('uq_instruction_application_id'))
    )
    op.create_table('bank_message',
    sa.Column('event_id', sa.Text(), nullable=False),
    sa.Column('instruction_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('verdict', sa.Text(), nullable=False),
    sa.Column('amount_vnd', sa.BigInteger(), nullable=True),
    sa.Column('bank_reference', sa.Text(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['instruction_id'], ['instruction.id'], name=op.f('fk_bank_message_instruction_id_instruction')),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_bank_message'))
    )
    op.create_table('instruction_status',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('instruction_id', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('previous_status', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('bank_reference', sa.Text(), nullable=True),
    sa.Column('amount_vnd', sa.BigInteger(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('event_id', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['instruction_id'], ['instruction.id'], name=op.f('fk_instruction_status_instruction_id_instruction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instruction_status'))
    )
    op.create_table('loan',
    sa.Column('instruction_id', sa.Text(), nullable=False),
    sa.Column('application_id', sa.Text(), nullable=False),
    sa.Column('household_id', sa.Text(), nullable=False),
    sa.Column('programme_code', sa.Text(), nullable=False),
    sa.Column('commune_code', sa.Text(), nullable=False),
    sa.Column('province_code', sa.Text(), nullable=True),
    sa.Column('principal_vnd', sa.BigInteger(), nullable=False),
    sa.Column('annual_rate_pct', sa.Float(), nullable=False),
    sa.Column('term_months', sa.Integer(), nullable=False),
    sa.Column('disbursed_on', sa.Date(), nullable=False),
    sa.Column('maturity_date', sa.Date(), nullable=False),
    sa.Column('repaid_vnd', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('outstanding_principal_vnd', sa.BigInteger(), nullable=False),
    sa.Column('next_due_date', sa.Date(), nullable=True),
    sa.Column('status', sa.Text(), server_default='active', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['instruction_id'], ['instruction.id'], name=op.f('fk_loan_instruction_id_instruction')),
    sa.PrimaryKeyConstraint('instruction_id', name=op.f('pk_loan'))
    )
    op.create_table('repayment',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('instruction_id', sa.Text(), nullable=False),
    sa.Column('amount_vnd', sa.BigInteger(), nullable=False),
    sa.Column('bank_reference', sa.Text(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['instruction_id'], ['loan.instruction_id'], name=op.f('fk_repayment_instruction_id_loan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repayment')),
    sa.UniqueConstraint('event_id', name=op.f('uq_repayment_event_id'))
    )
    op.create_index('ix_hold_active', 'hold', ['household_id'], unique=False, postgresql_where=sa.text('released_at is null'))
    op.create_index(op.f('ix_savings_group_commune_code'), 'savings_group', ['commune_code'], unique=False)
    op.create_index('ix_application_commune_status', 'application', ['commune_code', 'status'], unique=False)
    op.create_index(op.f('ix_application_household_id'), 'application', ['household_id'], unique=False)
    op.create_index('uq_application_open', 'application', ['household_id', 'programme_code'], unique=True, postgresql_where=sa.text("status in ('submitted', 'reviewed', 'confirmed', 'approved')"))
    op.create_index(op.f('ix_application_status_application_id'), 'application_status', ['application_id'], unique=False)
    op.create_index(op.f('ix_instruction_household_id'), 'instruction', ['household_id'], unique=False)
    op.create_index('ix_instruction_programme_commune', 'instruction', ['programme_code', 'commune_code'], unique=False)
    op.create_index('ix_instruction_status_date', 'instruction', ['status', 'scheduled_date'], unique=False)
    op.create_index(op.f('ix_bank_message_instruction_id'), 'bank_message', ['instruction_id'], unique=False)
    op.create_index(op.f('ix_instruction_status_instruction_id'), 'instruction_status', ['instruction_id'], unique=False)
    op.create_index(op.f('ix_loan_household_id'), 'loan', ['household_id'], unique=False)
    op.create_index(op.f('ix_repayment_instruction_id'), 'repayment', ['instruction_id'], unique=False)


def downgrade() -> None:
    op.drop_table("repayment")
    op.drop_table("loan")
    op.drop_table("instruction_status")
    op.drop_table("bank_message")
    op.drop_table("instruction")
    op.drop_table("application_status")
    op.drop_table("group_member")
    op.drop_table("application")
    op.drop_table("savings_group")
    op.drop_table("household")
    op.drop_table("hold")
    op.drop_table("commune_area")
    op.drop_table("budget")
    drop_platform_tables(op.get_bind())
