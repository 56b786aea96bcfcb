"""keyword: a crisis word or a configured term pages at once, with its configured severity.

A mention *hits* when its text (or title) contains a configured term (case-insensitive) or,
with ``crisis_words: true``, when the NLP stage found crisis words in it
(``Mention.crisis_words``). Each hit's severity is its term's (``terms`` as a mapping
``term: severity``, or a list at ``severity``); crisis words not among the terms get
``crisis_severity``. ``labels`` narrows hits to mentions with those sentiment labels.

Every batch with hits answers a ``firing`` match whose evidence is the hitting mentions: the
first opens the incident and pages, one with a higher severity escalates it, the others add
evidence to its timeline without paging. It recovers once no hit has been seen for
``resolve_after``. Hits published more than ``resolve_after`` before ``now`` (a backlog, or
history replayed after a restart) are old news and ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Sequence

from pydantic import Field

from alerts.rules.base import FOREVER, Match, Rule, RuleConfig
from alerts.rules.common import EVIDENCE_SIZE, Hysteresis, earliest, TimeIndex, crisis_words
from alerts.rules.measurements import KeywordMeasurement
from nlp.crisis import raises_severity
from monitor.core.severity import Severity
from monitor.core.configtypes import PositiveDuration, format_duration
from monitor.core.domain import Mention

Label = Literal["negative", "neutral", "positive"]


class KeywordConfig(RuleConfig):
    type: Literal["keyword"]
    terms: dict[str, Severity] | tuple[str, ...] = ()
    severity: Severity = Severity.III  # for terms given as a list
    crisis_words: bool = True  # also page on the NLP stage's crisis words
    crisis_severity: Severity = Severity.III
    labels: tuple[Label, ...] | None = None  # None: any mention
    resolve_after: PositiveDuration = Field(default="1h", validate_default=True)

    @property
    def term_levels(self) -> dict[str, Severity]:
        if isinstance(self.terms, dict):
            return {t.strip().lower(): s for t, s in self.terms.items() if t.strip()}
        return {t.strip().lower(): self.severity for t in self.terms if t.strip()}

    def problems(self) -> list[str]:
        if not self.term_levels and not self.crisis_words:
            return ["terms: give at least one term, or set crisis_words: true"]
        return []


class KeywordRule(Rule):
    config_model = KeywordConfig
    config: KeywordConfig

    def __init__(self, config: KeywordConfig, topic: str, started_at: datetime):
        super().__init__(config, topic, started_at)
        self._levels = config.term_levels
        self._pending: TimeIndex[Mention] = TimeIndex()
        self._state = Hysteresis(config.resolve_after)

    def idle_until(self) -> datetime | None:
        if self._state.holds:  # a hit holds only for its batch: the next evaluation ends it
            return None
        # without new data nothing hits: only a waiting mention's time or the recovery delay can matter
        return earliest(self._pending.next_time(), self._state.due()) or FOREVER

    def history_needed(self) -> timedelta:
        return self.config.resolve_after

    def hits(self, mention: Mention) -> dict[str, Severity]:
        """The words ``mention`` hits, each with its severity."""
        cfg = self.config
        if cfg.labels is not None and mention.label not in cfg.labels:
            return {}
        text = f"{mention.title or ''}\n{mention.text}".lower()
        found = {term: level for term, level in self._levels.items() if term in text}
        if cfg.crisis_words:  # complaint vocabulary (投诉, 退款 …) pages only when listed in ``terms``
            for word in crisis_words(mention):
                if raises_severity(word):
                    found.setdefault(word.lower(), self._levels.get(word.lower(), cfg.crisis_severity))
        return found

    def add_data(self, mentions: Sequence[Mention], now: datetime) -> list[Match]:
        for m in mentions:
            self._pending.add(m.published_at, m)
        fresh = [m for at, m in self._pending.release(now) if now - at < self.config.resolve_after]
        self._pending.prune(now)
        hits = [(m, found) for m in fresh if (found := self.hits(m))]
        if not hits:
            change = self._state.update(now, None)
            if change is None:
                return []
            return [self._recovered(now, change[1])]
        severity = max((level for _, found in hits for level in found.values()), key=lambda s: s.rank)
        self._state.update(now, severity)
        return [self._firing(now, severity, hits)]

    def _firing(self, now: datetime, severity: Severity, hits: list[tuple[Mention, dict[str, Severity]]]) -> Match:
        hits = sorted(hits, key=lambda h: (-max(s.rank for s in h[1].values()), h[0].published_at))
        words = list(dict.fromkeys(w for _, found in hits for w in sorted(found, key=lambda w: -found[w].rank)))
        first = hits[0][0]
        more = f"（本批共 {len(hits)} 条）" if len(hits) > 1 else ""
        reason = (f"「{self.topic}」出现敏感词「{'、'.join(words[:5])}」："
                  f"{first.author or '网友'}：{_snippet(first.text)}{more}")
        measured = KeywordMeasurement(keywords=tuple(words), count=len(hits), window=self.config.resolve_after)
        evidence = tuple(m for m, _ in hits[:EVIDENCE_SIZE])
        return Match("firing", self.config.name, self.config.type, self.topic, now, severity, reason, measured,
                     evidence)

    def _recovered(self, now: datetime, severity: Severity) -> Match:
        reason = f"「{self.topic}」敏感词告警已平息：{format_duration(self.config.resolve_after)}内未再出现命中内容"
        measured = KeywordMeasurement(count=0, window=self.config.resolve_after)
        return Match("recovered", self.config.name, self.config.type, self.topic, now, severity, reason, measured)


def _snippet(text: str, size: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size] + "…"
