"""Supervision HTTP routes: translate HTTP ↔ handlers, nothing else."""

from services.supervision.api import complaints, dashboard, postings, projects, public, timeline

routers = [postings.router, complaints.router, projects.router, timeline.router, public.router,
           dashboard.router]

__all__ = ["routers"]
