"""Typed measurement records: the stored dict form, reading it back, the figures shown in messages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from alerts.rules.base import Match
import dataclasses
import typing

from alerts.rules.measurements import (LABELS, MEASUREMENTS, Figures, FrequencyMeasurement, HotlistMeasurement,
                                       InfluencerMeasurement, KeywordMeasurement, NegativeShareMeasurement,
                                       NegativeSpikeMeasurement, SourceHealthMeasurement, WatchdogMeasurement,
                                       measurement_from_numbers)
from monitor.core.severity import Severity

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)

RECORDS = [
    NegativeSpikeMeasurement(current_negative=30, current_total=40, negative_share=0.75, expected=3.17, ratio=9.46,
                             z=12.3, hot_buckets=2, window=10 * MIN, reference=timedelta(hours=6),
                             crisis_words=("中毒", "维权")),
    NegativeSpikeMeasurement(current_negative=0, current_total=0, negative_share=0.0, expected=0.05, ratio=0.0,
                             z=None, hot_buckets=0, window=5 * MIN, reference=timedelta(hours=6)),
    NegativeShareMeasurement(current_negative=5, current_total=10, negative_share=0.5, min_share=0.5, min_total=10,
                             window=30 * MIN, crisis_words=("爆炸",)),
    KeywordMeasurement(keywords=("爆炸", "中毒"), count=2, window=timedelta(hours=1)),
    KeywordMeasurement(count=0, window=timedelta(hours=1)),
    FrequencyMeasurement(count=12, threshold=5, window=10 * MIN),
    InfluencerMeasurement(followers=120_000, min_followers=100_000, count=1, window=timedelta(hours=1),
                          crisis_words=("中毒",)),
    InfluencerMeasurement(window=timedelta(hours=1)),
    SourceHealthMeasurement(source="weibo", consecutive_failures=3, failure_threshold=3, last_error="HTTP 503",
                            stale_for=timedelta(seconds=90), expect_every=None, last_success_at=T0,
                            last_item_at=None),
    WatchdogMeasurement(overdue=(("weibo", timedelta(seconds=91)), ("zhihu", timedelta(seconds=400)))),
    WatchdogMeasurement(),
    Figures(values={"current": 9, "threshold": 5, "window": "10m", "score_x": 1.5}),
    HotlistMeasurement(hot_list="微博热搜", rank=3, previous_rank=8, entry="品牌A喝后腹泻", best_rank=3,
                       on_lists=("微博热搜第3名", "百度热搜第23名"), window=30 * MIN),
    HotlistMeasurement(best_rank=3, window=30 * MIN),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_the_stored_dict_reads_back_as_the_same_record(record):
    stored = json.loads(json.dumps(record.as_numbers(), ensure_ascii=False))  # as persisted (JSON column)
    rule_type = "plugin_rule" if isinstance(record, Figures) else record.rule_type
    back = measurement_from_numbers(rule_type, stored)
    assert back == record and type(back) is type(record)
    assert back.as_numbers() == record.as_numbers()


def test_every_rule_type_has_a_record():
    from alerts.rules.registry import RULES

    for name in RULES.names():  # a rule type's record lives in its module
        RULES.get(name)
    assert set(MEASUREMENTS) == {*RULES.names(), "watchdog"}
    assert {"negative_spike", "negative_share", "keyword", "frequency", "influencer", "source_health",
            "volume_drop", "hotlist"} <= set(MEASUREMENTS)


def test_the_dict_form_keeps_its_keys_order_and_formats():
    spike = RECORDS[0].as_numbers()
    assert list(spike) == ["current_negative", "current_total", "negative_share", "expected", "ratio", "z",
                           "hot_buckets", "window", "reference", "crisis_words"]
    assert (spike["window"], spike["reference"], spike["crisis_words"]) == ("10m", "6h", "中毒、维权")
    assert "crisis_words" not in RECORDS[1].as_numbers() and RECORDS[1].as_numbers()["z"] is None
    assert RECORDS[4].as_numbers() == {"count": 0, "window": "1h"}  # a keyword recovery names no keyword
    assert RECORDS[7].as_numbers() == {"window": "1h"}
    assert RECORDS[8].as_numbers() == {
        "source": "weibo", "consecutive_failures": 3, "failure_threshold": 3, "last_error": "HTTP 503",
        "stale_for": "90s", "expect_every": None, "last_success_at": T0.isoformat(),
        "last_item_at": None}
    assert RECORDS[9].as_numbers() == {"overdue_seconds": {"weibo": 91, "zhihu": 400}}
    assert RECORDS[10].as_numbers() == {}


def test_a_stored_window_reads_back_as_a_timedelta():
    assert measurement_from_numbers("frequency", {"count": 5, "threshold": 5, "window": "10m"}).window == 10 * MIN
    assert measurement_from_numbers("keyword", {"count": 0, "window": "1h"}).window == timedelta(hours=1)
    assert measurement_from_numbers("plugin_rule", {"window": "2h"}).window == timedelta(hours=2)
    assert measurement_from_numbers("source_health", RECORDS[8].as_numbers()).window is None  # no window
    assert measurement_from_numbers("watchdog", {}).window is None


def test_old_rows_with_missing_or_broken_keys_read_back_with_empty_values():
    old = measurement_from_numbers("negative_spike", {"current_negative": 14, "window": "10m", "gone": 1})
    assert (old.current_negative, old.current_total, old.z, old.window, old.reference, old.crisis_words) == (
        14, 0, None, 10 * MIN, None, ())
    assert measurement_from_numbers("negative_share", {"window": "soon"}).window is None
    assert measurement_from_numbers("negative_spike", None).window is None
    assert measurement_from_numbers("source_health", {"last_success_at": "yesterday"}).last_success_at is None
    assert measurement_from_numbers("watchdog", {"overdue_seconds": "?"}) == WatchdogMeasurement()


def test_describe_labels_the_figures_in_display_order_and_hides_what_the_reason_says():
    assert RECORDS[0].describe() == [("当前窗口负面数", 30), ("当前窗口总量", 40), ("负面占比", 0.75),
                                     ("基准（折算到当前窗口）", 3.17), ("倍数", 9.46), ("异常度 z", 12.3),
                                     ("连续异常周期", 2)]
    assert RECORDS[3].describe() == [("条数", 2), ("命中词", "爆炸、中毒")]
    assert RECORDS[6].describe() == [("条数", 1), ("粉丝数", 120_000), ("粉丝阈值", 100_000)]
    assert RECORDS[2].describe()[-1] == ("min_total", 10)  # no label: shown under its key
    assert ("expect_every", None) not in RECORDS[8].describe()  # only scalars without a label
    assert RECORDS[9].describe() == []


def test_a_match_carries_the_record_and_shows_its_dict():
    record = RECORDS[5]
    m = Match("firing", "频繁提及", "frequency", "品牌A", T0, Severity.IV, "r", record)
    assert m.measurement is record and m.numbers == {"count": 12, "threshold": 5, "window": "10m"}
    plain = Match("firing", "x", "plugin_rule", "品牌A", T0, Severity.IV, "r", {"score": 3, "window": "5m"})
    assert plain.measurement == Figures(values={"score": 3, "window": "5m"}) and plain.measurement.window == 5 * MIN
    assert plain.numbers == {"score": 3, "window": "5m"}
    assert Match("recovered", "x", "plugin_rule", "品牌A", T0, Severity.IV, "r").numbers == {}


def test_a_new_rule_types_record_registers_itself_where_it_is_defined():
    from alerts.rules.measurements import Measurement, measurement_from_numbers

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class QueueMeasurement(Measurement):
        rule_type: typing.ClassVar[str] = "test_queue_depth"
        labels: typing.ClassVar[dict] = {"test_depth": "队列深度"}
        test_depth: int

    try:
        back = measurement_from_numbers("test_queue_depth", {"test_depth": 7, "window": "5m"})
        assert isinstance(back, QueueMeasurement) and back.test_depth == 7
        assert ("队列深度", 7) in back.describe()
    finally:
        MEASUREMENTS.pop("test_queue_depth", None)
        LABELS.pop("test_depth", None)
