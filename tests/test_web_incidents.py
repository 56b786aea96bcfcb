"""事件 screens over a real uvicorn listener on 127.0.0.1 (httpx, SQLite and PostgreSQL): the queue and its
filters, the incident page, every responder action through HTTP with CSRF (on the timeline under the
logged-in user), refusals as Chinese flash messages, a viewer's 403, hostile mentions rendered inert."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from alerts.incidents import IncidentManager
from alerts.plans import PlanConfig
from monitor.app.service import incidents, silences
from monitor.core.errors import UsageError
from monitor.core.severity import Severity
from monitor.storage import incidents as store
from monitor.storage import repo
from monitor.web.pages.incident_actions import in_chinese
from monitor.web.pages.incidents import ago
from tests.factories import make_match, make_mention
from tests.web_helpers import Console, csrf_of

MIN = timedelta(minutes=1)
PLAN = PlanConfig(name="一般舆情预案", severities=("IV", "III", "II", "I"), steps=[
    {"title": "核实信息来源", "owner": "舆情专员", "due": "30m"},
    {"title": "发布客服回复", "owner": "客服主管", "template": "您好，关于{{ topic }}的反馈我们已收到，正在核实处理。"},
])
ACTIONS = ("ack", "resolve", "note", "assign", "steps/1", "escalate", "silence")


@pytest.fixture
def console(db, tmp_path):
    with Console(db, tmp_path) as c:
        yield c


def open_incident(db, *, topic="品牌A", rule="负面激增", severity=Severity.III, at=None, evidence=()) -> int:
    at = at or datetime.now(timezone.utc) - 12 * MIN
    if evidence:
        with db.session() as s:
            evidence = tuple(repo.insert_mentions(s, list(evidence)))
    match = make_match(topic=topic, rule=rule, severity=severity, at=at, evidence=evidence,
                       reason=f"「{topic}」负面声量激增：近10m负面 12 条（占 80%），为基准的 36 倍",
                       measurement={"current_negative": 12, "current_total": 15, "negative_share": 0.8,
                                    "ratio": 36.36, "window": "10m"})
    [alert] = IncidentManager(db, plans=(PLAN,)).handle([match], at)
    return alert.incident_id


def rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-test="incident-row" data-id="(\d+)"', html)]


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash (?:ok|error)" role="status">([^<]*)</p>', html)


def timeline(console, iid: int) -> list[tuple[str, str]]:
    return [(e.kind, e.actor) for e in incidents.view(console.ctx, iid).events]


# -- the queue ----------------------------------------------------------------------------------------------
def test_queue_lists_active_incidents_first_with_counts_age_and_filters(console, db):
    now = datetime.now(timezone.utc)
    old = open_incident(db, topic="品牌B", at=now - timedelta(days=10))
    resolved = open_incident(db, topic="品牌C", severity=Severity.II, at=now - 5 * MIN)
    incidents.resolve(console.ctx, resolved, actor="小王", now=now)
    acked = open_incident(db, topic="品牌D", severity=Severity.I, at=now - 3 * timedelta(hours=1))
    incidents.acknowledge(console.ctx, acked, actor="小王", now=now)
    fresh = open_incident(db, at=now - 12 * MIN)
    client = console.login("viewer")

    page = client.get("/incidents")
    assert page.status_code == 200
    assert rows(page.text) == [fresh, acked, old, resolved]  # active newest first, then resolved
    assert re.search(r'data-test="count-open">未处理 <b>2</b>', page.text)
    assert re.search(r'data-test="count-acknowledged">处理中 <b>1</b>', page.text)
    assert re.search(r'data-test="count-resolved">已解决 <b>1</b>', page.text)
    assert "12 分钟前" in page.text and "3 小时前" in page.text and "10 天前" in page.text
    assert 'class="badge sev-I"' in page.text and "特别重大（I级）" in page.text
    assert 'hx-get="/incidents?partial=rows" hx-trigger="every 15s"' in page.text

    assert rows(client.get("/incidents?status=resolved").text) == [resolved]
    assert rows(client.get("/incidents?severity=I").text) == [acked]
    assert rows(client.get("/incidents", params={"topic": "品牌B"}).text) == [old]
    recent = client.get("/incidents?since=7d").text
    assert rows(recent) == [fresh, acked, resolved]
    assert re.search(r'data-test="count-open">未处理 <b>1</b>', recent)  # counts under the other filters
    partial = client.get("/incidents?partial=rows&status=open&since=7d")
    assert "<html" not in partial.text and rows(partial.text) == [fresh]
    assert 'hx-get="/incidents?partial=rows&amp;status=open&amp;since=7d"' in partial.text

    bad = client.get("/incidents?status=burning").text
    assert flashes(bad) == ["状态筛选无效，已显示全部事件。"] and len(rows(bad)) == 4


def test_queue_pages_by_fifty(console, db):
    now = datetime.now(timezone.utc)
    for n in range(51):
        open_incident(db, topic=f"话题{n:02d}", at=now - n * MIN)
    client = console.login("viewer")
    first = client.get("/incidents").text
    assert len(rows(first)) == 50 and 'data-test="page-next"' in first
    second = client.get("/incidents?page=2").text
    assert len(rows(second)) == 1 and 'data-test="page-prev"' in second and 'data-test="page-next"' not in second


# -- the incident page -----------------------------------------------------------------------------------
def test_incident_page_says_what_fired_shows_evidence_plan_and_chart(console, db):
    now = datetime.now(timezone.utc)
    iid = open_incident(db, evidence=(make_mention(text="喝完拉肚子，去医院了", author="网友甲", author_followers=123456,
                                                     reposts=88, url="https://weibo.com/1/2", published_at=now - 15 * MIN),))
    client = console.login("viewer")
    page = client.get(f"/incidents/{iid}").text
    assert "「品牌A」负面声量激增：近10m负面 12 条（占 80%），为基准的 36 倍" in page
    assert "<dt>当前窗口负面数</dt><dd>12</dd>" in page and "<dt>倍数</dt><dd>36.36</dd>" in page
    assert "喝完拉肚子，去医院了" in page and "网友甲" in page and "粉丝 12.3万" in page and "转发 88" in page
    assert '<a href="https://weibo.com/1/2" target="_blank" rel="noopener noreferrer nofollow" data-test="evidence-link">' in page
    assert 'data-test="step-1"' in page and 'data-test="copy-reply-2"' in page
    assert "您好，关于品牌A的反馈我们已收到，正在核实处理。" in page
    assert '<script src="/static/console.js" defer></script>' in page
    assert 'src="/incidents/%d/chart.svg"' % iid in page
    chart = client.get(f"/incidents/{iid}/chart.svg")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
    assert chart.text.startswith("<svg") and 'id="negative-share"' in chart.text
    assert client.get("/incidents/999").status_code == 404
    assert client.get("/incidents/999/chart.svg").status_code == 404
    assert client.get("/static/console.js").status_code == 200


def test_hostile_mention_renders_inert(console, db):
    iid = open_incident(db, evidence=(
        make_mention(text="<script>alert('x')</script>难喝", author='<img src=x onerror="alert(1)">',
                     url="javascript:alert(document.cookie)"),
        make_mention(text="正常", url="data:text/html,<script>alert(1)</script>"),
    ))
    page = console.login("viewer").get(f"/incidents/{iid}")
    html = page.text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;难喝" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert 'href="javascript:' not in html and 'href="data:' not in html and 'data-test="evidence-link"' not in html
    assert html.count('data-test="evidence-url"') == 2  # shown as text, no link
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_page_links_ack_puts_the_button_first_but_only_a_post_acknowledges(console, db):
    iid = open_incident(db)
    responder = console.login("responder")
    page = responder.get(f"/incidents/{iid}?ack=1").text
    assert re.search(r'class="ack-form prominent"', page)
    assert 'data-test="ack" autofocus data-focus-on-load>确认处理</button>' in page
    assert incidents.view(console.ctx, iid).incident.status == "open"  # the GET changed nothing
    assert "autofocus" not in responder.get(f"/incidents/{iid}").text
    viewer_page = console.login("viewer").get(f"/incidents/{iid}?ack=1").text
    assert "autofocus" not in viewer_page and 'data-test="ack" disabled>' in viewer_page
    incidents.acknowledge(console.ctx, iid, actor="小李", now=datetime.now(timezone.utc))
    again = responder.get(f"/incidents/{iid}?ack=1").text
    assert 'data-test="ack"' not in again and "此事件已由 小李 于" in again


# -- actions ------------------------------------------------------------------------------------------------
def test_responder_works_an_incident_and_every_action_names_them(console, db):
    iid = open_incident(db)
    client = console.login("responder")
    token = csrf_of(client.get(f"/incidents/{iid}").text)

    def post(action: str, **fields: str) -> list[str]:
        resp = client.post(f"/incidents/{iid}/{action}", data={"csrf_token": token, **fields})
        assert resp.status_code == 303 and resp.headers["location"] == f"/incidents/{iid}", resp.text
        return flashes(client.get(f"/incidents/{iid}").text)

    assert post("escalate") == ["已要求立即升级：通知 所有渠道。后台服务将在 30 秒内发出。"]
    escalated_at = incidents.view(console.ctx, iid).incident.next_escalation_at
    assert escalated_at is not None and escalated_at <= datetime.now(timezone.utc)
    # the daemon's rules tick pages it through the reminder path
    [reminder] = IncidentManager(db).reminders(datetime.now(timezone.utc))
    assert reminder.kind == "reminder" and reminder.incident_id == iid

    assert post("ack") == [f"已确认事件 #{iid}，升级通知已停止。"]
    assert post("note", text="已联系门店核实") == ["备注已添加。"]
    assert post("steps/1", status="done") == ["第 1 步已完成：核实信息来源"]
    assert post("steps/2", status="skipped") == ["第 2 步已跳过：发布客服回复"]
    assert post("steps/2", status="pending") == ["第 2 步已重新打开：发布客服回复"]
    assert post("assign", person="李经理") == ["已指派给 李经理。"]
    [message] = post("silence", duration="4h", reason="发布会期间")
    assert message.startswith("已静默话题「品牌A」至 ")
    assert post("resolve", note="已发布致歉声明") == [f"事件 #{iid} 已解决。"]

    view = incidents.view(console.ctx, iid)
    assert [kind for kind, actor in timeline(console, iid) if actor == "responder"] == [
        "escalate", "acknowledged", "note", "step", "step", "step", "assigned", "silence", "resolved"]
    assert (view.incident.acked_by, view.incident.resolved_by, view.incident.assignee) == (
        "responder", "responder", "李经理")
    assert [(st.status, st.done_by) for st in view.steps] == [("done", "responder"), ("pending", None)]
    [silence] = silences.listing(console.ctx, datetime.now(timezone.utc))
    assert (silence.matcher, silence.reason, silence.created_by) == ({"topic": "品牌A"}, "发布会期间", "responder")
    assert timedelta(hours=3, minutes=59) < silence.ends_at - silence.created_at <= timedelta(hours=4)
    page = client.get(f"/incidents/{iid}").text
    assert page.count('data-actor="responder"') == 9 and "已联系门店核实" in page
    assert 'data-test="assignee">李经理<' in page and "手动升级" in page and "静默话题" in page


def test_refusals_are_shown_in_chinese_on_the_page(console, db):
    iid = open_incident(db)
    client = console.login("responder")
    token = csrf_of(client.get(f"/incidents/{iid}").text)

    def refused(action: str, **fields: str) -> str:
        resp = client.post(f"/incidents/{iid}/{action}", data={"csrf_token": token, **fields})
        assert resp.status_code == 303
        page = client.get(resp.headers["location"])
        assert page.status_code == 200
        [message] = re.findall(r'<p class="flash error" role="status">([^<]*)</p>', page.text)
        return message

    assert refused("note", text="  ") == "备注不能为空。"
    assert refused("assign", person="") == "请填写要指派的人。"
    assert refused("steps/9", status="done") == f"事件 #{iid} 没有第 9 步。"
    assert refused("steps/1", status="burnt") == "步骤状态无效：只能是完成、跳过或重新打开。"
    assert refused("silence", duration="4h", reason=" ") == "静默必须填写原因（它会显示在每条被静默的通知上）。"
    assert refused("silence", duration="99y", reason="x") == "请选择静默时长。"
    incidents.acknowledge(console.ctx, iid, actor="小王", now=datetime.now(timezone.utc))
    assert refused("ack") == f"事件 #{iid} 当前为「处理中」，只有「未处理」的事件可以确认。"
    assert refused("escalate") == f"事件 #{iid} 当前为「处理中」，只有「未处理」的事件可以升级（确认后升级通知即停止）。"
    incidents.resolve(console.ctx, iid, actor="小王", now=datetime.now(timezone.utc))
    assert refused("resolve", note="x") == f"事件 #{iid} 已经解决了。"
    assert refused("steps/1", status="done") == f"事件 #{iid} 已解决，不能再修改指派或预案步骤。"
    assert [actor for _, actor in timeline(console, iid)] == ["system", "system", "小王", "小王"]  # nothing recorded
    assert client.post("/incidents/999/ack", data={"csrf_token": token}).status_code == 404


def test_a_viewer_sees_the_actions_disabled_and_every_post_is_refused(console, db):
    iid = open_incident(db)
    viewer = console.login("viewer")
    page = viewer.get(f"/incidents/{iid}").text
    token = csrf_of(page)
    for hook in ("ack", "note", "assign", "escalate", "silence", "resolve", "step-1"):
        assert re.search(rf'data-test="{hook}"[^>]*disabled', page), hook
    assert 'data-test="copy-reply-2"' in page and "只读账号" in page
    for action in ACTIONS:
        resp = viewer.post(f"/incidents/{iid}/{action}", data={"csrf_token": token, "status": "done", "text": "x",
                                                                 "person": "x", "duration": "1h", "reason": "x"})
        assert resp.status_code == 403 and "权限不足" in resp.text, action
    assert timeline(console, iid) == [("opened", "system"), ("plan", "system")]
    assert silences.listing(console.ctx, datetime.now(timezone.utc)) == []


def test_a_post_without_csrf_changes_nothing(console, db):
    iid = open_incident(db)
    client = console.login("responder")
    assert client.post(f"/incidents/{iid}/ack", data={}).status_code == 403
    assert incidents.view(console.ctx, iid).incident.status == "open"


# -- pieces ---------------------------------------------------------------------------------------------------
def test_ages_and_unknown_refusals():
    at = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)
    assert [ago(at - d, at) for d in (timedelta(seconds=59), 12 * MIN, timedelta(hours=3), timedelta(days=2))] == [
        "刚刚", "12 分钟前", "3 小时前", "2 天前"]
    assert ago(None, at) == "-"
    assert in_chinese(UsageError("something new")) == "无法完成：something new"


def test_escalate_now_is_refused_when_every_step_was_paged(console, db):
    iid = open_incident(db)
    now = datetime.now(timezone.utc)
    manager = IncidentManager(db)
    for _ in range(5):  # the default schedule: the first page, then realert_limit (3) reminders
        manager.reminders(now + timedelta(days=1))
        with db.session() as s:
            if store.get(s, iid).next_escalation_at is None:
                break
            store.update(s, iid, next_escalation_at=now)
    assert incidents.detail(console.ctx, iid).next_page is None
    with pytest.raises(UsageError, match="has paged every step"):
        incidents.escalate_now(console.ctx, iid, actor="小王", now=now)
    page = console.login("responder").get(f"/incidents/{iid}").text
    assert "升级策略的每一级都已通知过" in page and re.search(r'data-test="escalate"[^>]*disabled', page)


def test_incident_page_says_what_people_are_angry_about_escaped(console, db):
    now = datetime.now(timezone.utc)
    with db.session() as s:
        repo.insert_mentions(s, [make_mention(text=f"日常聊天第{i}条，新品不错", label="neutral", score=0.6,
                                              published_at=now - timedelta(hours=5) + i * MIN) for i in range(60)])
        repo.insert_mentions(s, [make_mention(text=f"喝完拉肚子，<b>退款</b>！#{i}", author="<i>大V</i>",
                                              author_followers=2_000_000, published_at=now - i * MIN)
                                 for i in range(8)])
    iid = open_incident(db, at=now)
    html = console.login("viewer").get(f"/incidents/{iid}").text
    assert 'data-test="summary"' in html and "主要诉求：拉肚子 ×8" in html
    assert "舆情热度：" in html and "影响最大：&lt;i&gt;大V&lt;/i&gt;" in html and "<i>大V</i>" not in html
