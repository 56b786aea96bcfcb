"""提及: search stored mentions (``/mentions``), open one with its story (``/mentions/{id}``), and
correct its sentiment (``POST /mentions/{id}/label``: the feedback table, the user as actor).

The search is newest first, a page at a time: the next page starts after the last row shown
(``?before_id=``), so paging stays fast however deep it goes. The label filter is the model's
label; a correction shows beside it (who, when) and becomes the mention's current label.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.app.service import mentions as service
from monitor.app.service import sentiment
from monitor.app.service.sources import source_views
from monitor.core.errors import UsageError
from monitor.web.auth import User, context, now, require, safe_next
from monitor.web.pages.incidents import LABELS, helpers
from monitor.web.templating import flash, render

FILTERS = ("topic", "source", "label", "since", "until", "q")
SINCE_CHOICES = (("1h", "1 小时内"), ("24h", "24 小时内"), ("7d", "7 天内"), ("30d", "30 天内"))


def say(exc: UsageError) -> str:
    """The service's refusal in Chinese (it names its fields in English for the CLI)."""
    text = str(exc)
    for pattern, message in ((r"no mention #(\d+)", "没有提及 #{0}。"),
                             (r"label:", "标签无效：只能是正面、负面或中性。"),
                             (r"since: the time range is empty", "时间范围为空：开始时间须早于结束时间。"),
                             (r"(since|until):", "时间格式无效：请填写如 2026-03-15 18:00、日期 2026-03-15 或时长 24h。")):
        match = re.match(pattern, text)
        if match:
            return message.format(*match.groups())
    return f"无法完成：{text}"


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "").strip() for k in FILTERS if q.get(k, "").strip()}


def _query(request: Request, filters: dict[str, str], at) -> service.MentionQuery:
    tz = context(request).tz
    return service.MentionQuery(
        topic=filters.get("topic"), source=filters.get("source"), label=filters.get("label"),
        since=service.parse_time(filters.get("since"), tz, at, "since"),
        until=service.parse_time(filters.get("until"), tz, at, "until", end_of_day=True),
        text=filters.get("q"))


def _before_id(request: Request) -> int | None:
    value = request.query_params.get("before_id", "")
    return int(value) if value.isdigit() else None


def label_choices() -> list[tuple[str, str]]:
    return [(value, LABELS[value]) for value in ("negative", "neutral", "positive")]


@require("viewer")
def search(request: Request, user: User) -> Response:
    ctx, at, filters = context(request), now(), _filters(request)
    error, page = None, service.Page([], None)
    try:
        page = service.search(ctx, _query(request, filters, at), before_id=_before_id(request))
    except UsageError as exc:
        error = say(exc)
    here = "/mentions" + (f"?{request.url.query}" if request.url.query else "")
    values = {
        **helpers(request, at), "page": page, "filters": filters, "error": error, "back": here,
        "first_page": _before_id(request) is None, "labels": label_choices(), "since_choices": SINCE_CHOICES,
        "topics": [t.name for t in ctx.config.topics], "sources": [v.name for v in source_views(ctx, at)],
        "may_label": user.may("responder"),
        "next_url": "/mentions?" + urlencode({**filters, "before_id": page.next_before_id}) if page.next_before_id else None,
    }
    return render(request, "mentions.html", values, status=400 if error else 200)


@require("viewer")
def mention(request: Request, user: User) -> Response:
    return render(request, "mention.html", _mention_values(request, user))


def _mention_values(request: Request, user: User) -> dict[str, Any]:
    try:
        story = service.mention(context(request), request.path_params["id"])
    except UsageError:
        raise HTTPException(404) from None
    return {**helpers(request, now()), "story": story, "f": story.found, "m": story.found.mention,
            "labels": label_choices(), "may_label": user.may("responder"), "back": request.url.path}


@require("responder")
def relabel(request: Request, user: User) -> Response:
    mention_id = request.path_params["id"]
    value = str(request.state.form.get("label") or "")
    back = safe_next(str(request.state.form.get("next") or f"/mentions/{mention_id}"))
    try:
        fb = sentiment.label(context(request), mention_id, value, actor=user.name, now=now())
        message, kind = f"已将提及 #{mention_id} 标为「{LABELS[fb.label]}」（{user.name}）。", "ok"
    except UsageError as exc:
        if str(exc).startswith("no mention #"):
            raise HTTPException(404) from None
        message, kind = say(exc), "error"
    if request.headers.get("hx-request"):  # the label block of this mention, re-rendered in place
        values = _mention_values(request, user)
        values.update(message=message, message_kind=kind, back=back)
        return render(request, "_mention_label.html", values)  # 200 either way: htmx swaps only those
    flash(request, message, kind)
    return RedirectResponse(back, 303)


routes = [
    Route("/mentions", search, methods=["GET"]),
    Route("/mentions/{id:int}", mention, methods=["GET"]),
    Route("/mentions/{id:int}/label", relabel, methods=["POST"]),
]
