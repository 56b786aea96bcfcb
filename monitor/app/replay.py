"""Replay recorded data through the rules without sending anything, and score the pages.

* :func:`replay_counts` — a count series (``timestamp,value``: negative mentions per bucket)
  through a ``negative_spike`` rule (its defaults unless a config is given).
* :func:`replay_mentions` — scored mentions (JSONL, fields as in :class:`monitor.core.domain.Mention`)
  through every configured rule, evaluated as the daemon would: at each step of simulated time.
* :func:`score_pages` — pages against labelled windows: a page inside a window hits it, every
  other page is false; after a page, further pages within ``refractory`` are not counted (one
  burst counts once). Gives precision, recall and detection delay.

The pages are the daemon's: rule matches go through the same :class:`IncidentManager` (incident
policy, reopening, escalation reminders, quiet hours) on a scratch in-memory database, with the
replay clock as its time (:class:`ReplayIncidents`). Silences are not replayed: they only mute
delivery. Apart from that scratch database the only I/O is in the ``load_*`` readers.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from statistics import median
from typing import Any, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from alerts.alert import Alert
from alerts.engine import RuleEngine
from alerts.incidents import IncidentManager
from alerts.rules.base import Match, RuleConfig
from alerts.rules.negative_spike import NegativeSpikeConfig, NegativeSpikeRule
from monitor.core.domain import Mention
from monitor.core.errors import UsageError
from monitor.storage import Database
from monitor.storage import incidents as incident_store

DEFAULT_TOPIC = "全部"
REFRACTORY = timedelta(hours=1)
DETECTIONS = ("firing", "escalated", "reopened")  # pages that say a rule found something (scored)
_MENTION_FIELDS = {f.name for f in fields(Mention)}


@dataclass(frozen=True)
class Page:
    """One notice the daemon would send: ``firing`` (new), ``escalated`` (worse), ``reopened``
    (again soon after being resolved), ``reminder`` (still unacknowledged) or ``recovered`` (已恢复)."""

    at: datetime
    kind: str
    alert: Alert
    rule_type: str

    def as_json(self) -> dict[str, Any]:
        a = self.alert
        return {"at": self.at.isoformat(), "kind": self.kind, "severity": a.severity.value, "topic": a.topic,
                "rule": a.rule, "rule_type": self.rule_type, "reason": a.reason, "numbers": a.numbers,
                "evidence": [e.external_id for e in a.top_mentions], "incident_id": a.incident_id}


@dataclass(frozen=True)
class Score:
    windows: int
    hit: int
    pages: int  # counted pages (after the refractory period)
    false_pages: int
    delays: tuple[timedelta, ...]  # first counted page in each hit window minus the window's start

    @property
    def precision(self) -> float | None:
        return (self.pages - self.false_pages) / self.pages if self.pages else None

    @property
    def recall(self) -> float | None:
        return self.hit / self.windows if self.windows else None


# -- replay --------------------------------------------------------------------------------
class ReplayIncidents:
    """The daemon's incident handling (:class:`IncidentManager` from the config, or its defaults) on a
    scratch in-memory database; :meth:`step` is what the daemon does with a batch of matches at ``now``."""

    def __init__(self, config=None):
        self.db = Database("sqlite://")
        self.db.migrate()
        self.manager = IncidentManager.from_config(self.db, config) if config is not None else IncidentManager(self.db)
        self._rule_types: dict[tuple[str, str], str] = {}
        self._due: datetime | None = None  # the earliest next_escalation_at of an open incident

    def step(self, matches: Sequence[Match], now: datetime, *, remind: bool = True) -> list[Page]:
        """``handle`` the matches and, with ``remind``, send the reminders due (as the daemon's tick)."""
        for m in matches:
            self._rule_types[m.topic, m.rule] = m.rule_type
        alerts = self.manager.handle(matches, now)
        # reminders(now) finds nothing before the earliest due time, and only handle/reminders move it
        # (nobody acknowledges in a replay): skip the provably empty calls, which are most of them.
        due = remind and self._due is not None and self._due <= now
        if due:
            alerts += self.manager.reminders(now)
        if matches or due:
            with self.db.session() as s:
                self._due = incident_store.next_escalation_at(s)
        return [Page(a.at, "recovered" if a.kind == "resolved" else a.kind, a,
                     self._rule_types.get((a.topic, a.rule), "")) for a in alerts]

    def close(self) -> None:
        self.db.dispose()


def pages_of(matches: Iterable[Match], config=None) -> list[Page]:
    """The notices matches become through the daemon's incident handling, each handled at its own
    time ``at`` (no clock runs in between, so no reminders). A match that only adds evidence at the
    same or a lower severity sends nothing."""
    incidents = ReplayIncidents(config)
    try:
        return [p for m in matches for p in incidents.step([m], m.at, remind=False)]
    finally:
        incidents.close()


def replay_counts(counts: Sequence[tuple[datetime, int]], config: NegativeSpikeConfig | None = None,
                  topic: str = DEFAULT_TOPIC, advance: Callable[[int], None] | None = None, *,
                  app_config=None) -> list[Page]:
    """Run a count series through ``negative_spike``. Row *t* covers ``[t, t + bucket)``:
    its count is placed mid-bucket and the rule evaluated when the bucket ends. Incidents follow
    ``app_config`` (time zone, escalation, quiet hours, plans) or the defaults."""
    config = config or NegativeSpikeConfig(name="负面激增", type="negative_spike")
    if not counts:
        return []
    rule = NegativeSpikeRule(config, topic, counts[0][0])
    half = config.bucket / 2
    incidents = ReplayIncidents(app_config)
    pages: list[Page] = []
    try:
        for at, value in sorted(counts, key=lambda c: c[0]):
            now = at + config.bucket
            pages += incidents.step(rule.add_counts(at + half, value, now=now), now)
            if advance is not None:
                advance(1)
    finally:
        incidents.close()
    return pages


def replay_mentions(mentions: Sequence[Mention], rules: Sequence[RuleConfig], topics: Sequence[str],
                    step: timedelta = timedelta(minutes=1), tail: timedelta = timedelta(hours=2),
                    advance: Callable[[int], None] | None = None, *, app_config=None) -> list[Page]:
    """Feed mentions in publish order and evaluate every ``step`` of simulated time, from the first
    mention to ``tail`` after the last one (so recoveries show). Each step is what the daemon does on a
    poll (the new mentions through the rules, the matches to the incidents) and then on its rules tick
    (the rules at ``now`` with no new data, then the reminders due)."""
    if not mentions:
        return []
    ordered = sorted(mentions, key=lambda m: m.published_at)
    start = ordered[0].published_at
    engine = RuleEngine(rules, topics, started_at=start)
    incidents = ReplayIncidents(app_config)
    end = ordered[-1].published_at + tail
    pages: list[Page] = []
    i, now = 0, start
    try:
        while True:
            j = i
            while j < len(ordered) and ordered[j].published_at <= now:
                j += 1
            pages += incidents.step(engine.add_data(ordered[i:j], now), now, remind=False)
            pages += incidents.step(engine.tick(now), now)
            if advance is not None and j > i:
                advance(j - i)
            i = j
            if now >= end and i >= len(ordered):
                break
            now += step
    finally:
        incidents.close()
    return pages


# -- scoring -------------------------------------------------------------------------------
def score_pages(pages: Iterable[datetime], windows: Sequence[tuple[datetime, datetime]],
                refractory: timedelta = REFRACTORY) -> Score:
    hit: dict[int, timedelta] = {}
    counted = false = 0
    last: datetime | None = None
    for at in sorted(pages):
        if last is not None and at - last < refractory:
            continue
        last = at
        counted += 1
        inside = [k for k, (a, b) in enumerate(windows) if a <= at <= b]
        if not inside:
            false += 1
        for k in inside:
            hit.setdefault(k, at - windows[k][0])
    return Score(len(windows), len(hit), counted, false, tuple(hit[k] for k in sorted(hit)))


def summary_lines(pages: Sequence[Page], span: tuple[datetime, datetime] | None,
                  score: Score | None) -> list[str]:
    kinds = {k: sum(1 for p in pages if p.kind == k) for k in ("firing", "escalated", "recovered", "reopened",
                                                               "reminder")}
    opened = kinds["firing"] + kinds["reopened"]
    reopened = f" ({kinds['reopened']} reopened)" if kinds["reopened"] else ""
    lines = [f"replay: {opened} pages{reopened}, {kinds['escalated']} escalations, {kinds['recovered']} recoveries"]
    if kinds["reminder"]:
        lines[0] += f", {kinds['reminder']} reminders"
    if span is not None:
        days = (span[1] - span[0]) / timedelta(days=1)
        if days >= 1:
            lines[0] += f" over {days:.1f} days ({opened / days:.2f} pages/day)"
        elif days > 0:
            lines[0] += f" over {days * 24:.1f} hours"
    if score is not None:
        p = "-" if score.precision is None else f"{score.precision:.2f}"
        r = "-" if score.recall is None else f"{score.recall:.2f}"
        lines.append(f"labels: {score.hit}/{score.windows} windows hit, {score.false_pages} false of "
                     f"{score.pages} counted pages (1h refractory); precision {p}, recall {r}")
        if score.delays:
            minutes = sorted(d / timedelta(minutes=1) for d in score.delays)
            lines.append(f"delay from window start: median {median(minutes):.0f} min, "
                         f"min {minutes[0]:.0f}, max {minutes[-1]:.0f}")
    return lines


# -- readers ---------------------------------------------------------------------------------
def parse_time(text: str, tz: ZoneInfo | timezone = timezone.utc) -> datetime:
    try:
        at = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"expected an ISO timestamp like 2015-03-01 12:00:00, got {text!r}") from None
    return (at if at.tzinfo else at.replace(tzinfo=tz)).astimezone(timezone.utc)


