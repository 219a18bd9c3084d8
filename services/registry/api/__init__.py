"""Registry HTTP routes: translate HTTP ↔ handlers, nothing else."""

from . import admin_units, households, imports

routers = [households.router, imports.router, admin_units.router]

__all__ = ["routers"]
