"""Alembic environment of the supervision (online only; shares the start-up connection)."""

from services.supervision.tables import Base
from shared.db import run_migrations_env

run_migrations_env(Base.metadata)
