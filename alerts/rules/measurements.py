"""Measurements: the figures a rule decided by, as one typed record per rule type.

A rule builds its record with real types (counts, ratios, durations as ``timedelta``) and uses
the fields for its reason sentence; :class:`~alerts.rules.base.Match` carries it. Outside the
rule the figures live on as a plain dict, :meth:`Measurement.as_numbers` — persisted
(``incidents.numbers``, timeline entries), shown (``monitor incidents show``, pages) and sent
(the webhook payload) — so its keys, order and value formats are a stored contract: window
``"10m"``, crisis words ``"、"``-joined and only when there are some.

:func:`measurement_from_numbers` rebuilds the typed record from such a dict (old rows may lack
keys: they get empty values); it is the one place a stored duration is read back.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timedelta
from functools import cache
from types import NoneType, UnionType
from typing import Any, ClassVar, Mapping, Self, get_args, get_origin, get_type_hints

from monitor.core.configtypes import format_duration, parse_duration

# Labels of the figures shown in messages, in display order. Keys without a label are shown
# as ``key value`` after these when their value is a scalar.
LABELS = {
    "current_negative": "当前窗口负面数",
    "current_total": "当前窗口总量",
    "negative_share": "负面占比",
    "reference_negative": "参考窗口负面数",
    "expected": "基准（折算到当前窗口）",
    "ratio": "倍数",
    "current": "当前值",
    "baseline": "基准",
    "threshold": "阈值",
    "count": "条数",
    "total": "总量",
    "min_share": "占比阈值",
    "followers": "粉丝数",
    "min_followers": "粉丝阈值",
    "keyword": "命中词",
    "score": "舆情指数",
    "z": "异常度 z",
    "hot_buckets": "连续异常周期",
    "failures": "连续失败次数",
}
HIDDEN = {"window", "reference", "crisis_words"}  # the reason sentence already says them

OMIT_EMPTY = {"omit_empty": True}  # field metadata: left out of the dict when None or ()
WORD_SEPARATOR = "、"


def describe_numbers(numbers: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(label, value)`` for each figure worth showing: labelled ones in :data:`LABELS` order,
    then the other scalars under their key.

    Works on any stored dict (old rows, rule types without a record), so messages built from a
    persisted incident read the same as those built from a fresh match.
    """
    out = [(label, numbers[key]) for key, label in LABELS.items() if key in numbers]
    out += [(key, value) for key, value in numbers.items()
            if key not in LABELS and key not in HIDDEN and isinstance(value, (int, float, str))]
    return out


MEASUREMENTS: dict[str, type["Measurement"]] = {}  # rule type -> its record, filled as subclasses are defined


