"""The NLP stage inside the pipeline: a large poll is batch-scored in the worker pool with the
configured model, and every stored mention carries its score, label, model version, topics
(expressions, per-source) and crisis words."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from monitor.app.config import parse_config
from monitor.app.pipeline import Pipeline
from monitor.storage import repo
from monitor.storage.models import MentionRow
from nlp.sentiment import BayesScorer
from tests.factories import T0

TEXTS = [
    "鮮豐奶茶喝完拉肚子，已經投訴到12315，要求退款[怒]",
    "鲜丰奶茶的芋泥波波太好喝了，推荐[赞]",
    "鲜丰奶茶招聘兼职店员",
    "转发微博//@小王:鲜丰奶茶吃出异物，必须曝光",
    "今天天气不错",
]


def test_a_large_poll_is_batch_scored_and_stored_with_topics_and_crisis_words(db, tmp_path):
    path = tmp_path / "feed.jsonl"
    lines = [{"id": f"m{i}", "text": TEXTS[i % len(TEXTS)] + f" #{i}",
              "published_at": (T0 + timedelta(seconds=i)).isoformat()} for i in range(250)]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    config = parse_config(f"""
data_dir: {tmp_path / 'data'}
sentiment: {{workers: 2, batch_min: 100}}
sources:
  - {{name: 导出, type: jsonl, path: {path}, interval: 1m}}
topics:
  - {{name: 鲜丰奶茶, keywords: [鲜丰奶茶], exclude: [招聘]}}
  - {{name: 食品安全, expression: '鲜丰 AND (拉肚子 OR 异物) AND NOT 招聘', sources: [导出]}}
crisis: {{words: [吃出异物]}}
""")
    pipeline = Pipeline(config, db, clock=lambda: T0 + timedelta(minutes=10))
    try:
        report = pipeline.poll("导出")
        assert report.stored == 250 and report.error is None
        assert isinstance(pipeline.scorer, BayesScorer) and pipeline.scorer._pool is not None  # the batch path ran
        single = BayesScorer(pipeline.scorer.model)
    finally:
        pipeline.close()
    assert pipeline.scorer._pool is None  # closed with the pipeline

    with db.session() as s:
        rows = s.scalars(select(MentionRow).order_by(MentionRow.id)).all()
        mentions = repo.mentions_by_ids(s, [r.id for r in rows])
    by_kind = {m.text.rsplit(" #", 1)[0]: m for m in mentions}
    complaint = by_kind[TEXTS[0]]
    assert complaint.label == "negative" and complaint.model_version == single.version
    assert complaint.topics == ("鲜丰奶茶", "食品安全")
    assert complaint.crisis_words == ("拉肚子", "投诉", "12315", "退款")
    praise = by_kind[TEXTS[1]]
    assert praise.label == "positive" and praise.topics == ("鲜丰奶茶",) and praise.crisis_words == ()
    assert by_kind[TEXTS[2]].topics == ()  # the exclusion word
    repost = by_kind[TEXTS[3]]
    assert repost.label == "negative" and repost.crisis_words == ("吃出异物", "曝光")
    assert by_kind[TEXTS[4]].topics == () and by_kind[TEXTS[4]].crisis_words == ()
    for m in mentions:  # the pool's scores are exactly the single-process scores
        assert m.score == single.score(m.text)
