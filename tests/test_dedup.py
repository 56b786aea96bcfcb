"""Dedup: exact copies across sources and near-duplicate reposts become one story with a
repost count — every copy still stored and counted toward volume."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from monitor.storage.models import MentionRow
import random

from sources.dedup import Deduper, fingerprints, hamming, repost_core, to_signed, to_unsigned
from sources.normalise import content_hash
from tests.factories import T0, make_mention
from tests.servers import LocalServer, Response
from tests.source_helpers import Clock, make_pipeline

POST = "星河手机X5充电半小时就烫手，售后还说正常？客服电话打了三次都没人接，太失望了"
REPOSTS = [
    "同感！我的也是 //@数码小白兔:" + POST,
    "转发 //@路过的猫:同感！我的也是 //@数码小白兔:" + POST,
    POST + "！！转发让更多人看到",
    "#星河手机发热# " + POST,
]
EDITED = [  # copies that are not reposts: words around it, a clause inserted, a feed's truncated description
    "【转】" + POST + " via 微博",
    POST.replace("烫手，", "烫手，说真的，"),
    POST[:-5] + "…",
]
DIFFERENT = [
    "星河手机X5拍照效果很好，夜景清晰，续航也不错，推荐购买",
    "星河手机X5充电半小时就烫手，退货被拒，客服态度极差",
    "我的星河手机X5也是充电发烫，售后电话一直打不通，失望",
]


def mention(text: str, **kw):
    return make_mention(text=text, content_hash=content_hash(text), **kw)


def test_repost_core_is_the_reposted_original():
    assert repost_core("同感 //@甲:说一句 //@乙：原文在这里") == "原文在这里"
    assert repost_core("没有转发链的普通微博") == "没有转发链的普通微博"
    assert repost_core("转发微博 //@甲:转发微博") == "转发微博 //@甲:转发微博"  # nothing but filler


def test_fingerprint_basics():
    [a] = fingerprints([POST])
    assert a == fingerprints([POST])[0] == Deduper().fingerprint(POST) and 0 <= a < 2 ** 64
    assert to_unsigned(to_signed(a)) == a and -(2 ** 63) <= to_signed(a) < 2 ** 63
    assert hamming(a, a) == 0 and hamming(0, 2 ** 64 - 1) == 64
    # a batch gives each text the fingerprint it has alone: no bigram spans two texts
    texts = [POST, *DIFFERENT, "太差了！", "", "A" * 500, *REPOSTS, *EDITED]
    assert fingerprints(texts) == [fingerprints([t])[0] for t in texts]
    # emoticons, punctuation and case are not content
    assert fingerprints([POST + "[怒][怒]"]) == [a]
    assert fingerprints([POST.replace("X5", "x5").replace("，", ",")]) == [a]
    # each bigram counts once: a run of 哈 cannot outweigh the post
    assert fingerprints([POST + "哈" * 3]) == fingerprints([POST + "哈" * 300])
    # too few distinct bigrams to compare: no fingerprint
    assert fingerprints(["太差了！", "哈" * 50, "[怒]" * 20, ""], min_tokens=10) == [None] * 4


def test_reposts_and_copies_join_the_first_story_different_posts_do_not():
    d = Deduper()
    root = mention(POST, source="weibo", external_id="root")
    copy = mention(POST, source="rsshub-mirror", external_id="copy")  # same text, another source
    reposts = [mention(t, external_id=f"r{i}") for i, t in enumerate(REPOSTS + EDITED)]
    others = [mention(t, external_id=f"o{i}") for i, t in enumerate(DIFFERENT)]
    linked = d.link([root, copy, *reposts, *others])
    by_id = {m.external_id: m for m in linked}
    assert by_id["root"].duplicate_of is None and by_id["root"].simhash is not None
    assert (by_id["copy"].duplicate_of, by_id["copy"].dup_kind) == (("weibo", "root"), "exact")
    for i, text in enumerate(REPOSTS + EDITED):
        assert (by_id[f"r{i}"].duplicate_of, by_id[f"r{i}"].dup_kind) == (("weibo", "root"), "near"), text
    assert all(by_id[f"o{i}"].duplicate_of is None for i in range(len(DIFFERENT)))


def test_short_generic_texts_are_independent_voices():
    d = Deduper()
    linked = d.link([mention("太差了！", external_id=f"s{i}") for i in range(5)])
    assert all(m.duplicate_of is None for m in linked)


def test_window_and_capacity_bound_the_index():
    d = Deduper(window=timedelta(hours=1), max_entries=3)
    d.link([mention(POST, external_id="old", published_at=T0)])
    [late] = d.link([mention(POST, external_id="late", published_at=T0 + timedelta(hours=2))])
    assert late.duplicate_of is None  # the first one is outside the window
    d.link([mention(t, external_id=f"x{i}", published_at=T0 + timedelta(hours=2)) for i, t in enumerate(DIFFERENT)])
    assert len(d) == 3


def random_posts(n: int, seed: int = 5) -> list[str]:
    """Unrelated texts: 30 characters drawn from 500 common ones (fingerprints far apart)."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 500)]
    return ["".join(rng.choice(alphabet) for _ in range(30)) for _ in range(n)]


