"""The console's screens: one module each, exposing ``routes: list[starlette.routing.Route]``.

Adding a screen is one module here and one line in ``SCREENS``. Every route handler is wrapped in
:func:`monitor.web.auth.require` (or marked :func:`monitor.web.auth.public`, like the login page):
the tests request every listed route anonymously and expect the login redirect.
"""

from __future__ import annotations

from importlib import import_module

from starlette.routing import BaseRoute

SCREENS = [
    "login",  # /login, /logout
    "home",  # / → /incidents
    "incidents",  # /incidents (queue), /incidents/{id} (detail, chart.svg) and its actions (incident_actions)
    "mentions",  # /mentions (search), /mentions/{id} (story), POST /mentions/{id}/label
    "sources",  # /sources (health)
    "silences",  # /silences (list, POST add), POST /silences/{id}/expire
    "notifications",  # /notifications (pages and their delivery attempts)
    "reports",  # /reports, /reports/incident/{id}, /reports/daily, /reports/period (?download=html|md|svg)
    "cluster",  # /cluster (the daemons: cluster nodes, heartbeats, rules leader, overdue sources)
]


def routes() -> list[BaseRoute]:
    return [route for name in SCREENS for route in import_module(f"{__name__}.{name}").routes]
