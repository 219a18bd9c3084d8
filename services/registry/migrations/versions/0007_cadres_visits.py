"""Cadres, their assignments to villages (history kept: ending one sets its end date) and the
visit log (append-only); a survey may name the visit at which it was taken.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import make_append_only

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = UUID(as_uuid=False)
TS = sa.DateTime(timezone=True)
ORGANISATIONS = ("organisation in ('party_cell', 'womens_union', 'farmers_association', "
                 "'veterans_association', 'youth_union', 'commune_staff')")
OUTCOMES = ("outcome in ('surveyed', 'not_home', 'refused', 'moved', 'deceased', "
            "'follow_up')")


def _now(name: str = "created_at") -> sa.Column:
    return sa.Column(name, TS, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "cadre",
        sa.Column("id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("province_code", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("organisation", sa.Text, nullable=False),
        sa.Column("young_cadre", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("phone", sa.Text),
        sa.Column("created_by", sa.Text),
        _now(),
        sa.PrimaryKeyConstraint("id", name="pk_cadre"),
        sa.UniqueConstraint("seq", name="uq_cadre_seq"),
        sa.CheckConstraint(ORGANISATIONS, name="ck_cadre_organisation"),
    )
    op.create_index("ix_cadre_commune_code", "cadre", ["commune_code"])
    op.create_table(
        "assignment",
        sa.Column("id", ID, nullable=False),
        sa.Column("cadre_id", ID, nullable=False),
        sa.Column("province_code", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("villages", JSONB, nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date),
        sa.Column("end_reason", sa.Text),
        sa.Column("created_by", sa.Text),
        sa.Column("ended_by", sa.Text),
        _now(),
        sa.Column("ended_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_assignment"),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadre.id"], name="fk_assignment_cadre_id_cadre"),
        sa.CheckConstraint("valid_to is null or valid_to >= valid_from",
                           name="ck_assignment_period"),
    )
    op.create_index("ix_assignment_cadre_id", "assignment", ["cadre_id"])
    op.create_index("ix_assignment_commune_code", "assignment", ["commune_code"])
    op.create_table(
        "visit",
        sa.Column("id", ID, nullable=False),
        sa.Column("household_id", ID, nullable=False),
        sa.Column("cadre_id", ID, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("village", sa.Text, nullable=False),
        sa.Column("visited_on", sa.Date, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("next_visit_due", sa.Date),
        sa.Column("review_round", sa.Text),
        sa.Column("recorded_by", sa.Text),
        _now(),
        sa.PrimaryKeyConstraint("id", name="pk_visit"),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"],
                                name="fk_visit_household_id_household"),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadre.id"], name="fk_visit_cadre_id_cadre"),
        sa.CheckConstraint(OUTCOMES, name="ck_visit_outcome"),
    )
    op.create_index("ix_visit_household_id", "visit", ["household_id"])
    op.create_index("ix_visit_cadre_id", "visit", ["cadre_id"])
    op.create_index("ix_visit_commune_round", "visit", ["commune_code", "review_round"])
    op.add_column("survey", sa.Column("visit_id", ID))
    op.create_foreign_key("fk_survey_visit_id_visit", "survey", "visit", ["visit_id"], ["id"])
    make_append_only(op.get_bind(), "visit")


def downgrade() -> None:
    # The visit's triggers go with its table (drop_append_only would also drop the outbox's).
    op.drop_constraint("fk_survey_visit_id_visit", "survey", type_="foreignkey")
    op.drop_column("survey", "visit_id")
    op.drop_table("visit")
    op.drop_table("assignment")
    op.drop_table("cadre")
