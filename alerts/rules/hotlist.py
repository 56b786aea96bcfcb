"""hotlist: the topic is on a hot list (热搜) — page at once, severity by rank; recovered once it has
dropped off every list for ``resolve_after``.

A hot-list entry is a mention of a ``hotlist`` source (:mod:`sources.hotlist`) carrying its place on
the list, ``Mention.rank`` (1 = top); the list is the mention's ``source``. Mentions without a rank
are not hot-list entries and are ignored, so the rule may be fed everything.

Inputs, all with the time passed in:

- :meth:`HotlistRule.observe_snapshot` — one poll of one list: the topic's entries in it, possibly
  none. This is what makes "dropped off" knowable: an entry absent from the latest snapshot of its
  list is no longer on it.
- :meth:`HotlistRule.add_data` — ranked mentions arriving the ordinary way (entries stored for the
  first time): each is on its list now. Without snapshots nothing ever leaves a list.
- :meth:`HotlistRule.tick` — time passing: a topic off every list recovers ``resolve_after`` after
  the first snapshot that no longer had it, unless it came back meanwhile. A list that stops
  arriving (its source failing) keeps its last snapshot: no recovery on missing data, the source's
  health rule speaks for that.

Severity is by the best rank over every list: ``levels`` maps a severity to the worst rank that
still earns it (``{II: 10, III: 50}``: top 10 → II, top 50 → III), anything lower on a list gets
``beyond`` (IV; null: not paged, as if off the list).

Every change in the topic's standing — an entry enters or leaves a list, or moves at least
``min_move`` places from where the timeline last saw it — answers a ``firing`` match with the new
figures: the incident pages when the severity grows (first page, 升级) and records the others on
its timeline without paging. As for ``keyword``, a move after staff resolved the incident reopens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, ClassVar, Literal, Sequence

from pydantic import Field

from alerts.rules.base import Match, Rule, RuleConfig
from alerts.rules.common import Hysteresis
from alerts.rules.measurements import HotlistMeasurement
from monitor.core.configtypes import PositiveDuration, format_duration
from monitor.core.domain import Mention
from monitor.core.severity import Severity

EVIDENCE = 5
Rank = Annotated[int, Field(ge=1)]


class HotlistRuleConfig(RuleConfig):
    type: Literal["hotlist"]
    levels: dict[Severity, Rank] = Field(default_factory=lambda: {Severity.II: 10, Severity.III: 50})
    beyond: Severity | None = Severity.IV  # on a list but below every level; None: ignored
    resolve_after: PositiveDuration = Field(default="30m", validate_default=True)
    min_move: int = Field(default=1, ge=1)  # smaller moves stay off the timeline

    def problems(self) -> list[str]:
        ranked = sorted(self.levels.items(), key=lambda kv: -kv[0].rank)  # I first
        for (higher, better), (lower, worse) in zip(ranked, ranked[1:]):
            if better >= worse:
                return [f"levels: {higher.value} needs a better (smaller) rank than {lower.value}, "
                        f"got {better} and {worse}"]
        if self.beyond is not None and ranked and self.beyond >= ranked[-1][0]:
            return [f"beyond: must be below every level (lowest is {ranked[-1][0].value}), got {self.beyond.value}"]
        return []

    def severity_for(self, rank: int) -> Severity | None:
        for severity, worst in sorted(self.levels.items(), key=lambda kv: -kv[0].rank):
            if rank <= worst:
                return severity
        return self.beyond


@dataclass(frozen=True)
class Entry:
    """One of the topic's entries on one list, as its latest snapshot has it."""

    hot_list: str
    rank: int
    mention: Mention

    @property
    def key(self) -> tuple[str, str]:
        return self.hot_list, self.mention.external_id

    @property
    def title(self) -> str:
        return _snippet(self.mention.title or self.mention.text)

    @property
    def place(self) -> str:
        return f"{self.hot_list}第{self.rank}名"


