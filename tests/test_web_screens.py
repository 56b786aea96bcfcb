"""The console's 提及, 数据源, 静默, 通知 and 复盘 screens over a real uvicorn listener on 127.0.0.1
(httpx, SQLite and PostgreSQL): they render for a viewer, search filters and pages, a relabel and a
silence name the logged-in user, roles are enforced, hostile mention content renders inert, and the
reports download with the right content type."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from alerts.incidents import IncidentManager
from alerts.rules.base import Match
from monitor.core.severity import Severity
from monitor.storage import deliveries, repo
from monitor.storage.models import SentimentFeedbackRow, SilenceRow
from tests.factories import make_mention, unstaged
from tests.web_helpers import Console

NOW = datetime.now(timezone.utc).replace(microsecond=0)
MIN = timedelta(minutes=1)
TOPIC, OTHER = "鲜丰奶茶", "别的品牌"
HOSTILE_TEXT = '鲜丰奶茶<script>alert("x")</script>喝坏肚子'
HOSTILE_AUTHOR = '<img src=x onerror=alert(1)>'
CONFIG = f"""
topics:
  - name: {TOPIC}
    keywords: [鲜丰]
  - name: {OTHER}
    keywords: [别的]
sources:
  - name: weibo
    type: rss
    url: https://rsshub.example.com/weibo
    expect_every: 1h
  - name: forum
    type: rss
    url: https://forum.example.com/feed
  - name: tickets
    type: rss
    url: https://tickets.example.com/feed
  - name: never
    type: rss
    url: https://never.example.com/feed
rules:
  - name: 负面激增
    type: negative_spike
