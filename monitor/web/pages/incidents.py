"""事件: the incident queue (``/incidents``), one incident (``/incidents/{id}``) and its chart.

The queue lists active incidents first and refreshes itself: htmx asks for ``?partial=rows`` every
15 s and swaps the counts and rows in place. The detail page shows what fired in words, the chart
(``/incidents/{id}/chart.svg``, drawn by the 复盘 report's code — a separate request, so the page
itself needs no mention scan), the evidence, the plan, notes, the timeline, and the actions
(:mod:`.incident_actions`: every POST there). ``?ack=1`` — the page's 确认处理 link — puts the
acknowledge button first and focuses it; acknowledging stays a POST.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts.crisis_summary import CrisisSummary, summary_lines
from monitor.app.reports.render import EVENT_KIND, STATUS, STEP_STATUS
from monitor.app.service import incidents as service
from monitor.app.service import users as user_service
from monitor.app.service.context import local_time
from monitor.core.errors import UsageError
from monitor.core.severity import Severity
from monitor.web.auth import User, context, now, require
from monitor.web.pages import incident_actions
from monitor.web.pages.incident_actions import SILENCE_DURATIONS, in_chinese
from monitor.web.templating import flash, render

SINCE_CHOICES = (("24h", "24 小时内"), ("7d", "7 天内"), ("30d", "30 天内"))
LABELS = {"negative": "负面", "neutral": "中性", "positive": "正面"}
REFRESH = "15s"


def ago(then: datetime | None, at: datetime) -> str:
    """``刚刚``, ``12 分钟前``, ``3 小时前``, ``2 天前``."""
    if then is None:
        return "-"
    seconds = max(0, int((at - then).total_seconds()))
    if seconds < 60:
        return "刚刚"
    for size, unit in ((86400, "天"), (3600, "小时"), (60, "分钟")):
        if seconds >= size:
            return f"{seconds // size} {unit}前"
    return "刚刚"  # unreachable


def count(n: int | None) -> str:
    """Follower and repost counts as people read them: ``8,520``, ``12.3万``."""
    if n is None:
        return "-"
    return f"{n / 10000:.1f}万" if n >= 10000 else f"{n:,}"


def figure(value: Any) -> Any:
    """A rule's figure for people: floats with at most two decimals (``36.36``, ``0.8``)."""
    return f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else value


def helpers(request: Request, at: datetime) -> dict[str, Any]:
    """What every incident template uses: times in the config's zone, labels in Chinese."""
    tz = context(request).tz
    return {
        "now": at,
        "ago": lambda dt: ago(dt, at),
        "local": lambda dt, fmt="%m-%d %H:%M": local_time(dt, tz, fmt),
        "sev": lambda s: Severity(s).display,
        "status_label": lambda s: STATUS.get(s, s),
        "step_label": lambda s: STEP_STATUS.get(s, s),
        "kind_label": lambda k: EVENT_KIND.get(k, k),
        "mention_label": lambda s: LABELS.get(s or "", "未评分"),
        "count": count,
        "figure": figure,
    }


# -- the queue ------------------------------------------------------------------------------
def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "").strip() for k in ("status", "severity", "topic", "since") if q.get(k, "").strip()}


def _page(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


@require("viewer")
def queue(request: Request, user: User) -> Response:
    at, filters, page = now(), _filters(request), _page(request)
    try:
        result = service.queue(context(request), at, **filters, page=page)
    except UsageError as exc:  # a hand-edited query string: say so, and show everything
        flash(request, in_chinese(exc), "error")
        filters, page = {}, 1
        result = service.queue(context(request), at)
    values = {
        **helpers(request, at), "q": result, "filters": filters, "page": page,
        "statuses": [(s, STATUS[s]) for s in ("open", "acknowledged", "resolved")],
        "since_choices": SINCE_CHOICES, "refresh": REFRESH,
        "refresh_url": "/incidents?" + urlencode({"partial": "rows", **filters, **({"page": page} if page > 1 else {})}),
        "link": lambda **changes: _link(filters, changes),
    }
    if request.query_params.get("partial") == "rows":
        return render(request, "_incident_rows.html", values)
    return render(request, "incidents.html", values)


def _link(filters: dict[str, str], changes: dict[str, Any]) -> str:
    """The queue's address with ``changes`` to its filters (None drops one)."""
    merged = {k: v for k, v in {**filters, **changes}.items() if v and not (k == "page" and v == 1)}
    return "/incidents" + ("?" + urlencode(merged) if merged else "")


# -- one incident ---------------------------------------------------------------------------
def _detail(request: Request) -> service.IncidentDetail:
    try:
        return service.detail(context(request), request.path_params["id"])
    except UsageError:  # no such incident
        raise HTTPException(404) from None


@require("viewer")
def incident(request: Request, user: User) -> Response:
    d = _detail(request)
    ctx = context(request)
    may_act = user.may("responder")
    values = {
        **helpers(request, now()), "d": d, "i": d.incident, "may_act": may_act,
        "ack_first": request.query_params.get("ack") == "1" and d.incident.status == "open" and may_act,
        "notes": [e for e in d.events if e.kind == "note"],
        "people": [u.name for u in user_service.listing(ctx) if not u.disabled] if may_act else [],
        "silence_durations": SILENCE_DURATIONS,
        "rules_interval": int(ctx.config.scheduler.rules_interval.total_seconds()),
        "summary": summary_lines(CrisisSummary.from_json(d.incident.summary)),  # escaped by the template
    }
    return render(request, "incident.html", values)


@require("viewer")
def chart(request: Request, user: User) -> Response:
    try:
        svg = service.chart(context(request), request.path_params["id"], now=now())
    except UsageError:  # no such incident
        raise HTTPException(404) from None
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


routes = [
    Route("/incidents", queue, methods=["GET"]),
    Route("/incidents/{id:int}", incident, methods=["GET"]),
    Route("/incidents/{id:int}/chart.svg", chart, methods=["GET"]),
    *incident_actions.routes,
]
