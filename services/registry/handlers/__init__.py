"""Registry use cases: command or event → domain → tables + outbox, in one transaction."""

from services.registry.handlers import admin_units, dci, households, imports, members, surveys

__all__ = ["admin_units", "dci", "households", "imports", "members", "surveys"]