def load_counts(path: Path, tz: ZoneInfo | timezone = timezone.utc) -> list[tuple[datetime, int]]:
    """CSV ``timestamp,value`` (header optional): negative mentions per bucket."""
    rows = []
    with _open(path) as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row or not "".join(row).strip():
                continue
            if n == 1 and row[0].strip().lower() in {"timestamp", "time", "at"}:
                continue
            if len(row) < 2:
                raise UsageError(f"{path}:{n}: expected timestamp,value")
            try:
                value = float(row[1])
            except ValueError:
                raise UsageError(f"{path}:{n}: value: expected a number, got {row[1]!r}") from None
            if value < 0 or value != int(value):
                raise UsageError(f"{path}:{n}: value: expected a count (whole number >= 0), got {row[1]!r}")
            rows.append((_at(path, n, row[0], tz), int(value)))
    if not rows:
        raise UsageError(f"{path}: no rows")
    return rows


def load_mentions(path: Path, tz: ZoneInfo | timezone = timezone.utc, negative_below: float = 0.4,
                  positive_above: float = 0.6) -> list[Mention]:
    """JSONL of mentions: ``text`` and ``published_at`` required, ``label`` or ``score`` too."""
    out = []
    with _open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{n}: invalid JSON: {exc.msg}") from None
            if not isinstance(doc, dict) or not doc.get("text") or not doc.get("published_at"):
                raise UsageError(f"{path}:{n}: expected an object with text and published_at")
            score, label = doc.get("score"), doc.get("label")
            if label is None and score is None:
                raise UsageError(f"{path}:{n}: needs a label (negative/neutral/positive) or a score")
            if label is None:
                label = "negative" if score < negative_below else "positive" if score > positive_above else "neutral"
            at = _at(path, n, doc["published_at"], tz)
            values = {k: v for k, v in doc.items() if k in _MENTION_FIELDS}
            values.update(
                source=doc.get("source", "replay"), external_id=str(doc.get("external_id", doc.get("id", n))),
                raw_text=doc.get("raw_text", doc["text"]), published_at=at,
                fetched_at=_at(path, n, doc["fetched_at"], tz) if doc.get("fetched_at") else at,
                content_hash=doc.get("content_hash") or hashlib.sha256(doc["text"].encode()).hexdigest(),
                label=label, topics=tuple(doc.get("topics") or ()),
            )
            out.append(Mention(**values))
    return out


