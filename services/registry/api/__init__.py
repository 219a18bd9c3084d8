"""Registry HTTP routes: translate HTTP ↔ handlers, nothing else."""

from . import admin_units, dci, households, imports, shocks

routers = [households.router, imports.router, admin_units.router, dci.router, shocks.router]

__all__ = ["routers"]
