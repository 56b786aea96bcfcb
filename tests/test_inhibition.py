"""Inhibition: while one incident is open, the signals it explains are recorded on it, not paged."""

from dataclasses import replace

from alerts.escalation import IncidentsConfig, InhibitRule
from alerts.incidents import IncidentManager
from alerts.inhibition import inhibitor
from monitor.core.severity import Severity
from monitor.storage import incidents as store
from monitor.storage.incidents import Incident
from monitor.storage.timeline import events
from tests.factories import T0, TOPIC, make_match

SOURCE_DOWN = Incident(id=3, group_key="微博|数据源异常", topic="微博", rule="数据源异常", rule_type="source_health",
                       severity="III", status="open", title="t", reason="r", numbers={}, opened_at=T0, updated_at=T0)
DROP = make_match(rule="声量骤降", rule_type="volume_drop", severity=Severity.III, reason="「品牌A」声量骤降")


def test_a_volume_drop_is_held_back_while_every_source_feeding_the_topic_fails():
    feeds = {TOPIC: ("微博",)}
    assert inhibitor(DROP, [SOURCE_DOWN], (), feeds) == SOURCE_DOWN
    assert inhibitor(DROP, [], (), feeds) is None
    assert inhibitor(DROP, [SOURCE_DOWN], (), {TOPIC: ("微博", "抖音")}) is None  # 抖音 still feeds it
    assert inhibitor(DROP, [SOURCE_DOWN], (), feeds, on_source_failure=False) is None
    assert inhibitor(replace(DROP, kind="recovered"), [SOURCE_DOWN], (), feeds) is None
    assert inhibitor(make_match(), [SOURCE_DOWN], (), feeds) is None  # only volume drops, by default


def test_configured_rules_match_labels_and_equal_labels():
    hot = replace(SOURCE_DOWN, id=5, topic=TOPIC, rule="热搜", rule_type="hotlist", severity="II", group_key=TOPIC)
    rule = InhibitRule(source={"rule_type": "hotlist"}, target={"rule_type": "negative_share"}, equal=("topic",))
    share = make_match(rule="负面占比", rule_type="negative_share")
    assert inhibitor(share, [hot], (rule,)) == hot
    assert inhibitor(replace(share, topic="别的品牌"), [hot], (rule,)) is None  # equal: topic differs
    assert inhibitor(make_match(), [hot], (rule,)) is None  # not a target


def test_the_manager_records_the_held_back_signal_on_the_source_incident_and_pages_nothing(db):
    manager = IncidentManager(db, settings=IncidentsConfig(), topic_sources={TOPIC: ("微博",)})
    down = make_match(rule="数据源异常", rule_type="source_health", topic="微博", scope="source",
                      reason="数据源「微博」连续失败", severity=Severity.III)
    [page] = manager.handle([down], T0)
    assert manager.handle([DROP], T0) == []
    with db.session() as s:
        assert len(store.open_incidents(s)) == 1  # no incident for the drop
        timeline = events(s, page.incident_id)
    assert [e.kind for e in timeline][-1] == "inhibited"
    assert timeline[-1].message == "已抑制（由本事件引起）：「品牌A」声量骤降"
    # once the source recovers, a drop pages as usual
    manager.handle([replace(down, kind="recovered")], T0)
    [dropped] = manager.handle([DROP], T0)
    assert dropped.kind == "firing" and dropped.rule == "声量骤降"