def test_the_index_grows_wraps_and_forgets_oldest_first():
    posts = random_posts(2000)
    d = Deduper(max_entries=1500)  # grows past its first 1024 slots, then reuses the oldest
    d.link([mention(t, external_id=f"p{i}") for i, t in enumerate(posts)])
    assert len(d) == 1500
    kept, forgotten = posts[600], posts[400]  # the last 1500 (p500…p1999) are kept
    [near, alone] = d.link([mention("转发让更多人看到 " + kept, external_id="near"),
                            mention("转发让更多人看到 " + forgotten, external_id="alone")])
    assert (near.duplicate_of, near.dup_kind) == (("weibo", "p600"), "near")
    assert alone.duplicate_of is None


def test_a_forgotten_entry_never_matches_even_before_its_slot_is_reused():
    d = Deduper(max_entries=2)
    d.link([mention(POST, external_id="root"), mention("太差了！", external_id="s1"),
            mention("好评！", external_id="s2")])  # two short texts push the root out
    [late] = d.link([mention(REPOSTS[2], external_id="late")])
    assert late.duplicate_of is None


def test_loaded_fingerprints_link_new_reposts_to_their_stored_root():
    [fp] = fingerprints([POST])
    d = Deduper()
    assert d.load([("weibo", "root", content_hash(POST), to_signed(fp), T0 - timedelta(hours=1)),
                   ("weibo", "short", content_hash("太差了"), None, T0)]) == 2
    [copy, repost] = d.link([mention(POST, source="b", external_id="copy"), mention(REPOSTS[3], external_id="r")])
    assert (copy.duplicate_of, copy.dup_kind) == (("weibo", "root"), "exact")
    assert (repost.duplicate_of, repost.dup_kind) == (("weibo", "root"), "near")


def test_the_closest_of_several_near_matches_wins_and_the_oldest_of_equals():
    [fp] = fingerprints([POST])
    far, close, close_too = fp ^ 0b111111111, fp ^ (0b111 << 20), fp ^ (0b111 << 40)  # 9, 3 and 3 bits away
    rows = [("weibo", name, name, to_signed(f), T0) for name, f in (("far", far), ("close", close), ("close-too", close_too))]
    d = Deduper()
    d.load(rows)
    [m] = d.link([mention(POST, external_id="new", published_at=T0 + timedelta(minutes=1))])
    assert (m.duplicate_of, m.dup_kind) == (("weibo", "close"), "near")


def test_stored_story_with_repost_count_survives_restart_and_all_copies_count(db, tmp_path):
    feed = tmp_path / "feed.jsonl"
    rows = [{"id": "root", "text": POST}] + [{"id": f"r{i}", "text": t} for i, t in enumerate(REPOSTS)]
    feed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    clock = Clock(T0)
    sources = [{"name": "weibo", "type": "file", "path": str(feed)}]
    report = make_pipeline(db, sources, clock=clock).poll("weibo")
    assert report.stored == 5  # every repost is stored: volume is not lost
    with db.session() as s:
        rows_by_id = {r.external_id: r for r in s.scalars(select(MentionRow))}
    root = rows_by_id["root"]
    assert root.story_id is None and root.repost_count == 4
    assert {rows_by_id[f"r{i}"].story_id for i in range(4)} == {root.id}
    assert {rows_by_id[f"r{i}"].dup_kind for i in range(4)} == {"near"}

    # A fresh pipeline (a restart) loads the stories of the last days: a later repost joins the same story.
    with open(feed, "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "r9", "text": "太过分了 //@某人:" + POST}, ensure_ascii=False) + "\n")
    clock.advance(minutes=5)
    assert make_pipeline(db, sources, clock=clock).poll("weibo").stored == 1
    with db.session() as s:
        late = s.scalar(select(MentionRow).where(MentionRow.external_id == "r9"))
        assert late.story_id == root.id
        assert s.get(MentionRow, root.id).repost_count == 5


def test_story_links_across_sources_through_rss_and_the_rules_see_every_copy(db):
    item = ("<item><title>{t}</title><description>{t}</description><guid>{g}</guid>"
            "<pubDate>Tue, 11 Jun 2024 12:00:00 +0800</pubDate></item>")
    feed_a = f'<rss version="2.0"><channel><title>a</title>{item.format(t=POST, g="a1")}</channel></rss>'
    feed_b = ('<rss version="2.0"><channel><title>b</title>'
              + "".join(item.format(t=t, g=f"b{i}") for i, t in enumerate(REPOSTS[:2])) + "</channel></rss>")
    with LocalServer(lambda req: Response(200, (feed_a if req.path == "/a" else feed_b).encode())) as server:
        pipeline = make_pipeline(db, [{"name": "a", "type": "rss", "url": server.url + "/a"},
                                      {"name": "b", "type": "rss", "url": server.url + "/b"}],
                                 clock=Clock(T0 + timedelta(hours=1)))
        seen = []
        original_add = pipeline.rules.add_data
        pipeline.rules.add_data = lambda mentions, now: seen.extend(mentions) or original_add(mentions, now)
        pipeline.poll("a")
        pipeline.poll("b")
    assert len(seen) == 3 and [m.dup_kind for m in seen] == [None, "near", "near"]
    with db.session() as s:
        rows = {(r.source, r.external_id): r for r in s.scalars(select(MentionRow))}
    assert rows[("b", "b0")].story_id == rows[("a", "a1")].id == rows[("b", "b1")].story_id
    assert rows[("a", "a1")].repost_count == 2
