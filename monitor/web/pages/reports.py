"""复盘: the incident review and the daily / period summaries, shown in the console and downloadable.

``/reports`` links them; ``/reports/incident/{id}``, ``/reports/daily?date=YYYY-MM-DD`` and
``/reports/period?since=&until=`` show the report's body inside a console page (the console's
styles; the report's own document carries a <style> of its own and would restyle the menu), and
``?download=html|md|svg`` answers the file ``monitor report`` writes, as an attachment.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.app.service import incidents as incident_service
from monitor.app.service import reports as service
from monitor.app.service.context import today
from monitor.core.errors import UsageError
from monitor.web.auth import User, context, now, require
from monitor.web.pages.incidents import helpers
from monitor.web.templating import render

DOWNLOADS = (("html", "HTML"), ("md", "Markdown"), ("svg", "图表 SVG"))
RECENT = 20  # incidents listed on /reports

_CHINESE = (
    (r"no incident #(\d+)", "没有事件 #{0}。"),
    (r"no data for (.+?) \(", "{0} 没有数据：既没有提及也没有事件。"),
    (r"--(date|since|until): expected a date", "日期格式无效：请填写如 2026-03-15。"),
    (r"the period ends \((.+?)\) before it starts \((.+?)\)", "结束日期 {0} 早于开始日期 {1}。"),
    (r"a report covers at most (\d+) days", "一份报告最多覆盖 {0} 天。"),
)


def say(exc: UsageError) -> str:
    for pattern, message in _CHINESE:
        match = re.match(pattern, str(exc))
        if match:
            return message.format(*match.groups())
    return f"无法生成报告：{exc}"


def _index(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    ctx, at = context(request), now()
    recent = incident_service.list_incidents(ctx, at, since="30d")[:RECENT]
    q = request.query_params
    return render(request, "reports.html", {
        **helpers(request, at), "recent": recent, "error": error, "today": today(ctx.tz, at).isoformat(),
        "form": {k: q.get(k, "") for k in ("id", "date", "days", "since", "until")},
    }, status=status)


@require("viewer")
def index(request: Request, user: User) -> Response:
    incident_id = request.query_params.get("id", "").strip().lstrip("#")
    if incident_id.isdigit():  # the form's "open incident #…"
        return RedirectResponse(f"/reports/incident/{int(incident_id)}", 303)
    return _index(request)


def _show(request: Request, build: Callable[[], Any], title: str | Callable[[Any], str], kind: str) -> Response:
    """The report ``build`` makes: a console page, or with ``?download=`` the file."""
    fmt = request.query_params.get("download")
    if fmt is not None and fmt not in dict(DOWNLOADS):
        raise HTTPException(400, "download: html, md or svg")
    try:
        report = build()
    except UsageError as exc:
        if str(exc).startswith("no incident #"):
            raise HTTPException(404) from None
        return _index(request, error=say(exc), status=400)
    if fmt is not None:
        doc = service.document(report, fmt)
        return Response(doc.text, media_type=doc.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{doc.filename}"'})
    doc = service.document(report, "body")  # escaped by the report's own templates; links only http(s)
    query = request.url.query
    base = request.url.path + "?" + (query + "&" if query else "")
    return render(request, "report.html", {
        "title": title(report) if callable(title) else title, "kind": kind, "body": Markup(doc.text),
        "downloads": [(base + f"download={value}", value, label) for value, label in DOWNLOADS],
    })


@require("viewer")
def incident(request: Request, user: User) -> Response:
    incident_id = request.path_params["id"]
    return _show(request, lambda: service.incident_report(context(request), incident_id, now=now()),
                 f"事件 #{incident_id} 复盘", "incident")


@require("viewer")
def daily(request: Request, user: User) -> Response:
    q = request.query_params
    days = int(q["days"]) if q.get("days", "").isdigit() and 1 <= int(q["days"]) <= 366 else 1
    on = q.get("date", "").strip() or None
    return _show(request, lambda: service.daily_report(context(request), now=now(), on=on, days=days),
                 lambda r: f"舆情日报 {r.first_day}" if days == 1 else f"舆情报告 {r.first_day} – {r.last_day}", "daily")


@require("viewer")
def period(request: Request, user: User) -> Response:
    q = request.query_params
    since, until = q.get("since", "").strip(), q.get("until", "").strip() or None
    if not since:
        return _index(request, error="请填写开始日期。", status=400)
    return _show(request, lambda: service.period_report(context(request), now=now(), since=since, until=until),
                 lambda r: f"舆情报告 {r.first_day} – {r.last_day}", "period")


routes = [
    Route("/reports", index, methods=["GET"]),
    Route("/reports/incident/{id:int}", incident, methods=["GET"]),
    Route("/reports/daily", daily, methods=["GET"]),
    Route("/reports/period", period, methods=["GET"]),
]