def load_windows(path: Path, series: str | None = None, tz: ZoneInfo | timezone = timezone.utc,
                 strict: bool = False) -> list[tuple[datetime, datetime]]:
    """Labelled windows: NAB ``labels.json`` (``{file: [[start, end], ...]}``, the entry named
    like ``series`` — or its only entry unless ``strict``), a JSON list of pairs, or a CSV of
    ``start,end`` rows."""
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(_open(path).read())
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: invalid JSON: {exc.msg}") from None
        if isinstance(doc, dict):
            key = _pick(doc, series, path, strict)
            doc = doc[key]
        pairs = doc
    else:
        with _open(path) as fh:
            pairs = [row for row in csv.reader(fh) if row and "".join(row).strip()]
        if pairs and pairs[0][0].strip().lower() in {"start", "window_start", "from"}:
            pairs = pairs[1:]
    windows = []
    for n, pair in enumerate(pairs, 1):
        if not isinstance(pair, (list, tuple)) or len(pair) < 2:
            raise UsageError(f"{path}: window {n}: expected [start, end]")
        windows.append((_at(path, n, pair[0], tz), _at(path, n, pair[1], tz)))
    return windows


def _pick(doc: dict, series: str | None, path: Path, strict: bool) -> str:
    if series is not None:
        for key in doc:
            if Path(key).name == Path(series).name or Path(key).stem == Path(series).stem:
                return key
    if len(doc) == 1 and not strict:
        return next(iter(doc))
    raise UsageError(f"{path}: no labels for {series or '(no series)'}; labelled series: {', '.join(sorted(doc))}")


def _at(path: Path, n: int, text: Any, tz) -> datetime:
    try:
        return parse_time(text, tz)
    except UsageError as exc:
        raise UsageError(f"{path}:{n}: {exc}") from None


def _open(path: Path):
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
