"""Disbursement tables."""

from __future__ import annotations

from shared.db import declarative_base, platform_tables

Base = declarative_base()
platform = platform_tables(Base.metadata)
