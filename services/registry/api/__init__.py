"""Registry HTTP routes: translate HTTP ↔ handlers, nothing else."""

from . import admin_units, dci, households, imports

routers = [households.router, imports.router, admin_units.router, dci.router]

__all__ = ["routers"]
