"""What the browser tests share: the daemon's config, the users, the hostile complaint, the running
console (:class:`Console`), logging in and measuring overflow. Fixtures are in ``conftest.py``."""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx

from monitor.app.service import Context
from monitor.app.service import incidents as incident_service

CHROMIUM = os.environ.get("MONITOR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # git-ignored: screenshots for people to look at
PASSWORD = "correct horse battery"
RESPONDER, VIEWER, ADMIN = "小王", "访客", "李经理"
TOPIC = "鲜丰奶茶"  # its incident stays open (the phone and security tests look at it)
WORK_TOPIC = "星河手机"  # its incident is worked to resolution by the end-to-end test
PUSH_TOKEN = "browser-push-token"
WAIT_MS = 15_000  # generous: two shared cores, and every page is a round trip to the daemon
START_TIMEOUT = 30.0

# What an attacker may put in a post: it must render as text and never run, nor become a link. The
# sources strip tags from a text but unescape entities, so the text is pushed escaped to be stored as is.
HOSTILE_TEXT = '<script>alert("xss-text")</script>鲜丰奶茶吃出异物，投诉<img src=x onerror=alert("xss-img")>'
HOSTILE_PUSHED = HOSTILE_TEXT.replace("<", "&lt;").replace(">", "&gt;")
HOSTILE_AUTHOR = '<script>alert("xss-author")</script>'
HOSTILE_URL = 'javascript:alert("xss-url")'
COMPLAINTS = [
    "喝了鲜丰奶茶拉肚子，投诉无门，要求退款！",
    "鲜丰奶茶客服态度极差，投诉到底",
    "鲜丰奶茶喝完肚子疼了一晚上，投诉",
    "鲜丰奶茶卫生太差了，必须曝光，投诉" + "，" * 3 + "https://weibo.com/" + "a" * 120,  # a long URL must wrap
]
WORK_COMPLAINTS = ["星河手机X5充电发烫，投诉", "星河手机售后推诿，已投诉", "星河手机屏幕闪烁，投诉退款"]

CONFIG = """\
data_dir: "{data_dir}"
storage: {{url: "{url}"}}
http: {{bind: "127.0.0.1:{port}"}}
console: {{public_url: "http://127.0.0.1:{port}"}}
sentiment: {{model: "{model}"}}
sources:
  - name: 客服推送
    type: webhook
    path: /ingest/kefu
    token: {token}
    fields: {{id: id, text: text, author: author, url: url, author_followers: followers, reposts: reposts}}
topics:
  - {{name: {topic}, keywords: [鲜丰奶茶, 鲜丰]}}
  - {{name: {work_topic}, keywords: [星河]}}
rules:
  - {{name: 投诉关键词, type: keyword, terms: [投诉], severity: III}}
channels:
  - {{name: 终端, type: console}}
plans:
  - name: 食品安全舆情预案
    severities: [IV, III]
    steps:
      - {{title: 核实涉事门店与批次，暂停可疑原料, owner: 门店运营, due: 30m}}
      - title: 统一客服口径，回复投诉用户
        owner: 客服主管
        due: 1h
        template: "您好，关于您反映的「{{{{ topic }}}}」问题，我们非常重视，已开展核查。（事件#{{{{ incident_id }}}}）"
      - {{title: 评估是否发布官方声明, owner: 公关经理, due: 2h}}
scheduler: {{rules_interval: 1s}}
"""


def now() -> datetime:
    return datetime.now(timezone.utc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Console:
    """A running daemon serving the console, with what the tests need to know about it."""

    backend: str
    url: str
    ctx: Context
    log: Path
    incident_id: int = 0  # TOPIC's incident, left open
    work_id: int = 0  # WORK_TOPIC's incident, for the end-to-end test
    hostile_id: int = 0  # the stored mention id of the hostile complaint
    sessions: dict[str, dict] = field(default_factory=dict)  # name -> a logged-in browser's storage state

    @property
    def suffix(self) -> str:
        """For artefact names: SQLite's are the plain ones, PostgreSQL's say so."""
        return "" if self.backend == "sqlite" else f"-{self.backend}"

    def push(self, items: list[dict]) -> dict:
        resp = httpx.post(f"{self.url}/ingest/kefu", json={"items": items},
                          headers={"Authorization": f"Bearer {PUSH_TOKEN}"}, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def view(self, incident_id: int | None = None):
        return incident_service.view(self.ctx, incident_id or self.incident_id)


def wait_until(check: Callable[[], object], timeout: float, what: str, log: Path | None = None):
    """Poll ``check`` until it returns something true (a generous wait, never a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            tail = log.read_text(encoding="utf-8", errors="replace")[-4000:] if log and log.exists() else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")
        time.sleep(0.1)


def log_in(page, name: str, password: str = PASSWORD, *, path: str = "/") -> None:
    """Open ``path``, get sent to the login page, log in; back where we were going."""
    page.goto(path)
    page.wait_for_url(re.compile(r"/login\?"))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


# Anything a hostile mention could have turned into live markup, if it were not escaped.
LIVE_MARKUP = """() => {
    const found = [];
    for (const el of document.querySelectorAll('*')) {
        for (const attr of el.attributes) {
            const value = attr.value.trim().toLowerCase();
            if (attr.name.startsWith('on') || value.startsWith('javascript:') || value.startsWith('data:text/html')) {
                found.push(`${el.tagName.toLowerCase()} ${attr.name}=${attr.value}`);
            }
        }
    }
    for (const el of document.querySelectorAll('script:not([src])')) found.push(`inline script: ${el.textContent}`);
    return found;
}"""


def no_horizontal_overflow(page) -> dict:
    """The widths that matter at a phone's width; the caller asserts on them."""
    return page.evaluate("""() => ({
        inner: window.innerWidth,
        doc: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
    })""")
