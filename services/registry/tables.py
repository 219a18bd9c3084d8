"""Registry tables: admin units, households, members, surveys, versions (history), import jobs,
cadres, their assignments and the visit log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase

from shared.db import new_metadata, platform_tables


class Base(DeclarativeBase):
    """Declarative base of this service's tables (its own database)."""

    metadata = new_metadata()


platform = platform_tables(Base.metadata)
meta = Base.metadata

_TS = sa.DateTime(timezone=True)
_ID = UUID(as_uuid=False)


def _now(name: str = "created_at") -> sa.Column:
    return sa.Column(name, _TS, nullable=False, server_default=sa.func.now())


admin_unit = sa.Table(
    # Provinces → communes, loaded from a CSV (shipped demo set or the official list).
    "admin_unit", meta,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("parent_code", sa.Text, index=True),
    sa.Column("area_type", sa.Text),
    _now("updated_at"),
    sa.CheckConstraint("level in ('province', 'commune')", name="level"),
)

household = sa.Table(
    "household", meta,
    sa.Column("id", _ID, primary_key=True),
    # Insertion order, the stable key of cursor pagination.
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("external_ref", sa.Text, unique=True),
    sa.Column("area_type", sa.Text, nullable=False),
    sa.Column("province_code", sa.Text, nullable=False, index=True),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("village", sa.Text, nullable=False),
    sa.Column("address", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("head_name", sa.Text, nullable=False),
    # Normalised (diacritic-free) names of the current members, for `q`.
    sa.Column("search_text", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("archive_reason", sa.Text),
    # Pending verification requests: [{complaint_id, reason, requested_at}].
    sa.Column("verification", JSONB, nullable=False, server_default="[]"),
    sa.Column("possible_duplicates", JSONB, nullable=False, server_default="[]"),
    sa.Column("current_survey_id", _ID),
    # Digest of the household part of the last import line (unchanged re-imports are skipped).
    sa.Column("import_hash", sa.Text),
    sa.Column("created_by", sa.Text),
    _now(),
    _now("updated_at"),
    sa.CheckConstraint("status in ('active', 'archived')", name="status"),
    sa.CheckConstraint("area_type in ('rural', 'urban')", name="area_type"),
)

member = sa.Table(
    "member", meta,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("household_id", _ID, sa.ForeignKey("household.id"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("full_name", sa.Text, nullable=False),
    sa.Column("name_key", sa.Text, nullable=False),
    sa.Column("national_id", sa.Text, nullable=False),
    sa.Column("date_of_birth", sa.Date, nullable=False),
    sa.Column("sex", sa.Text, nullable=False),
    sa.Column("relation", sa.Text, nullable=False),
    sa.Column("ethnicity", sa.Text),
    sa.Column("disability", sa.Boolean),
    # Holds its national ID: false once removed or once the household is archived.
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("removed_at", _TS),
    sa.Column("removed_reason", sa.Text),
    sa.Index("uq_member_active_national_id", "national_id", unique=True,
             postgresql_where=sa.text("active")),
    sa.Index("ix_member_name_key_dob", "name_key", "date_of_birth"),
)

survey = sa.Table(
    # Immutable; the newest by survey_date is the household's current survey.
    "survey", meta,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("household_id", _ID, sa.ForeignKey("household.id"), nullable=False, index=True),
    sa.Column("survey_date", sa.Date, nullable=False),
    sa.Column("review_round", sa.Text, nullable=False),
    sa.Column("income_per_capita_vnd", sa.BigInteger, nullable=False),
    sa.Column("deprivations", JSONB, nullable=False),
    sa.Column("facts", JSONB, nullable=False, server_default="{}"),
    sa.Column("surveyor", sa.Text),
    sa.Column("notes", sa.Text),
    sa.Column("recorded_by", sa.Text),
    sa.Column("import_hash", sa.Text),
    _now(),
    # The visit at which it was taken (optional; a visit of the same household).
    sa.Column("visit_id", _ID, sa.ForeignKey("visit.id")),
    sa.CheckConstraint("income_per_capita_vnd >= 0", name="income"),
)

household_version = sa.Table(
    # One row per version: what changed (field-level), who, why, when, and the event it produced.
    "household_version", meta,
    sa.Column("household_id", _ID, sa.ForeignKey("household.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("event_id", _ID, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("changes", JSONB, nullable=False),
    sa.Column("at", _TS, nullable=False, server_default=sa.func.now()),
)

import_job = sa.Table(
    "import_job", meta,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False, server_default="households"),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("filename", sa.Text),
    sa.Column("total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("accepted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("message", sa.Text),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_role", sa.Text, nullable=False),
    sa.Column("created_scope", JSONB, nullable=False),
    _now(),
    # Progress time: a running job without progress for long was interrupted by a restart.
    _now("heartbeat_at"),
    sa.Column("finished_at", _TS),
    sa.CheckConstraint("status in ('running', 'done', 'failed')", name="status"),
    sa.CheckConstraint("kind in ('households', 'visits')", name="kind"),
)

import_error = sa.Table(
    "import_error", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("job_id", _ID, sa.ForeignKey("import_job.id"), nullable=False, index=True),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("external_ref", sa.Text),
    sa.Column("field", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)

dci_transaction = sa.Table(
    # An asynchronous DCI search (POST /registry/search): the caller as it was authenticated, the
    # requests, the answer once computed and the on-search callback still owed (restart-safe).
    "dci_transaction", meta,
    sa.Column("id", _ID, primary_key=True),  # the correlation_id given in the ack
    sa.Column("transaction_id", sa.Text, nullable=False, index=True),
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
    sa.Column("next_attempt_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("delivered_at", _TS),
    _now(),
    _now("updated_at"),
    sa.UniqueConstraint("sender_id", "message_id"),
    sa.CheckConstraint("status in ('pdng', 'succ', 'rjct')", name="status"),
    sa.CheckConstraint("delivery in ('pending', 'delivered', 'failed')", name="delivery"),
    sa.Index("ix_dci_transaction_due", "delivery", "next_attempt_at"),
)

dci_callback_attempt = sa.Table(
    # Every on-search delivery attempt: when, where, what the sender's endpoint answered.
    "dci_callback_attempt", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("transaction_id", _ID, sa.ForeignKey("dci_transaction.id"), nullable=False,
              index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("delivered", sa.Boolean, nullable=False),
    sa.Column("at", _TS, nullable=False, server_default=sa.func.now()),
)


shock = sa.Table(
    # A declared disaster shock (append-only: a correction is a new declaration).
    "shock", meta,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("occurred_on", sa.Date, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("areas", JSONB, nullable=False),
    sa.Column("province_codes", ARRAY(sa.Text), nullable=False),
    sa.Column("commune_codes", ARRAY(sa.Text), nullable=False),
    sa.Column("review_due_on", sa.Date, nullable=False),
    sa.Column("declared_by", sa.Text, nullable=False),
    sa.Column("event_id", _ID, nullable=False),
    _now("declared_at"),
    sa.Index("ix_shock_communes", "commune_codes", postgresql_using="gin"),
)

cadre = sa.Table(
    # A Party member, young cadre or mass-organisation officer in charge of villages of a commune.
    "cadre", meta,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("province_code", sa.Text, nullable=False),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("organisation", sa.Text, nullable=False),
    sa.Column("young_cadre", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("phone", sa.Text),
    sa.Column("created_by", sa.Text),
    _now(),
    sa.CheckConstraint("organisation in ('party_cell', 'womens_union', 'farmers_association', "
                       "'veterans_association', 'youth_union', 'commune_staff')",
                       name="organisation"),
)

assignment = sa.Table(
    # A cadre in charge of villages from one date to another; ending one sets valid_to (kept).
    "assignment", meta,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("cadre_id", _ID, sa.ForeignKey("cadre.id"), nullable=False, index=True),
    sa.Column("province_code", sa.Text, nullable=False),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("villages", JSONB, nullable=False),
    sa.Column("valid_from", sa.Date, nullable=False),
    sa.Column("valid_to", sa.Date),
    sa.Column("end_reason", sa.Text),
    sa.Column("created_by", sa.Text),
    sa.Column("ended_by", sa.Text),
    _now(),
    sa.Column("ended_at", _TS),
    sa.CheckConstraint("valid_to is null or valid_to >= valid_from", name="period"),
)

visit = sa.Table(
    # Immutable: one knock on a household's door by a cadre, and what came of it.
    "visit", meta,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("household_id", _ID, sa.ForeignKey("household.id"), nullable=False, index=True),
    sa.Column("cadre_id", _ID, sa.ForeignKey("cadre.id"), nullable=False, index=True),
    sa.Column("commune_code", sa.Text, nullable=False),
    sa.Column("village", sa.Text, nullable=False),
    sa.Column("visited_on", sa.Date, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("next_visit_due", sa.Date),
    sa.Column("review_round", sa.Text),
    sa.Column("recorded_by", sa.Text),
    # Set by a visit import: the line's own id (idempotency key) and its digest.
    sa.Column("external_ref", sa.Text, unique=True),
    sa.Column("import_hash", sa.Text),
    _now(),
    sa.CheckConstraint("outcome in ('surveyed', 'not_home', 'refused', 'moved', 'deceased', "
                       "'follow_up')", name="outcome"),
    sa.Index("ix_visit_commune_round", "commune_code", "review_round"),
)
