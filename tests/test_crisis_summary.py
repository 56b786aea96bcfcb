"""Pages and incidents say what people are angry about (主要诉求), how much weight is behind it
(舆情热度) and what spreads most (最大传播) — read from the stored mentions when the incident pages."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from alerts.crisis_summary import CrisisSummary
from alerts.incidents import IncidentManager
from alerts.channels.webhook import WebhookChannel, WebhookConfig
from alerts.message import render_markdown
from monitor.core.severity import Severity
from monitor.storage import incidents as store
from monitor.storage import repo
from tests.factories import T0, make_match, make_mention

OVERLAP = Path(__file__).resolve().parents[1] / "fixtures" / "themes" / "overlap.jsonl"
TOPIC = "禾丰米线"
MIN = timedelta(minutes=1)


def store_overlap(db):
    rows = [json.loads(line) for line in OVERLAP.read_text(encoding="utf-8").splitlines() if line.strip()]
    baseline = [r for r in rows if r["set"] == "baseline"]
    incident = [r for r in rows if r["set"] == "incident"]
    mentions = [make_mention(text=r["text"], topics=(TOPIC,), label="neutral", score=0.5,
                             published_at=T0 - timedelta(hours=20) + i * MIN) for i, r in enumerate(baseline)]
    mentions += [make_mention(text=r["text"], topics=(TOPIC,), published_at=T0 - 20 * MIN + (i % 20) * MIN)
                 for i, r in enumerate(incident)]
    mentions[-1] = replace(mentions[-1], author="美食大V", author_followers=2_000_000, reposts=5000)
    with db.session() as s:
        repo.insert_mentions(s, mentions)


def test_a_page_names_both_overlapping_complaints_the_heat_and_its_loudest_voice(db):
    store_overlap(db)
    manager = IncidentManager(db, topic_keywords={TOPIC: (TOPIC, "禾丰")})
    [page] = manager.handle([make_match(topic=TOPIC, severity=Severity.III)], T0)

    summary = CrisisSummary.from_json(page.summary)
    terms = [t for t, _ in summary.themes]
    assert any(t in ("拉肚子", "食物中毒", "上吐下泻") for t in terms[:4]), terms
    assert any(t in ("涨价", "太贵", "份量缩水") for t in terms[:4]), terms
    assert not any("禾丰" in t for t in terms) and "外卖" not in terms  # the brand, an everyday word
    assert summary.voices[0][0] == "美食大V"  # one big account outweighs any single anonymous voice
    text = render_markdown(page)
    assert "- 主要诉求：" in text and "- 舆情热度：" in text and "影响最大：美食大V" in text
    with db.session() as s:  # kept on the incident for the console and reminders
        assert store.get(s, page.incident_id).summary == page.summary
    channel = WebhookChannel(WebhookConfig(name="ops", type="webhook", url="http://127.0.0.1:9/hook"))
    document = channel.build_payload(page)  # the structured summary for machines, the lines in `text`
    assert document["summary"]["themes"][0][0] == terms[0] and "主要诉求：" in document["text"]


def test_strangers_words_in_the_summary_cannot_make_links_in_a_chat_message(db):
    evil = "[确认处理](http://evil.example/x) 拉肚子"
    with db.session() as s:
        repo.insert_mentions(s, [make_mention(text=f"{evil} #{i}", topics=("品牌A",), author="[点我](http://evil.example)",
                                              published_at=T0 - i * MIN) for i in range(5)])
    [page] = IncidentManager(db).handle([make_match()], T0)
    text = render_markdown(page)
    assert "](http://evil.example" not in text
