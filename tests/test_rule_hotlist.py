"""hotlist: a pure state machine, times passed in (no clock); and its matches through the real
IncidentManager (one page, rank changes on the timeline, escalation, recovery)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from alerts.incidents import IncidentManager
from alerts.rules.hotlist import HotlistRule, HotlistRuleConfig
from monitor.app.config import parse_config
from monitor.core.errors import ConfigError
from monitor.core.severity import Severity
from monitor.storage import timeline
from tests.factories import T0, TOPIC, make_mention

MIN = timedelta(minutes=1)
WEIBO, BAIDU = "微博热搜", "百度热搜"
ENTRY = "品牌A多名顾客喝后腹泻"


def rule(**overrides) -> HotlistRule:
    return HotlistRule(HotlistRuleConfig(**{"name": "上热搜", "type": "hotlist", **overrides}), TOPIC, T0)


def entry(rank: int, title: str = ENTRY, hot_list: str = WEIBO, **kw):
    """The topic's entry on ``hot_list`` at ``rank`` (stable id per list and title, like the source's)."""
    return make_mention(source=hot_list, external_id=f"{hot_list}:{title}", title=title, text=title, rank=rank,
                        platform="weibo_hot", label="neutral", score=0.5, **kw)


@pytest.mark.parametrize(("rank", "severity"), [(1, Severity.II), (10, Severity.II), (11, Severity.III),
                                                (50, Severity.III), (51, Severity.IV)])
def test_an_entry_pages_at_once_with_severity_by_rank(rank, severity):
    r = rule()
    hit = entry(rank)
    [m] = r.observe_snapshot(WEIBO, [hit], T0)
    assert (m.kind, m.rule_type, m.severity, m.evidence) == ("firing", "hotlist", severity, (hit,))
    assert m.reason == f"「{TOPIC}」登上微博热搜第{rank}名：{ENTRY}"
    assert m.numbers == {"hot_list": WEIBO, "rank": rank, "entry": ENTRY, "best_rank": rank,
                         "on_lists": f"微博热搜第{rank}名", "window": "30m"}


def test_levels_and_beyond_are_configurable():
    r = rule(levels={"I": 3, "II": 10, "III": 30}, beyond=None)
    assert r.observe_snapshot(WEIBO, [entry(31)], T0) == []  # below every level: as if off the list
    [m] = r.observe_snapshot(WEIBO, [entry(3)], T0 + MIN)
    assert m.severity == Severity.I


def test_rank_changes_are_firing_matches_with_new_figures_and_small_moves_add_up():
    r = rule(min_move=3)
    [first] = r.observe_snapshot(WEIBO, [entry(23)], T0)
    assert first.severity == Severity.III
    assert r.observe_snapshot(WEIBO, [entry(23)], T0 + 2 * MIN) == []  # unchanged: nothing to say
    assert r.observe_snapshot(WEIBO, [entry(21)], T0 + 4 * MIN) == []  # 2 places: below min_move
    [moved] = r.observe_snapshot(WEIBO, [entry(20)], T0 + 6 * MIN)  # 3 places since the timeline last saw it
    assert (moved.kind, moved.severity) == ("firing", Severity.III)
    assert moved.reason == f"「{TOPIC}」热搜排名变化：微博热搜「{ENTRY}」第23名→第20名（当前最高：微博热搜第20名）"
    assert moved.numbers["rank"] == 20 and moved.numbers["previous_rank"] == 23
    [up] = r.observe_snapshot(WEIBO, [entry(6)], T0 + 8 * MIN)  # into the top 10: II, the incident escalates
    assert up.severity == Severity.II and up.numbers["best_rank"] == 6
    [down] = r.observe_snapshot(WEIBO, [entry(14)], T0 + 10 * MIN)  # falls back: III now, never a new page
    assert down.severity == Severity.III and down.numbers["best_rank"] == 6


def test_dropping_off_recovers_resolve_after_after_the_first_snapshot_without_it():
    r = rule(resolve_after="20m")
    r.observe_snapshot(WEIBO, [entry(8)], T0)
    assert r.observe_snapshot(WEIBO, [entry(9)], T0 + 2 * MIN)  # a move
    assert r.observe_snapshot(WEIBO, [], T0 + 4 * MIN) == []  # gone from the list: the grace starts
    assert r.observe_snapshot(WEIBO, [], T0 + 6 * MIN) == []
    assert r.tick(T0 + 23 * MIN) == []
    [rec] = r.tick(T0 + 24 * MIN)  # 20 minutes after the first snapshot without it
    assert (rec.kind, rec.severity) == ("recovered", Severity.II)
    assert rec.reason == f"「{TOPIC}」已跌出微博热搜，20m内未再上榜（本轮最高第8名）"
    assert rec.numbers == {"best_rank": 8, "window": "20m"}
    assert r.tick(T0 + 60 * MIN) == []
    [again] = r.observe_snapshot(WEIBO, [entry(30)], T0 + 61 * MIN)  # a new episode pages afresh
    assert again.reason.startswith(f"「{TOPIC}」登上微博热搜第30名")


def test_coming_back_within_the_grace_is_a_move_not_a_new_page():
    r = rule(resolve_after="20m")
    r.observe_snapshot(WEIBO, [entry(8)], T0)
    r.observe_snapshot(WEIBO, [], T0 + 2 * MIN)
    [back] = r.observe_snapshot(WEIBO, [entry(12)], T0 + 10 * MIN)
    assert back.reason.startswith(f"「{TOPIC}」热搜排名变化：微博热搜「{ENTRY}」第8名→第12名")
    assert r.tick(T0 + 25 * MIN) == []  # on the list again: the grace was reset


def test_no_snapshots_means_no_recovery_however_long():
    r = rule(resolve_after="20m")
    r.observe_snapshot(WEIBO, [entry(8)], T0)
    assert r.tick(T0 + 24 * 60 * MIN) == []  # the list stopped arriving: its source's health rule speaks


def test_several_lists_best_rank_wins_and_leaving_one_list_is_on_the_timeline():
    r = rule(resolve_after="10m")
    [m] = r.observe_snapshot(BAIDU, [entry(23, "品牌A回应", BAIDU)], T0)
    assert m.severity == Severity.III
    [m] = r.observe_snapshot(WEIBO, [entry(8)], T0 + MIN)
    assert m.severity == Severity.II
    assert m.reason == (f"「{TOPIC}」热搜排名变化：微博热搜「{ENTRY}」新上榜第8名（当前最高：微博热搜第8名）")
    assert m.numbers["on_lists"] == "微博热搜第8名、百度热搜第23名"
    assert [e.title for e in m.evidence] == [ENTRY, "品牌A回应"]
    [left] = r.observe_snapshot(WEIBO, [], T0 + 2 * MIN)  # off 微博, still on 百度
    assert left.reason == f"「{TOPIC}」热搜排名变化：微博热搜「{ENTRY}」已跌出榜单（当前最高：百度热搜第23名）"
    assert left.severity == Severity.III
    assert r.tick(T0 + 30 * MIN) == []  # still on 百度
    r.observe_snapshot(BAIDU, [], T0 + 31 * MIN)
    [rec] = r.tick(T0 + 41 * MIN)
    assert rec.reason.startswith(f"「{TOPIC}」已跌出百度热搜，10m内未再上榜")


def test_two_entries_on_one_list_and_unranked_mentions_are_ignored():
    r = rule()
    plain = make_mention(text=f"{TOPIC}的奶茶太难喝了")  # an ordinary mention: no rank
    pinned = replace(entry(1, "置顶的公告"), rank=None)  # a pinned entry stays unranked
    assert rule().add_data([plain, pinned], T0) == []
    [m] = r.observe_snapshot(WEIBO, [entry(30, "品牌A回应"), entry(12)], T0)
    assert m.numbers["rank"] == 12 and [e.rank for e in m.evidence] == [12, 30]


def test_entries_arriving_the_ordinary_way_page_but_never_recover_without_snapshots():
    r = rule(resolve_after="10m")
    [m] = r.add_data([entry(8)], T0)  # a hot-list entry stored for the first time
    assert (m.kind, m.severity) == ("firing", Severity.II)
    assert r.add_data([], T0 + MIN) == []
    assert r.tick(T0 + 5 * 60 * MIN) == []
    [moved] = r.observe_snapshot(WEIBO, [entry(3)], T0 + 5 * 60 * MIN)  # snapshots take over when they come
    assert moved.numbers["previous_rank"] == 8


@pytest.mark.parametrize(("rule_yaml", "problem"), [
    ("levels: {II: 50, III: 10}", "rules[0].levels: II needs a better (smaller) rank than III, got 50 and 10"),
    ("levels: {II: 0}", "rules[0].levels.II"),
    ("beyond: II", "rules[0].beyond: must be below every level (lowest is III), got II"),
    ("min_move: 0", "rules[0].min_move"),
])
def test_config_errors_name_the_field(rule_yaml, problem):
    with pytest.raises(ConfigError) as info:
        parse_config(f"topics: [{{name: {TOPIC}, keywords: [品牌A]}}]\n"
                     f"rules: [{{name: 上热搜, type: hotlist, {rule_yaml}}}]")
    assert problem in str(info.value)


def test_through_the_incident_manager_one_page_then_moves_on_the_timeline_then_escalation_and_recovery(db):
    manager = IncidentManager(db)
    r = rule(resolve_after="10m")
    [page] = manager.handle(r.observe_snapshot(WEIBO, [entry(23)], T0), T0)
    assert (page.kind, page.severity) == ("firing", Severity.III)
    assert manager.handle(r.observe_snapshot(WEIBO, [entry(18)], T0 + 2 * MIN), T0 + 2 * MIN) == []  # no page
    [up] = manager.handle(r.observe_snapshot(WEIBO, [entry(7)], T0 + 4 * MIN), T0 + 4 * MIN)
    assert (up.kind, up.severity) == ("escalated", Severity.II)
    assert manager.handle(r.observe_snapshot(WEIBO, [entry(15)], T0 + 6 * MIN), T0 + 6 * MIN) == []
    manager.handle(r.observe_snapshot(WEIBO, [], T0 + 8 * MIN), T0 + 8 * MIN)
    [done] = manager.handle(r.tick(T0 + 18 * MIN), T0 + 18 * MIN)
    assert done.kind == "resolved"
    with db.session() as s:
        events = timeline.events(s, page.incident_id)
    assert [e.kind for e in events] == ["opened", "evidence", "escalated", "evidence", "resolved"]
    moves = [e for e in events if e.kind == "evidence"]
    assert "第23名→第18名" in moves[0].message and moves[0].data["numbers"]["rank"] == 18
    assert "第7名→第15名" in moves[1].message and moves[1].data["numbers"]["previous_rank"] == 7
