"""volume_drop as a pure state machine: counts and time in, matches out."""

from datetime import timedelta

from alerts.rules.volume_drop import VolumeDropConfig, VolumeDropRule
from monitor.core.severity import Severity
from tests.factories import T0, TOPIC, make_mention

H = timedelta(hours=1)
START = T0.replace(hour=0)  # an hour boundary


def rule(**kw):
    return VolumeDropRule(VolumeDropConfig(name="声量骤降", type="volume_drop", seasonal_days=0, **kw), TOPIC, START)


def hour(r, h, count, now=None):
    """``count`` mentions spread over hour ``h``; evaluated at ``now`` (default: the end of that hour)."""
    at = START + h * H
    mentions = [make_mention(published_at=at + k * (H / max(count, 1)), label="neutral") for k in range(count)]
    return r.add_data(mentions, now or at + H)


def test_a_busy_topic_falling_silent_pages_after_two_empty_hours_and_recovers():
    r = rule()
    for h in range(26):
        assert hour(r, h, 60) == []
    assert hour(r, 26, 5) == []  # one low hour is not enough (confirm: 2)
    [m] = hour(r, 27, 0)
    assert (m.kind, m.severity) == ("firing", Severity.II)  # an hour with nothing at all: one level up
    assert m.numbers == {"current_total": 0, "expected": 60.0, "ratio": 0.0, "window": "1h"}
    assert m.reason.startswith("「品牌A」声量骤降：上一个1h周期仅 0 条，基准约 60 条（0%）")
    [back] = hour(r, 28, 60)  # back up, and evaluated an hour (resolve_after) after the last drop
    assert (back.kind, back.severity) == ("recovered", Severity.II)


def test_a_quiet_topic_never_pages_for_being_quiet_and_nothing_pages_while_warming_up():
    quiet = rule()
    for h in range(30):
        assert hour(quiet, h, 3 if h < 25 else 0) == []  # usually 3 an hour: below min_expected
    fresh = rule()
    assert hour(fresh, 0, 60) == [] and hour(fresh, 1, 0) == [] and hour(fresh, 2, 0) == []  # no day of history yet


def test_warm_up_from_stored_minute_counts_gives_the_same_baseline():
    fed, counted = rule(), rule()
    for h in range(25):
        hour(fed, h, 60)
        for minute in range(60):
            counted.add_count(START + h * H + minute * timedelta(minutes=1), "weibo", 0, 1)
    at = START + 27 * H
    assert fed.model.mu(fed.model.index(at) - 1) == counted.model.mu(counted.model.index(at) - 1) == 60
    assert [m.kind for m in counted.add_data([], at)] == ["firing"]
