"""Jinja2 for the console: one environment (autoescape on everywhere), and :func:`render`.

Templates live in ``monitor/web/templates/`` and extend ``base.html``. Globals every template has:
``csrf_input()`` (the hidden CSRF field for a <form method="post">), ``csrf_token()`` (the token itself),
``user`` (the logged-in :class:`monitor.app.service.users.User` or None), ``nav`` (the menu),
``role_labels``, ``severities`` (base.html makes the classes ``sev-I`` … ``sev-IV`` from their colours)
and ``safe_url(url)`` (the URL when it is http/https, else "" — mention links come from strangers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from monitor.core.severity import Severity
from monitor.core.text import http_url
from monitor.web.security import CSRF_FIELD, csrf_token as _session_token

TEMPLATES = Path(__file__).with_name("templates")
NAV = (("/incidents", "事件"), ("/mentions", "提及"), ("/sources", "数据源"), ("/silences", "静默"),
       ("/notifications", "通知"), ("/reports", "复盘"), ("/cluster", "节点"))
ROLE_LABELS = {"viewer": "只读", "responder": "值班处理", "admin": "管理员"}

env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                         trim_blocks=True, lstrip_blocks=True)
templates = Jinja2Templates(env=env)


@jinja2.pass_context
def csrf_token(context: Any) -> str:
    return _session_token(context["request"].session)


@jinja2.pass_context
def csrf_input(context: Any) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, csrf_token(context))


def safe_url(url: Any) -> str:
    """``url`` when it is an absolute http(s) URL, else "" (``javascript:``, ``data:`` … render as no link)."""
    return http_url(url)


env.globals.update(csrf_token=csrf_token, csrf_input=csrf_input, nav=NAV, safe_url=safe_url,
                   role_labels=ROLE_LABELS, severities=Severity.ascending())
env.filters["safe_url"] = safe_url


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A message for the next page this session renders (after a POST's redirect: "已确认事件 #3")."""
    request.session["flash"] = [*request.session.get("flash", []), [kind, message]]


def render(request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render ``templates/<name>`` with ``context`` plus ``request``, ``user`` and the pending ``flashes``."""
    flashes = request.session.pop("flash", []) if "flash" in request.session else []
    values = {"user": getattr(request.state, "user", None), "public_url": _public_url(request), "flashes": flashes,
              **(context or {})}
    return templates.TemplateResponse(request, name, values, status_code=status, headers=headers)


def _public_url(request: Request) -> str | None:
    settings = getattr(request.app.state, "settings", None)
    return getattr(settings, "public_url", None)


__all__ = ["Markup", "NAV", "csrf_input", "csrf_token", "env", "escape", "flash", "render", "safe_url", "templates"]
