"""Registry tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db import new_metadata, platform_tables


class Base(DeclarativeBase):
    """Declarative base of this service's tables (its own database)."""

    metadata = new_metadata()


platform = platform_tables(Base.metadata)


class Household(Base):
    """A registered household (aggregate root, optimistic version)."""

    __tablename__ = "household"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    area_type: Mapped[str] = mapped_column(sa.Text)
    province_code: Mapped[str] = mapped_column(sa.Text, index=True)
    commune_code: Mapped[str] = mapped_column(sa.Text, index=True)
    village: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, default="active")
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True),
                                                 server_default=sa.func.now())
    members: Mapped[list[Member]] = relationship(back_populates="household", lazy="selectin",
                                                 order_by="Member.position")


class Member(Base):
    """A person in a household."""

    __tablename__ = "member"

    id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    household_id: Mapped[str] = mapped_column(sa.ForeignKey("household.id"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    full_name: Mapped[str] = mapped_column(sa.Text)
    national_id: Mapped[str] = mapped_column(sa.Text)
    date_of_birth: Mapped[date] = mapped_column(sa.Date)
    sex: Mapped[str] = mapped_column(sa.Text)
    relation: Mapped[str] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    household: Mapped[Household] = relationship(back_populates="members")

    __table_args__ = (
        sa.Index("uq_member_active_national_id", "national_id", unique=True,
                 postgresql_where=sa.text("active")),
    )