class Measurement:
    """Base of the records. Subclasses are frozen, keyword-only dataclasses whose fields, in
    order, are the keys of :meth:`as_numbers` (metadata ``key`` renames one, ``omit_empty``
    leaves it out when empty). A subclass with a ``rule_type`` registers itself, so a new rule
    type defines its record in its own module."""

    rule_type: ClassVar[str] = ""
    labels: ClassVar[Mapping[str, str]] = {}  # labels of figures new to this record (after the shared ones)
    window: timedelta | None = None  # the window the rule counted in; None: it has none

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("rule_type"):
            MEASUREMENTS[cls.rule_type] = cls
        for key, label in cls.__dict__.get("labels", {}).items():
            LABELS.setdefault(key, label)

    def as_numbers(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("omit_empty") and value in (None, ()):
                continue
            out[f.metadata.get("key", f.name)] = _dump(value)
        return out

    def describe(self) -> list[tuple[str, Any]]:
        """The labelled figures shown in messages (see :func:`describe_numbers`)."""
        return describe_numbers(self.as_numbers())

    @classmethod
    def from_numbers(cls, numbers: Mapping[str, Any]) -> Self:
        """The record back from its :meth:`as_numbers` form; missing or unreadable values are empty."""
        values = {}
        for f in fields(cls):  # type: ignore[arg-type]
            hint = _hints(cls)[f.name]
            try:
                value = _load(hint, numbers.get(f.metadata.get("key", f.name)))
            except (ValueError, TypeError):
                value = None
            values[f.name] = value if value is not None or NoneType in _kinds(hint) else _empty(f, hint)
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class Figures(Measurement):
    """A plain dict of figures: rule types without a record (plugins) and hand-built matches."""

    values: Mapping[str, Any] = field(default_factory=dict)
    window: timedelta | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        try:
            window = _load(timedelta | None, self.values.get("window"))
        except (ValueError, TypeError):
            window = None
        object.__setattr__(self, "window", window)

    def as_numbers(self) -> dict[str, Any]:
        return dict(self.values)

    @classmethod
    def from_numbers(cls, numbers: Mapping[str, Any]) -> Self:
        return cls(values=dict(numbers))


@dataclass(frozen=True, kw_only=True)
class NegativeSpikeMeasurement(Measurement):
    """Rounded for people (decisions use exact values)."""

    rule_type: ClassVar[str] = "negative_spike"
    labels: ClassVar[Mapping[str, str]] = {"heat": "舆情热度", "top_contributors": "热度来源"}
    current_negative: int
    current_total: int
    negative_share: float
    expected: float  # the expected value of the window (negatives, or heat with measure: heat)
    ratio: float
    z: float | None
    hot_buckets: int  # consecutive hot windows
    window: timedelta | None  # the window of the scale that decided
    reference: timedelta | None
    heat: float | None = field(default=None, metadata=OMIT_EMPTY)  # 舆情热度 of the window's negatives
    top_contributors: tuple[str, ...] = field(default=(), metadata=OMIT_EMPTY)  # "author heat", highest first
    crisis_words: tuple[str, ...] = field(default=(), metadata=OMIT_EMPTY)


@dataclass(frozen=True, kw_only=True)
class NegativeShareMeasurement(Measurement):
    rule_type: ClassVar[str] = "negative_share"
    current_negative: int
    current_total: int
    negative_share: float
    min_share: float
    min_total: int
    window: timedelta | None
    crisis_words: tuple[str, ...] = field(default=(), metadata=OMIT_EMPTY)


@dataclass(frozen=True, kw_only=True)
class KeywordMeasurement(Measurement):
    rule_type: ClassVar[str] = "keyword"
    keywords: tuple[str, ...] = field(default=(), metadata={"key": "keyword", **OMIT_EMPTY})
    count: int
    window: timedelta | None


@dataclass(frozen=True, kw_only=True)
class FrequencyMeasurement(Measurement):
    rule_type: ClassVar[str] = "frequency"
    count: int
    threshold: int
    window: timedelta | None
    crisis_words: tuple[str, ...] = field(default=(), metadata=OMIT_EMPTY)


@dataclass(frozen=True, kw_only=True)
class InfluencerMeasurement(Measurement):
    """The loudest author of the batch; a recovery has only the window."""

    rule_type: ClassVar[str] = "influencer"
    followers: int | None = field(default=None, metadata=OMIT_EMPTY)
    min_followers: int | None = field(default=None, metadata=OMIT_EMPTY)
    count: int | None = field(default=None, metadata=OMIT_EMPTY)
    window: timedelta | None
    crisis_words: tuple[str, ...] = field(default=(), metadata=OMIT_EMPTY)


@dataclass(frozen=True, kw_only=True)
class SourceHealthMeasurement(Measurement):
    rule_type: ClassVar[str] = "source_health"
    source: str
    consecutive_failures: int
    failure_threshold: int
    last_error: str | None
    stale_for: timedelta  # whole seconds
    expect_every: timedelta | None
    last_success_at: datetime | None
    last_item_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class WatchdogMeasurement(Measurement):
    """How long each late source has not been polled (whole seconds); empty once polling resumed."""

    rule_type: ClassVar[str] = "watchdog"
    overdue: tuple[tuple[str, timedelta], ...] = ()

    def as_numbers(self) -> dict[str, Any]:
        if not self.overdue:
            return {}
        return {"overdue_seconds": {name: int(late.total_seconds()) for name, late in self.overdue}}

    @classmethod
    def from_numbers(cls, numbers: Mapping[str, Any]) -> Self:
        overdue = numbers.get("overdue_seconds")
        if not isinstance(overdue, Mapping):
            return cls()
        return cls(overdue=tuple((str(name), timedelta(seconds=int(seconds))) for name, seconds in overdue.items()
                                 if isinstance(seconds, (int, float))))


def measurement_from_numbers(rule_type: str, numbers: Mapping[str, Any] | None) -> Measurement:
    """The typed record of a ``rule_type`` match from its stored dict (:class:`Figures` for a type without one)."""
    if rule_type not in MEASUREMENTS:
        from alerts.rules.registry import RULES  # a plugin rule's module registers its record when imported

        try:
            RULES.get(rule_type)
        except KeyError:
            pass
    return MEASUREMENTS.get(rule_type, Figures).from_numbers(numbers or {})


# -- the dict form of field values ---------------------------------------------------------
def _dump(value: Any) -> Any:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return WORD_SEPARATOR.join(value)
    return value


def _load(hint: Any, raw: Any) -> Any:
    if raw is None:
        return None
    kinds = _kinds(hint)
    if timedelta in kinds:
        return parse_duration(raw)
    if datetime in kinds:
        return datetime.fromisoformat(raw)
    if tuple in kinds:
        return tuple(word for word in str(raw).split(WORD_SEPARATOR) if word)
    return raw


def _kinds(hint: Any) -> tuple:
    """The classes a field's type allows (``tuple[str, ...]`` counts as ``tuple``)."""
    options = get_args(hint) if isinstance(hint, UnionType) else (hint,)
    return tuple(get_origin(k) or k for k in options)


def _empty(f: Any, hint: Any) -> Any:
    """The value of a missing field that cannot be None: its default, else the zero of its type."""
    if f.default is not MISSING:
        return f.default
    kinds = _kinds(hint)
    return next((kind() for kind in (int, float, str, tuple, timedelta) if kind in kinds), None)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


@dataclass(frozen=True, kw_only=True)
class HotlistMeasurement(Measurement):
    """The topic's best place on the hot lists now (``hot_list``, ``rank``, the ``entry``; ``previous_rank``
    when it moved) and every place it holds (``on_lists``); a recovery has only the episode's best rank."""

    rule_type: ClassVar[str] = "hotlist"
    labels: ClassVar[Mapping[str, str]] = {
        "hot_list": "热搜榜", "rank": "当前排名", "previous_rank": "此前排名", "entry": "上榜词条",
        "best_rank": "本轮最高排名", "on_lists": "在榜情况"}
    hot_list: str | None = field(default=None, metadata=OMIT_EMPTY)
    rank: int | None = field(default=None, metadata=OMIT_EMPTY)
    previous_rank: int | None = field(default=None, metadata=OMIT_EMPTY)
    entry: str | None = field(default=None, metadata=OMIT_EMPTY)
    best_rank: int | None = field(default=None, metadata=OMIT_EMPTY)
    on_lists: tuple[str, ...] = field(default=(), metadata=OMIT_EMPTY)  # "微博热搜第3名", …
    window: timedelta | None  # resolve_after: how long off every list before it recovers