class HotlistRule(Rule):
    config_model = HotlistRuleConfig
    config: HotlistRuleConfig
    takes_snapshots: ClassVar[bool] = True  # the engine may feed observe_snapshot

    def __init__(self, config: HotlistRuleConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        self._lists: dict[str, dict[str, Entry]] = {}  # list -> entry id -> the topic's entry in its latest snapshot
        self._shown: dict[tuple[str, str], Entry] = {}  # each entry as the timeline last saw it
        self._best: int | None = None  # best rank of the episode
        self._gone_since: datetime | None = None  # the first snapshot that no longer had the topic
        self._state = Hysteresis(config.resolve_after)

    # -- inputs ---------------------------------------------------------------------------------
    def observe_snapshot(self, hot_list: str, entries: Sequence[Mention], now: datetime) -> list[Match]:
        """The whole of one poll of ``hot_list``: the topic's entries in it (an empty list: none)."""
        self._lists[hot_list] = {m.external_id: Entry(hot_list, m.rank, m) for m in entries if _ranked(m)}
        return self._evaluate(now, observed=True)

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        ranked = [m for m in mentions if _ranked(m)]
        for m in ranked:
            self._lists.setdefault(m.source, {})[m.external_id] = Entry(m.source, m.rank, m)
        return self._evaluate(now, observed=bool(ranked))

    # -- state ----------------------------------------------------------------------------------
    def _evaluate(self, now: datetime, *, observed: bool) -> list[Match]:
        entries = (e for entries in self._lists.values() for e in entries.values())
        current = {e.key: e for e in entries if self.config.severity_for(e.rank) is not None}
        if not current:  # off every list (only a snapshot can tell): the grace runs from the first one without it
            if not self._state.firing:
                return []
            self._gone_since = self._gone_since or now
            if now - self._gone_since < self.config.resolve_after:
                return []
            change = self._state.update(now, None)
            return [self._recovered(now, change[1])] if change else []
        if not observed:  # time alone changes nothing while it is on a list
            return []
        self._gone_since = None
        ranked = sorted(current.values(), key=lambda e: (e.rank, e.hot_list))
        best = ranked[0]
        severity = self.config.severity_for(best.rank)
        self._best = best.rank if self._best is None else min(self._best, best.rank)
        first = not self._shown
        previous = self._shown.get(best.key)
        change = self._state.update(now, severity)
        moves = self._moves(current)
        if change is None and not moves:
            return []
        if first:
            also = [e.place for e in ranked[1:5]]
            reason = f"「{self.topic}」登上{best.place}：{best.title}" + (f"；同时在{'、'.join(also)}" if also else "")
        elif moves:
            reason = f"「{self.topic}」热搜排名变化：{'；'.join(moves)}（当前最高：{best.place}）"
        else:  # a move smaller than min_move that still crossed a level
            reason = f"「{self.topic}」升至{best.place}：{best.title}"
        measured = HotlistMeasurement(
            hot_list=best.hot_list, rank=best.rank, entry=best.mention.title or best.mention.text,
            previous_rank=previous.rank if previous is not None and previous.rank != best.rank else None,
            best_rank=self._best, on_lists=tuple(e.place for e in ranked), window=self.config.resolve_after)
        return [Match("firing", self.config.name, self.config.type, self.topic, now, severity, reason, measured,
                      tuple(e.mention for e in ranked[:EVIDENCE]))]

    def _moves(self, current: dict[tuple[str, str], Entry]) -> list[str]:
        """What changed since the timeline last saw the topic's entries; notes it as seen."""
        moves: list[str] = []
        for key, e in sorted(current.items(), key=lambda kv: (kv[1].rank, kv[0])):
            shown = self._shown.get(key)
            if shown is None:
                moves.append(f"{e.hot_list}「{e.title}」新上榜第{e.rank}名")
            elif abs(e.rank - shown.rank) >= self.config.min_move:
                moves.append(f"{e.hot_list}「{e.title}」第{shown.rank}名→第{e.rank}名")
            else:
                continue  # small moves add up until they reach min_move
            self._shown[key] = e
        for key in [k for k in self._shown if k not in current]:
            moves.append(f"{key[0]}「{self._shown.pop(key).title}」已跌出榜单")
        return moves

    def _recovered(self, now: datetime, severity: Severity) -> Match:
        gone = "、".join(dict.fromkeys(e.hot_list for e in self._shown.values())) or "热搜榜"
        best, self._best, self._shown = self._best, None, {}
        reason = (f"「{self.topic}」已跌出{gone}，{format_duration(self.config.resolve_after)}内未再上榜"
                  + (f"（本轮最高第{best}名）" if best else ""))
        measured = HotlistMeasurement(best_rank=best, window=self.config.resolve_after)
        return Match("recovered", self.config.name, self.config.type, self.topic, now, severity, reason, measured)


def _ranked(m: Mention) -> bool:
    rank = getattr(m, "rank", None)
    return isinstance(rank, int) and not isinstance(rank, bool) and rank >= 1


def _snippet(text: str, size: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size] + "…"