"""


def seed(db) -> dict:
    """Mentions on two topics and sources (a story with two reposts, a hostile one), an incident with
    one page failed on one channel and another delivered, and source states."""
    calm = [make_mention(published_at=NOW - 3 * 60 * MIN + k * MIN, topics=(TOPIC,), source="forum",
                         label="positive", score=0.9, text=f"鲜丰奶茶真好喝{k}") for k in range(55)]
    angry = [make_mention(published_at=NOW - 30 * MIN + k * MIN, topics=(TOPIC,), label="negative", score=0.05,
                          text=f"鲜丰奶茶喝坏肚子{k}") for k in range(5)]
    other = [make_mention(published_at=NOW - 20 * MIN, topics=(OTHER,), label="neutral", score=0.5,
                          text="别的品牌还行")]
    hostile = make_mention(published_at=NOW - 10 * MIN, topics=(TOPIC,), label="negative", score=0.01,
                           text=HOSTILE_TEXT, raw_text=HOSTILE_TEXT, author=HOSTILE_AUTHOR, url="javascript:alert(1)",
                           title="<b>标题</b>")
    with db.session() as s:
        stored = repo.insert_mentions(s, [*calm, *angry, *other, hostile])
    root = next(m for m in stored if m.text == angry[0].text)
    copies = [make_mention(published_at=NOW - 29 * MIN + k * MIN, topics=(TOPIC,), label="negative", score=0.1,
                           text="转发：" + root.text, duplicate_of=(root.source, root.external_id), dup_kind="near")
              for k in range(2)]
    with db.session() as s:
        reposts = repo.insert_mentions(s, copies)
        repo.record_poll_success(s, "weibo", "rss", repo.SourceState(), NOW - 5 * MIN, 3)
        repo.record_poll_success(s, "forum", "rss", repo.SourceState(), NOW - 5 * MIN, 1)
        repo.record_poll_failure(s, "forum", "rss", "timeout <b>after</b> 10s", NOW - MIN)
        for k in range(3):
            repo.record_poll_failure(s, "tickets", "rss", f"HTTP 503 <script>x</script> #{k}", NOW - (3 - k) * MIN)

    manager = IncidentManager(db)
    evidence = (next(m for m in stored if m.text == HOSTILE_TEXT), root)
    match = Match("firing", "负面激增", "negative_spike", TOPIC, NOW - 25 * MIN, Severity.III,
                  "「鲜丰奶茶」负面声量激增：近10m负面 6 条", {"current_negative": 6, "window": "10m"}, evidence)
    [alert] = manager.handle([match], NOW - 25 * MIN)
    alert = unstaged(db, alert)  # the pages below stand for it
    iid = alert.incident_id
    alert_doc = {"title": "「鲜丰奶茶」负面激增", "topic": TOPIC, "severity": "III"}
    with db.session() as s:
        ok = deliveries.enqueue(s, incident_id=iid, alert_kind="firing", dedup_key="k1", alert=alert_doc,
                                channels=["值班群"], now=NOW - 25 * MIN, claim_until=NOW - 24 * MIN)
        deliveries.record_attempt(s, ok[0], status="sent", attempt=1, error=None, retry_at=None, now=NOW - 25 * MIN)
        deliveries.settle_page(s, ok[0].page_id, "delivered", NOW - 25 * MIN)
        bad = deliveries.enqueue(s, incident_id=iid, alert_kind="escalated", dedup_key="k2", alert=alert_doc,
                                 channels=["值班群", "短信"], now=NOW - 15 * MIN, claim_until=NOW - 14 * MIN)
        deliveries.record_attempt(s, bad[0], status="sent", attempt=1, error=None, retry_at=None, now=NOW - 15 * MIN)
        deliveries.record_attempt(s, bad[1], status="failed", attempt=1, error="HTTP 500 <html>", retry_at=NOW,
                                  now=NOW - 15 * MIN)
        deliveries.record_attempt(s, bad[1], status="failed", attempt=2, error="HTTP 500 <html>", retry_at=None,
                                  now=NOW - 10 * MIN)
        deliveries.settle_page(s, bad[0].page_id, "delivered", NOW - 15 * MIN)
    return {"incident": iid, "root": root, "reposts": reposts, "hostile": evidence[0], "failed_page": bad[0].page_id,
            "ok_page": ok[0].page_id}


@pytest.fixture
def console(db, tmp_path):
    with Console(db, tmp_path, config=CONFIG) as c:
        c.seeded = seed(db)
        yield c


def rows(html: str, hook: str) -> list[str]:
    return re.findall(rf'data-test="{hook}" data-id="(\d+)"', html)


def test_every_screen_renders_for_a_viewer(console):
    client, seeded = console.login("viewer"), console.seeded
    iid, day = seeded["incident"], NOW.astimezone().date()
    for path, hook in [("/mentions", "mention-row"), (f"/mentions/{seeded['reposts'][0].id}", "story"),
                       ("/sources", "source-row"), ("/silences", "silence-empty"), ("/notifications", "page-row"),
                       ("/reports", "report-recent"), (f"/reports/incident/{iid}", "report"),
                       (f"/reports/daily?date={day}", "report"),
                       (f"/reports/period?since={day - timedelta(days=1)}&until={day}", "report")]:
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.text[:300])
        assert f'data-test="{hook}"' in resp.text, path
        assert 'data-test="label-' not in resp.text and 'data-test="silence-add"' not in resp.text, path
    assert client.get("/mentions/999999").status_code == 404
    assert client.get("/reports/incident/999999").status_code == 404


def test_mention_search_filters_and_pages(console):
    client = console.login("viewer")

    def found(**params) -> list[str]:
        resp = client.get("/mentions", params=params)
        assert resp.status_code == 200, resp.text[:300]
        return rows(resp.text, "mention-row")

    everything = found()
    assert len(everything) == 50  # a page
    assert len(found(topic=OTHER)) == 1
    assert len(found(source="forum")) == 50 and len(found(source="forum", label="negative")) == 0
    assert len(found(label="negative", topic=TOPIC)) == 5 + 1 + 2  # the angry ones, the hostile one, the reposts
    assert found(q="喝坏肚子4") == [str(console.seeded["root"].id + 4)]
    assert len(found(q="%")) == 0  # a literal percent sign, not a wildcard
    assert found(q="SCRIPT") == [str(console.seeded["hostile"].id)]  # Latin letters: case-insensitive
    assert len(found(since="1h")) == 5 + 1 + 1 + 2
    until = (NOW - 2 * 60 * MIN).astimezone().replace(tzinfo=None)  # the config zone is Asia/Shanghai
    first = found(until=until.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M"))
    assert 0 < len(first) < 55

    newest = found(label="negative")
    assert newest[0] == str(console.seeded["hostile"].id)  # newest first
    page = client.get("/mentions", params={"source": "forum"})
    next_url = re.search(r'href="([^"]+)" data-test="page-next"', page.text).group(1).replace("&amp;", "&")
    rest = rows(client.get(next_url).text, "mention-row")
    assert len(rest) == 5 and not set(rest) & set(rows(page.text, "mention-row"))

    bad = client.get("/mentions", params={"since": "yesterday-ish"})
    assert bad.status_code == 400 and "时间格式无效" in bad.text


def test_a_mention_shows_its_story(console):
    client, seeded = console.login("viewer"), console.seeded
    root, reposts = seeded["root"], seeded["reposts"]
    page = client.get(f"/mentions/{reposts[0].id}").text
    assert 'data-repost-count="2"' in page
    assert f'data-test="story-root" data-id="{root.id}"' in page
    assert sorted(rows(page, "story-repost")) == sorted(str(r.id) for r in reposts)
    assert 'data-test="story-root"' not in client.get(f"/mentions/{root.id}").text  # a root is its own story


def test_relabel_records_the_actor(console, db):
    mention_id = console.seeded["root"].id
    assert console.login("viewer").post(f"/mentions/{mention_id}/label",
                                         data=console.form(console.login("viewer"), label="positive")).status_code == 403
    client = console.login("responder")
    resp = client.post(f"/mentions/{mention_id}/label", data=console.form(client, label="positive"))
    assert resp.status_code == 303 and resp.headers["location"] == f"/mentions/{mention_id}"
    page = client.get(f"/mentions/{mention_id}").text
    assert "已将提及" in page and 'data-test="corrected-by"' in page and "由 responder" in page
    assert re.search(r'data-test="mention-label" data-label="positive"', page)
    with db.session() as s:
        [fb] = s.query(SentimentFeedbackRow).filter_by(mention_id=mention_id).all()
        assert (fb.label, fb.actor, fb.previous_label) == ("positive", "responder", "negative")

    # htmx: the label block comes back in place, from a search page (next= keeps the page to return to)
    resp = client.post(f"/mentions/{mention_id}/label", headers={"HX-Request": "true"},
                       data=console.form(client, label="neutral", next="/mentions?label=negative"))
    assert resp.status_code == 200 and resp.text.lstrip().startswith("<div class=\"label-box\"")
    assert 'data-label="neutral"' in resp.text
    resp = client.post(f"/mentions/{mention_id}/label", data=console.form(client, label="bogus"))
    assert resp.status_code == 303
    assert "标签无效" in client.get(resp.headers["location"]).text
    assert client.post("/mentions/999999/label", data=console.form(client, label="positive")).status_code == 404


def test_silence_add_and_expire_as_admin_refused_for_a_responder(console, db):
    responder = console.login("responder")
    assert responder.post("/silences", data=console.form(responder, topic=TOPIC, duration="2h",
                                                          reason="发布会")).status_code == 403
    admin = console.login("admin")
    missing = admin.post("/silences", data=console.form(admin, topic=TOPIC, duration="2h", reason=" "))
    assert missing.status_code == 400 and "请填写静默原因" in missing.text and f'value="{TOPIC}"' in missing.text
    resp = admin.post("/silences", data=console.form(admin, topic=TOPIC, severity="III", duration="2h",
                                                     reason="新品发布会期间 <现场>"))
    assert resp.status_code == 303
    page = admin.get("/silences").text
    [sid] = rows(page, "silence-row")
    assert "已添加静默" in page and "新品发布会期间 &lt;现场&gt;" in page and 'data-test="silence-expire"' in page
    with db.session() as s:
        row = s.get(SilenceRow, int(sid))
        assert row.matcher == {"topic": TOPIC, "severity": "III"} and row.created_by == "admin"
        assert timedelta(minutes=119) < row.ends_at - row.created_at <= timedelta(hours=2)
    assert 'data-test="silence-expire"' not in responder.get("/silences").text
    assert responder.post(f"/silences/{sid}/expire", data=console.form(responder)).status_code == 403

    assert admin.post(f"/silences/{sid}/expire", data=console.form(admin)).status_code == 303
    assert rows(admin.get("/silences").text, "silence-row") == []
    listed = admin.get("/silences?all=1").text
    assert rows(listed, "silence-row") == [sid] and 'data-state="expired"' in listed
    again = admin.post(f"/silences/{sid}/expire", data=console.form(admin))
    assert "已经结束" in admin.get(again.headers["location"]).text

    until = (NOW + 3 * 60 * MIN).astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M")
    assert admin.post("/silences", data=console.form(admin, rule="负面激增", duration="2h", until=until,
                                                     reason="夜间")).status_code == 303
    with db.session() as s:
        row = s.query(SilenceRow).filter(SilenceRow.id != int(sid)).one()
        assert row.ends_at - NOW > timedelta(hours=2, minutes=50)  # the end time wins over the duration


def test_hostile_mention_content_renders_inert(console):
    client, hostile = console.login("responder"), console.seeded["hostile"]
    pages = [client.get("/mentions", params={"q": "script"}), client.get(f"/mentions/{hostile.id}"),
             client.get(f"/reports/incident/{console.seeded['incident']}"), client.get("/sources")]
    for resp in pages:
        assert resp.status_code == 200
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        body = resp.text
        assert "<script>alert" not in body and "<script>x" not in body and "<img src=x" not in body
        assert not re.search(r'href\s*=\s*"\s*javascript:', body, re.I)
    listing, detail = pages[0].text, pages[1].text
    assert rows(listing, "mention-row") == [str(hostile.id)]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in detail and "&lt;img src=x onerror=alert(1)&gt;" in detail
    assert 'data-test="mention-url"' in detail and "javascript:alert(1)" in detail  # shown as text only
    assert "&lt;b&gt;标题&lt;/b&gt;" in detail
    assert "HTTP 503 &lt;script&gt;x&lt;/script&gt; #2" in pages[3].text


def test_reports_download_with_the_right_content_type(console):
    client, iid = console.login("viewer"), console.seeded["incident"]
    page = client.get(f"/reports/incident/{iid}").text
    assert "<html" not in page[page.index('data-test="report"'):]  # the body only, inside the console page
    assert f'href="/reports/incident/{iid}?download=md"' in page and "<svg" in page
    for fmt, media, text in [("html", "text/html", "<!DOCTYPE html>"), ("md", "text/markdown", f"# 事件复盘 #{iid}"),
                             ("svg", "image/svg+xml", "<svg")]:
        resp = client.get(f"/reports/incident/{iid}", params={"download": fmt})
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(media), fmt
        assert resp.headers["content-disposition"] == f'attachment; filename="incident-{iid}.{fmt}"'
        assert text in resp.text
    day = NOW.astimezone(timezone(timedelta(hours=8))).date()
    resp = client.get("/reports/daily", params={"date": str(day), "download": "md"})
    assert resp.headers["content-type"].startswith("text/markdown")
    assert resp.headers["content-disposition"] == f'attachment; filename="daily-{day}.md"'
    resp = client.get("/reports/period", params={"since": str(day - timedelta(days=2)), "until": str(day),
                                                 "download": "html"})
    assert resp.headers["content-disposition"] == f'attachment; filename="report-{day - timedelta(days=2)}_{day}.html"'
    assert client.get(f"/reports/incident/{iid}", params={"download": "exe"}).status_code == 400
    empty = client.get("/reports/daily", params={"date": "2001-01-01"})
    assert empty.status_code == 400 and "没有数据" in empty.text
    assert client.get("/reports", params={"id": f"#{iid}"}).headers["location"] == f"/reports/incident/{iid}"


def test_notifications_list_failed_pages_first_with_every_attempt(console):
    client, seeded = console.login("viewer"), console.seeded
    page = client.get("/notifications").text
    assert rows(page, "page-row") == [str(seeded["failed_page"]), str(seeded["ok_page"])]
    failed = page[:page.index(f'data-id="{seeded["ok_page"]}"')]
    assert failed.count('data-test="attempt" data-status="failed"') == 2
    assert 'data-channel="短信" data-status="failed"' in failed and "HTTP 500 &lt;html&gt;" in failed
    assert rows(client.get("/notifications?status=failed").text, "page-row") == [str(seeded["failed_page"])]
    assert client.get("/notifications?status=nonsense").status_code == 200


def test_sources_show_health_in_words(console):
    page = console.login("viewer").get("/sources").text
    states = dict(re.findall(r'data-name="([^"]+)" data-state="([^"]+)"', page))
    assert states == {"weibo": "ok", "forum": "erroring", "tickets": "failing", "never": "never polled"}
    assert list(states)[0] == "tickets"  # worst first
    for label in ("正常", "出错", "故障", "从未轮询"):
        assert label in page
    assert "timeout &lt;b&gt;after&lt;/b&gt; 10s" in page
