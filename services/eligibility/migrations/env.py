"""Alembic environment of the eligibility (online only; shares the start-up connection)."""

from services.eligibility.tables import Base
from shared.db import run_migrations_env

run_migrations_env(Base.metadata)
