"""Supervision tables."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata, platform_tables


class Base(DeclarativeBase):
    """Declarative base of this service's tables (its own database)."""

    metadata = new_metadata()


platform = platform_tables(Base.metadata)


class TimelineEntry(Base):
    """One event in a household's story, as seen on any topic."""

    __tablename__ = "timeline_entry"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.Text, index=True)
    event_id: Mapped[str] = mapped_column(sa.Text, unique=True)
    type: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.Text)
    topic: Mapped[str] = mapped_column(sa.Text)
    time: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    summary_vi: Mapped[str] = mapped_column(sa.Text)
    summary_en: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str | None] = mapped_column(sa.Text)
    correlation_id: Mapped[str | None] = mapped_column(sa.Text)
    causation_id: Mapped[str | None] = mapped_column(sa.Text)
    trace_id: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[dict] = mapped_column(JSONB)
