"""Alembic environment of the disbursement (online only; shares the start-up connection)."""

from services.disbursement.tables import Base
from shared.db import run_migrations_env

run_migrations_env(Base.metadata)
