"""静默: the silences (``/silences``: those in force first; ``?all=1`` also the expired ones), and for
admins adding one (``POST /silences``: topic / rule / severity, how long, a reason) and ending one
early (``POST /silences/{id}/expire``) — :mod:`monitor.app.service.silences`, the CLI's rules.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.app.reports.render import format_duration
from monitor.app.service import silences as service
from monitor.core.errors import UsageError
from monitor.web.auth import User, context, now, require
from monitor.web.pages.incident_actions import SILENCE_DURATIONS
from monitor.web.pages.incidents import helpers
from monitor.web.templating import flash, render

DURATIONS = (*SILENCE_DURATIONS, ("3d", "3 天"), ("7d", "7 天"))
STATE = {"active": "生效中", "pending": "未开始", "expired": "已结束"}
FIELDS = ("topic", "rule", "severity", "duration", "until", "reason")

# The service speaks English to the CLI (naming its options); people on the console read Chinese.
_CHINESE = (
    (r"a silence needs at least one of", "请至少填写话题、规则或级别中的一项（否则静默不匹配任何通知）。"),
    (r"--severity:", "级别无效：只能是 I、II、III、IV。"),
    (r"--until:", "结束时间格式无效：请填写如 2026-03-15 18:00。"),
    (r"--for:", "时长无效：请选择静默时长。"),
    (r"say how long", "请选择时长，或填写结束时间。"),
    (r"the silence would end in the past", "结束时间已经过去，无需静默。"),
    (r"a silence needs --reason", "请填写静默原因（它会显示在每条被静默的通知上）。"),
    (r"no silence #(\d+)", "没有静默 #{0}。"),
    (r"silence #(\d+) already expired", "静默 #{0} 已经结束了。"),
)


def say(exc: UsageError) -> str:
    for pattern, message in _CHINESE:
        match = re.match(pattern, str(exc))
        if match:
            return message.format(*match.groups())
    return f"无法完成：{exc}"


def describe(matcher: dict) -> str:
    """``话题 鲜丰奶茶 · 级别 II`` — what a silence holds back, in words."""
    names = {"topic": "话题", "rule": "规则", "severity": "级别"}
    return " · ".join(f"{names[k]} {matcher[k]}" for k in names if k in matcher) or "（无）"


def _page(request: Request, user: User, *, form: dict[str, str] | None = None, error: str | None = None,
          status: int = 200) -> Response:
    ctx, at = context(request), now()
    show_all = request.query_params.get("all") == "1"
    order = list(STATE)
    listed = sorted(service.listing(ctx, at, include_expired=show_all), key=lambda s: order.index(s.state(at)))
    values: dict[str, Any] = {
        **helpers(request, at), "silences": listed, "show_all": show_all, "state_label": STATE,
        "describe": describe, "span": format_duration, "durations": DURATIONS, "error": error,
        "form": form or {"duration": "2h"}, "may_admin": user.may("admin"),
        "topics": [t.name for t in ctx.config.topics], "rules": [r.name for r in ctx.config.rules],
    }
    return render(request, "silences.html", values, status=status)


@require("viewer")
def listing(request: Request, user: User) -> Response:
    return _page(request, user)


@require("admin")
def add(request: Request, user: User) -> Response:
    form = {k: str(request.state.form.get(k) or "").strip() for k in FIELDS}
    until = form["until"] or None
    try:
        added = service.add(context(request), topic=form["topic"], rule=form["rule"], severity=form["severity"],
                            for_=None if until else (form["duration"] or None), until=until, reason=form["reason"],
                            actor=user.name, now=now())
    except UsageError as exc:  # the form again, as typed, with the reason it was refused
        return _page(request, user, form=form, error=say(exc), status=400)
    s = added.silence
    flash(request, f"已添加静默 #{s.id}：{describe(s.matcher)}，至 {helpers(request, now())['local'](s.ends_at)}。")
    for warning in added.warnings:  # a topic or rule the config does not know: silenced exactly as typed
        flash(request, f"注意：配置里没有这个名字，静默按原样匹配（{warning}）", "warn")
    return RedirectResponse("/silences", 303)


@require("admin")
def expire(request: Request, user: User) -> Response:
    try:
        s = service.expire(context(request), request.path_params["id"], now())
        flash(request, f"静默 #{s.id}（{describe(s.matcher)}）已结束，匹配的通知将照常发出。")
    except UsageError as exc:
        flash(request, say(exc), "error")
    return RedirectResponse("/silences", 303)


routes = [
    Route("/silences", listing, methods=["GET"]),
    Route("/silences", add, methods=["POST"]),
    Route("/silences/{id:int}/expire", expire, methods=["POST"]),
]
