"""Registry HTTP routes: translate HTTP ↔ handlers, nothing else."""

from . import admin_units, cadres, dci, households, imports, shocks, visits

routers = [households.router, visits.router, cadres.router, imports.router, admin_units.router,
           dci.router, shocks.router]

__all__ = ["routers"]
