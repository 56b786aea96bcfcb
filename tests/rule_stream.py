"""A recorded stream for the rule engine: four days of three topics with crises, fed as the daemon feeds it.

Deterministic (seeded): a daily rhythm of mentions, negatives at a base share, two negative
bursts (one with crisis words), a 大V post, keyword hits, late and out-of-order arrivals,
a restricted platform. :func:`run` feeds it to a :class:`~alerts.engine.RuleEngine` with every
rule type — a batch per poll (mentions arrive up to three minutes after publication) plus a
tick every minute — and answers every match as a plain, comparable dict.

``python -m tests.rule_stream --write`` records the decisions in
``fixtures/replay/rule_decisions.json``; ``tests/test_rule_stream.py`` checks that the engine
still decides exactly the same (the rules' internals may change, their decisions may not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from alerts.engine import RuleEngine
from alerts.rules.base import Match
from alerts.rules.registry import RULES
from monitor.core.domain import Mention

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "replay" / "rule_decisions.json"
START = datetime(2024, 6, 8, 16, 0, tzinfo=timezone.utc)  # 00:00 in Asia/Shanghai
DAYS = 4
TOPICS = ("鲜丰奶茶", "云帆快递", "星河手机")
POSITIVE = ["新品很好喝，推荐", "物流很快，第二天就到了", "拍照效果很好，夜景清晰", "店员很热情，点赞"]
NEGATIVE = ["客服电话打了三次都没人接", "退款一周了还没到账", "包装破损还不给换", "价格比上周贵了一倍"]
CRISIS = ["喝完拉肚子，怀疑食物中毒", "充电时手机爆炸了", "快递车起火，包裹全烧了"]

RULES_CONFIG = [
    {"name": "负面激增", "type": "negative_spike", "reference": "2h", "seasonal_days": 1, "min_current": 6},
    {"name": "负面激增-长窗", "type": "negative_spike", "bucket": "10m", "window": "30m", "reference": "3h",
     "seasonal_days": 2, "min_current": 10, "confirm": 1, "z_immediate": None, "topics": ["鲜丰奶茶"]},
    {"name": "负面占比", "type": "negative_share", "window": "30m", "min_share": 0.5, "min_total": 15},
    {"name": "负面频繁", "type": "frequency", "count": 12, "window": "10m", "labels": ["negative"]},
    {"name": "退款频繁", "type": "frequency", "count": 4, "window": "20m", "terms": ["退款"],
     "platforms": ["weibo"]},
    {"name": "低分频繁", "type": "frequency", "count": 8, "window": "15m", "max_score": 0.2},
    {"name": "大V负面", "type": "influencer", "min_followers": 100000},
    {"name": "危机词", "type": "keyword", "terms": {"爆炸": "II", "起火": "III"}},
]


def rule_configs():
    return [RULES.get(c["type"]).config_model.model_validate(c) for c in RULES_CONFIG]


def _rate(topic_i: int, at: datetime) -> float:
    """Mentions per minute: a daily rhythm (quiet nights, loud evenings), one scale per topic."""
    hour = ((at - START).total_seconds() / 3600) % 24
    return (0.4 + 0.3 * topic_i) * (1.0 + 0.8 * math.sin((hour - 9) / 24 * 2 * math.pi))


def _bursts() -> list[tuple[str, datetime, timedelta, float, list[str]]]:
    """(topic, start, length, extra negatives per minute, texts)."""
    return [
        (TOPICS[0], START + timedelta(days=2, hours=20), timedelta(minutes=50), 3.0, CRISIS[:1] + NEGATIVE),
        (TOPICS[1], START + timedelta(days=3, hours=11), timedelta(minutes=25), 6.0, NEGATIVE[:2]),
        (TOPICS[2], START + timedelta(days=3, hours=19, minutes=30), timedelta(minutes=15), 9.0,
         CRISIS[1:2] + NEGATIVE),
        (TOPICS[0], START + timedelta(days=3, hours=2), timedelta(minutes=40), 0.6, NEGATIVE[1:2]),
    ]


def mentions(seed: int = 20241130) -> list[tuple[datetime, Mention]]:
    """(arrival time, mention) for the whole stream, in arrival order."""
    rnd = random.Random(seed)
    out: list[tuple[datetime, Mention]] = []
    n = 0

    def emit(topic: str, at: datetime, text: str, score: float, **extra) -> None:
        nonlocal n
        n += 1
        platform = extra.pop("platform", rnd.choice(("weibo", "weibo", "douyin")))
        label = "negative" if score < 0.4 else "positive" if score > 0.6 else "neutral"
        if rnd.random() < 0.03:
            label, score = None, None  # an unscored mention (the scorer was down)
        delay = timedelta(seconds=rnd.randint(5, 180))
        if rnd.random() < 0.01:
            delay += timedelta(minutes=rnd.randint(20, 90))  # a late backlog item
        body = f"{topic}{text}#{n}"
        m = Mention(source=f"src{n % 5}", external_id=f"m{n}", text=body, raw_text=body, published_at=at,
                    fetched_at=at + delay, content_hash=hashlib.sha256(body.encode()).hexdigest(),
                    author=f"user{n % 997}", score=score, label=label, topics=(topic,), platform=platform,
                    crisis_words=tuple(w for w in ("中毒", "爆炸", "起火") if w in text), **extra)
        out.append((at + delay, m))

    minutes = DAYS * 24 * 60
    for i, topic in enumerate(TOPICS):
        for minute in range(minutes):
            at = START + timedelta(minutes=minute)
            lam = _rate(i, at)
            for _ in range(_poisson(rnd, lam)):
                published = at + timedelta(seconds=rnd.randint(0, 59))
                if rnd.random() < 0.25:
                    emit(topic, published, rnd.choice(NEGATIVE), round(rnd.uniform(0.02, 0.35), 3))
                else:
                    emit(topic, published, rnd.choice(POSITIVE + ["还行吧"]), round(rnd.uniform(0.45, 0.98), 3))
    for topic, start, length, per_minute, texts in _bursts():
        for minute in range(int(length / timedelta(minutes=1))):
            at = start + timedelta(minutes=minute)
            for _ in range(_poisson(rnd, per_minute)):
                emit(topic, at + timedelta(seconds=rnd.randint(0, 59)), rnd.choice(texts),
                     round(rnd.uniform(0.01, 0.2), 3))
    emit(TOPICS[2], START + timedelta(days=3, hours=19, minutes=40), "这手机质量太差，退货！", 0.05,
         author_followers=2_300_000, platform="weibo")
    emit(TOPICS[1], START + timedelta(days=1, hours=15), "快递又丢件了", 0.1, author_followers=150_000)
    out.sort(key=lambda e: (e[0], e[1].external_id))
    return out


def _poisson(rnd: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rnd.random()
        if p <= limit:
            return k
        k += 1


def as_dict(match: Match) -> dict:
    return {"kind": match.kind, "rule": match.rule, "topic": match.topic, "at": match.at.isoformat(),
            "severity": match.severity.value, "numbers": _plain(match.numbers), "reason": match.reason,
            "evidence": [m.external_id for m in match.evidence]}


def _plain(value):
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def run(stream: list[tuple[datetime, Mention]] | None = None, *, poll: timedelta = timedelta(minutes=1)) -> list[dict]:
    """Every match the engine answers over the stream: a poll batch, then a tick, each ``poll``."""
    stream = stream if stream is not None else mentions()
    engine = RuleEngine(rule_configs(), TOPICS, started_at=START)
    decisions: list[dict] = []
    i, now, end = 0, START + poll, stream[-1][0] + timedelta(hours=2)
    while now <= end:
        batch = []
        while i < len(stream) and stream[i][0] <= now:
            batch.append(stream[i][1])
            i += 1
        decisions += [as_dict(m) for m in engine.add_data(batch, now)]
        decisions += [as_dict(m) for m in engine.tick(now + poll / 2)]
        now += poll
    return decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"record the decisions in {GOLDEN}")
    args = parser.parse_args()
    decisions = run()
    print(f"{len(decisions)} decisions; by rule:",
          {r: sum(1 for d in decisions if d['rule'] == r) for r in dict.fromkeys(d['rule'] for d in decisions)})
    if args.write:
        GOLDEN.write_text(json.dumps(decisions, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
