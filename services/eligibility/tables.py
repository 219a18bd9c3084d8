"""Eligibility tables."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import new_metadata, platform_tables


class Base(DeclarativeBase):
    """Declarative base of this service's tables (its own database)."""

    metadata = new_metadata()


platform = platform_tables(Base.metadata)


class Household(Base):
    """Eligibility's projection of a registry household (the inputs it decides on)."""

    __tablename__ = "household"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    area_type: Mapped[str] = mapped_column(sa.Text)
    province_code: Mapped[str] = mapped_column(sa.Text)
    commune_code: Mapped[str] = mapped_column(sa.Text, index=True)
    village: Mapped[str] = mapped_column(sa.Text)
    registry_version: Mapped[int] = mapped_column(sa.Integer)
    last_event_id: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True),
                                                 server_default=sa.func.now())
