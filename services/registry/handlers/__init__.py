"""Registry use cases: command or event → domain → tables + outbox, in one transaction."""

from services.registry.handlers import (
    admin_units,
    cadres,
    dci,
    households,
    imports,
    members,
    surveys,
    visits,
)

__all__ = ["admin_units", "cadres", "dci", "households", "imports", "members", "surveys",
           "visits"]
