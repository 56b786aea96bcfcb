"""数据源: every source's health (``/sources``) — the verdict of :func:`sources.health.assess` that the
``source_health`` rule pages by, through :func:`monitor.app.service.sources.source_views`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.app.reports.render import format_duration
from monitor.app.service.sources import source_views
from monitor.web.auth import User, context, now, require
from monitor.web.pages.incidents import helpers
from monitor.web.templating import render

# Health in words and colour classes (console.css: .health-*); the order is the page's, worst first.
HEALTH = {"failing": "故障", "stale": "无新内容", "erroring": "出错", "never polled": "从未轮询", "ok": "正常"}
HEALTH_CLASS = {state: "health-" + state.replace(" ", "-") for state in HEALTH}


@require("viewer")
def sources(request: Request, user: User) -> Response:
    at = now()
    order = list(HEALTH)
    views = sorted(source_views(context(request), at), key=lambda v: order.index(v.state))  # worst first
    counts = {state: sum(v.state == state for v in views) for state in HEALTH}
    return render(request, "sources.html", {
        **helpers(request, at), "views": views, "counts": counts, "health": HEALTH, "health_class": HEALTH_CLASS,
        "span": format_duration,
    })


routes = [Route("/sources", sources, methods=["GET"])]
