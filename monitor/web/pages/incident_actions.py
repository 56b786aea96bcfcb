"""What responders do to an incident from its page: every POST under ``/incidents/{id}/``.

Each handler calls one function of :mod:`monitor.app.service.incidents` with the logged-in user as
actor (so it lands on the timeline under their name) and answers 303 back to the incident page
(post/redirect/get). The outcome travels in the session as a flash message
(:func:`monitor.web.templating.flash`) shown once on that page — a refusal (:class:`UsageError`:
acknowledging a resolved incident, an empty note …) in Chinese, never an error page.
Viewers never get here: :func:`require` answers 403.
"""

from __future__ import annotations

import re
from typing import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.app.reports.render import STATUS
from monitor.app.service import Context
from monitor.app.service import incidents as service
from monitor.app.service.context import local_time
from monitor.core.errors import UsageError
from monitor.web.auth import User, context, now, require
from monitor.web.templating import flash

SILENCE_DURATIONS = (("1h", "1 小时"), ("2h", "2 小时"), ("4h", "4 小时"), ("8h", "8 小时"), ("24h", "24 小时"))
STEP_DONE = {"done": "已完成", "skipped": "已跳过", "pending": "已重新打开"}
_UNKNOWN = re.compile(r"no incident #\d+$")


def _status(value: str) -> str:
    return f"「{STATUS.get(value, value)}」"


# The service speaks English to the CLI (naming its options); people on the console read Chinese.
_CHINESE: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [(re.compile(p), f) for p, f in (
    (r"no incident #(\d+)$", lambda m: f"没有事件 #{m[1]}。"),
    (r"incident #(\d+) is (\w+), only open incidents can be acknowledged",
     lambda m: f"事件 #{m[1]} 当前为{_status(m[2])}，只有「未处理」的事件可以确认。"),
    (r"incident #(\d+) is already resolved", lambda m: f"事件 #{m[1]} 已经解决了。"),
    (r"incident #(\d+) is resolved; cannot", lambda m: f"事件 #{m[1]} 已解决，不能再修改指派或预案步骤。"),
    (r"incident #(\d+) is (\w+), only open incidents are escalated",
     lambda m: f"事件 #{m[1]} 当前为{_status(m[2])}，只有「未处理」的事件可以升级（确认后升级通知即停止）。"),
    (r"incident #(\d+) changed meanwhile", lambda m: f"事件 #{m[1]} 刚刚有了变化（可能已发出下一级通知），请查看后再操作。"),
    (r"incident #(\d+) has paged every step",
     lambda m: f"事件 #{m[1]} 已通知过升级策略的每一级，没有下一级可以通知了。"),
    (r"incident #(\d+) has no step (\d+)", lambda m: f"事件 #{m[1]} 没有第 {m[2]} 步。"),
    (r"step status:", lambda m: "步骤状态无效：只能是完成、跳过或重新打开。"),
    (r"a note needs some text", lambda m: "备注不能为空。"),
    (r"assign needs a person", lambda m: "请填写要指派的人。"),
    (r"a silence needs --reason", lambda m: "静默必须填写原因（它会显示在每条被静默的通知上）。"),
    (r"--for:", lambda m: "请选择静默时长。"),
    (r"--status:", lambda m: "状态筛选无效，已显示全部事件。"),
    (r"--severity:", lambda m: "级别筛选无效，已显示全部事件。"),
    (r"--since:", lambda m: "时间筛选无效，已显示全部事件。"),
    (r"page:", lambda m: "页码无效，已显示第一页。"),
)]


def in_chinese(exc: UsageError) -> str:
    """A refusal of the service, for people on the console."""
    text = str(exc)
    for pattern, say in _CHINESE:
        match = pattern.match(text)
        if match:
            return say(match)
    return f"无法完成：{text}"


def _field(request: Request, name: str) -> str:
    return str(request.state.form.get(name) or "").strip()


def _act(request: Request, do: Callable[[Context, int], str]) -> Response:
    """Run ``do(ctx, incident_id)`` (it returns the success message) and go back to the incident page."""
    incident_id = request.path_params["id"]
    try:
        flash(request, do(context(request), incident_id))
    except UsageError as exc:
        if _UNKNOWN.match(str(exc)):
            raise HTTPException(404) from None
        flash(request, in_chinese(exc), "error")
    return RedirectResponse(f"/incidents/{incident_id}", 303)


@require("responder")
def ack(request: Request, user: User) -> Response:
    def do(ctx: Context, iid: int) -> str:
        service.acknowledge(ctx, iid, actor=user.name, now=now())
        return f"已确认事件 #{iid}，升级通知已停止。"
    return _act(request, do)


@require("responder")
def resolve(request: Request, user: User) -> Response:
    def do(ctx: Context, iid: int) -> str:
        service.resolve(ctx, iid, actor=user.name, now=now(), note=_field(request, "note") or None)
        return f"事件 #{iid} 已解决。"
    return _act(request, do)


@require("responder")
def note(request: Request, user: User) -> Response:
    def do(ctx: Context, iid: int) -> str:
        service.add_note(ctx, iid, _field(request, "text"), actor=user.name, now=now())
        return "备注已添加。"
    return _act(request, do)


@require("responder")
def assign(request: Request, user: User) -> Response:
    def do(ctx: Context, iid: int) -> str:
        person = _field(request, "person")
        service.assign(ctx, iid, person, actor=user.name, now=now())
        return f"已指派给 {person}。"
    return _act(request, do)


@require("responder")
def step(request: Request, user: User) -> Response:
    def do(ctx: Context, iid: int) -> str:
        status = _field(request, "status")
        done = service.set_step(ctx, iid, request.path_params["pos"], status, actor=user.name, now=now())
        return f"第 {done.position} 步{STEP_DONE[status]}：{done.title}"
    return _act(request, do)


@require("responder")
def escalate(request: Request, user: User) -> Response:
    def do(ctx: Context, iid: int) -> str:
        page = service.escalate_now(ctx, iid, actor=user.name, now=now())
        who = "、".join(page.channels) if page.channels else "所有渠道"
        seconds = int(ctx.config.scheduler.rules_interval.total_seconds())
        return f"已要求立即升级：通知 {who}。后台服务将在 {seconds} 秒内发出。"
    return _act(request, do)


@require("responder")
def silence(request: Request, user: User) -> Response:
    def do(ctx: Context, iid: int) -> str:
        length = _field(request, "duration")
        if length not in dict(SILENCE_DURATIONS):
            raise UsageError(f"--for: expected one of {', '.join(dict(SILENCE_DURATIONS))}, got {length!r}")
        added = service.silence_topic(ctx, iid, for_=length, reason=_field(request, "reason"), actor=user.name,
                                      now=now())
        topic = added.silence.matcher.get("topic", "")
        return f"已静默话题「{topic}」至 {local_time(added.silence.ends_at, ctx.tz, '%m-%d %H:%M')}。"
    return _act(request, do)


routes = [
    Route("/incidents/{id:int}/ack", ack, methods=["POST"]),
    Route("/incidents/{id:int}/resolve", resolve, methods=["POST"]),
    Route("/incidents/{id:int}/note", note, methods=["POST"]),
    Route("/incidents/{id:int}/assign", assign, methods=["POST"]),
    Route("/incidents/{id:int}/steps/{pos:int}", step, methods=["POST"]),
    Route("/incidents/{id:int}/escalate", escalate, methods=["POST"]),
    Route("/incidents/{id:int}/silence", silence, methods=["POST"]),
]
