"""通知: every page and its delivery through each channel, attempt by attempt (``/notifications``);
failed ones first. ``?status=failed|pending|delivered|silenced`` narrows it, ``?page=`` pages it."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts.message import HEADLINES
from monitor.app.service import notifications as service
from monitor.core.errors import UsageError
from monitor.web.auth import User, context, now, require
from monitor.web.pages.incidents import helpers
from monitor.web.templating import render

PAGE_STATUS = {"failed": "发送失败", "new": "待发送", "pending": "发送中", "delivered": "已送达", "silenced": "已静默"}
DELIVERY_STATUS = {"pending": "等待重试", "sent": "已发送", "failed": "失败", "silenced": "已静默",
                   "deduplicated": "已发过（去重）"}


@require("viewer")
def notifications(request: Request, user: User) -> Response:
    q = request.query_params
    status = q.get("status", "").strip() or None
    page = int(q["page"]) if q.get("page", "").isdigit() else 1
    error = None
    try:
        log = service.log(context(request), status=status, page=page)
    except UsageError:  # a hand-edited query string: show everything
        error, status = "状态筛选无效，已显示全部通知。", None
        log = service.log(context(request), page=page)

    def link(**changes) -> str:
        merged = {k: v for k, v in {"status": status, "page": page, **changes}.items() if v and v != 1}
        return "/notifications" + ("?" + urlencode(merged) if merged else "")

    return render(request, "notifications.html", {
        **helpers(request, now()), "log": log, "status": status, "error": error, "link": link,
        "page_status": PAGE_STATUS, "delivery_status": DELIVERY_STATUS, "kinds": HEADLINES,
    })


routes = [Route("/notifications", notifications, methods=["GET"])]
