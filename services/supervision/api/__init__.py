"""Supervision HTTP routes: translate HTTP ↔ handlers, nothing else."""

from services.supervision.api import (
    complaints,
    dashboard,
    postings,
    projects,
    public,
    signin,
    timeline,
)

routers = [postings.router, complaints.router, projects.router, timeline.router, public.router,
           dashboard.router, signin.router]

__all__ = ["routers"]
