"""DCI social-registry search: asynchronous transactions (with the on-search callback owed) and
every callback attempt.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = UUID(as_uuid=False)
TS = sa.DateTime(timezone=True)


def _now(name: str = "created_at") -> sa.Column:
    return sa.Column(name, TS, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "dci_transaction",
        sa.Column("id", ID, nullable=False),
        sa.Column("transaction_id", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("sender_id", sa.Text, nullable=False),
        sa.Column("sender_uri", sa.Text, nullable=False),
        sa.Column("caller_sub", sa.Text, nullable=False),
        sa.Column("caller_role", sa.Text, nullable=False),
        sa.Column("caller_scope", JSONB, nullable=False),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("response", JSONB),
        sa.Column("status", sa.Text, nullable=False, server_default="pdng"),
        sa.Column("delivery", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", TS),
        _now(),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_dci_transaction"),
        sa.UniqueConstraint("sender_id", "message_id", name="uq_dci_transaction_sender_id"),
        sa.CheckConstraint("status in ('pdng', 'succ', 'rjct')", name="ck_dci_transaction_status"),
        sa.CheckConstraint("delivery in ('pending', 'delivered', 'failed')",
                           name="ck_dci_transaction_delivery"),
    )
    op.create_index("ix_dci_transaction_transaction_id", "dci_transaction", ["transaction_id"])
    op.create_index("ix_dci_transaction_due", "dci_transaction", ["delivery", "next_attempt_at"])
    op.create_table(
        "dci_callback_attempt",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("transaction_id", ID, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("delivered", sa.Boolean, nullable=False),
        _now("at"),
        sa.PrimaryKeyConstraint("id", name="pk_dci_callback_attempt"),
        sa.ForeignKeyConstraint(["transaction_id"], ["dci_transaction.id"],
                                name="fk_dci_callback_attempt_transaction_id_dci_transaction"),
    )
    op.create_index("ix_dci_callback_attempt_transaction_id", "dci_callback_attempt",
                    ["transaction_id"])


def downgrade() -> None:
    op.drop_table("dci_callback_attempt")
    op.drop_table("dci_transaction")
