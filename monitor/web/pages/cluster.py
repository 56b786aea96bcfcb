"""集群: the daemons at work (``/cluster``) — the nodes of a cluster with their heartbeats, which one leads
the rules and the overdue sources; with a single daemon, its heartbeat. Read through
:func:`monitor.app.service.status.status`, the same figures as ``monitor status``."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.app.reports.render import format_duration
from monitor.app.service.status import status
from monitor.web.auth import User, context, now, require
from monitor.web.pages.incidents import helpers
from monitor.web.templating import render

OVERDUE_SHOWN = 50  # the latest ones; a count says how many more (a cluster may watch thousands)
QUEUE = {"todo": "待执行", "doing": "执行中", "failed": "失败"}


@require("viewer")
def cluster(request: Request, user: User) -> Response:
    at = now()
    st = status(context(request), at)
    overdue = st.cluster.overdue if st.cluster else []
    return render(request, "cluster.html", {
        **helpers(request, at), "st": st, "c": st.cluster, "overdue": overdue[:OVERDUE_SHOWN],
        "overdue_total": len(overdue), "queue_labels": QUEUE,
        "seconds": lambda s: format_duration(timedelta(seconds=s)),
    })


routes = [Route("/cluster", cluster, methods=["GET"])]
