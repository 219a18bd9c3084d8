"""Alembic environment of the registry (online only; shares the start-up connection)."""

from services.registry.tables import Base
from shared.db import run_migrations_env

run_migrations_env(Base.metadata)
