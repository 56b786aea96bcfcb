"""``/``: the incident queue is the console's home."""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Route

from monitor.web.auth import require


@require("viewer")
async def home(request, user):
    return RedirectResponse("/incidents", 303)


routes = [Route("/", home)]
