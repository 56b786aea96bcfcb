"""The pipeline, as one straight line:

    poll → normalise → dedup → score → store → rules → incidents → notify

``Pipeline.poll(source_name)`` runs it once for one source; the daemon calls it
from the scheduler. A failing source is recorded (reason, consecutive failures)
and the other sources go on; items are stored in the same transaction that
advances the source's cursor, so a crash never skips or duplicates an item.
A poll is cancellable (shutdown, reload: :meth:`Pipeline.cancel`) up to that
transaction, and then stores nothing; a retired pipeline is closed by its last job.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Sequence

from alerts.channels.base import Channel
from alerts.channels.registry import CHANNELS
from alerts.delivery import mention_from_json, mention_to_json
from alerts.engine import RuleEngine
from alerts.incidents import IncidentManager
from alerts.notify import Notifier
from monitor.core import cancel
from monitor.core.domain import Mention
from monitor.core.configtypes import format_duration
from monitor.core.errors import Cancelled, Deferred, SourceError
from monitor.app.jobs import Jobs, job
from monitor.app.metrics import Metrics
from monitor.storage import Database
from monitor.storage import counts, repo
from nlp.clean import clean
from nlp.crisis import CrisisLexicon
from nlp.sentiment import Scorer, label_for, score_many, scorer_from_config
from nlp.topics import TopicMatcher
from sources.base import FetchResult, Source
from sources.dedup import Deduper
from sources.logquiet import QuietLog
from sources.normalise import normalise
from sources.registry import SOURCES

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class PollReport:
    source: str
    fetched: int = 0
    stored: int = 0
    skipped: list[str] = field(default_factory=list)
    not_modified: bool = False
    alerts: int = 0
    error: str | None = None
    deferred: str | None = None  # the source chose not to poll (slowing down)
    cancelled: bool = False  # stopped by a shutdown or reload; nothing stored


class Pipeline:
    def __init__(self, config, db: Database, *, clock: Callable[[], datetime] = utcnow,
                 scorer: Scorer | None = None, channels: Sequence[Channel] | None = None,
                 metrics: Metrics | None = None, evaluate: bool = True):
        self.config = config
        # False on a node of a cluster: polls and pushes only store; the node leading the rules reads
        # what every node stored (Pipeline.evaluate_stored) and alone runs rules, incidents and pages.
        self.evaluate = evaluate
        self.metrics = metrics if metrics is not None else Metrics()
        self.quiet_log = QuietLog(log)  # one line per source and kind of skipped item per interval, with a count
        self.db = db
        self.clock = clock
        self.sources: dict[str, Source] = {
            s.name: SOURCES.get(s.type)(s) for s in config.sources if s.enabled
        }
        self.matcher = TopicMatcher.from_config(config.topics)
        self.crisis = CrisisLexicon.from_config(config.crisis)
        self.scorer = scorer if scorer is not None else scorer_from_config(config)
        self.rules = self._rule_engine()
        self.deduper = Deduper()
        self._dedup_loaded = False
        self._dedup_seen = 0  # the newest mention id the story index has seen (a cluster node refreshes from it)
        self._own_ids: set[int] = set()  # stored here since: already in the index
        self.incidents = IncidentManager.from_config(db, config)
        channels = channels if channels is not None else [CHANNELS.get(c.type)(c) for c in config.channels]
        self.notifier = Notifier(db, channels, lease=config.delivery.lease, quiet_hours=config.incidents.quiet_hours)
        self._lock = threading.Lock()  # one writer through dedup → store → rules → incidents at a time
        self.jobs = Jobs(f"pipeline of {len(self.sources)} sources")  # running polls, pushes, ticks

    def _rule_engine(self) -> RuleEngine:
        config = self.config
        return RuleEngine(config.rules, [t.name for t in config.topics], started_at=self.clock(),
                          sources=[s for s in config.sources if s.enabled],
                          snapshot_sources={n for n, s in self.sources.items() if getattr(s, "snapshot", False)})

    def reset_rules(self) -> None:
        """Forget the rules' state (a node that starts leading them warms them up afresh)."""
        with self._lock:
            self.rules = self._rule_engine()

    # -- start-up ------------------------------------------------------------------
    def warm_up(self, *, up_to_id: int | None = None, skip_ids: frozenset[int] | set[int] = frozenset()) -> int:
        """Bring the rules back to where they were, so a restart neither forgets nor re-pages.

        Days of baseline come as per-minute counts (a few thousand small rows); only the rules'
        current windows (typically the last hour) come as stored mentions. Returns the number of
        mentions replayed. A cluster's new rules leader replays only mentions up to ``up_to_id`` and
        not ``skip_ids`` (ids still committing): its feed, started first, reads the rest.
        """
        now = self.clock()
        self._warm_up_sources(now)
        mentions_span, counts_span = self.rules.mentions_needed(), self.rules.counts_needed()
        if not mentions_span and not counts_span:
            return 0
        step = self.rules.count_step()
        cutoff = counts.step_start(now - mentions_span, step)  # counts before this, mentions from it
        with self.db.session() as s:
            n_counts = (self.rules.add_counts(counts.since(s, now - counts_span, cutoff, step), cutoff)
                        if counts_span and now - counts_span < cutoff else 0)
            history = [m for m in repo.iter_mentions_since(s, cutoff)
                       if (up_to_id is None or m.id <= up_to_id) and m.id not in skip_ids]
        with self._lock:
            alerts = self.incidents.handle(self.rules.add_data(history, now), now, replay=True)
        self.notifier.deliver(alerts, now)
        log.info("[stage=rules] warmed up with %d counts (per %s) before %s and %d stored mentions since",
                 n_counts, format_duration(step), cutoff.isoformat(timespec="minutes"), len(history))
        return len(history)

    def _warm_up_sources(self, now: datetime) -> None:
        """Source health rules continue from the stored source state (failures, last item); the rules
        of hot lists from each list's latest stored poll."""
        with self.db.session() as s:
            states = repo.source_states(s)
            lists = {name: repo.latest_snapshot(s, name) for name, src in self.sources.items()
                     if getattr(src, "snapshot", False)}
        with self._lock:
            matches = self.rules.restore_sources(states, now)
            for name, latest in lists.items():
                if latest is not None:
                    matches += self.rules.observe_snapshot(name, snapshot_entries(latest[1]), latest[0])
            alerts = self.incidents.handle(matches, now, replay=True)
        self.notifier.deliver(alerts, now)

    # -- one poll ------------------------------------------------------------------
    @job
    def poll(self, source_name: str) -> PollReport:
        with cancel.scope(self.jobs.token):
            try:
                return self._poll(source_name)
            except Cancelled:
                log.info("[source=%s stage=fetch] poll cancelled (shutdown or reload): nothing stored, "
                         "fetched again next run", source_name)
                return PollReport(source_name, cancelled=True)

    def _poll(self, source_name: str) -> PollReport:
        source = self.sources[source_name]
        report = PollReport(source_name)
        with self.db.session() as s:
            state = repo.load_source_state(s, source_name)
        try:
            result = source.fetch(state)
        except Deferred as exc:
            log.info("[source=%s stage=fetch] not polled: %s", source_name, exc.reason)
            report.deferred = exc.reason
            self.metrics.polls.labels(source_name, "deferred").inc()
            return report
        except SourceError as exc:
            return self._failed(source, report, exc.reason)
        except Exception as exc:  # noqa: BLE001 - a bug in one source must not stop the daemon
            log.exception("[source=%s stage=fetch] unexpected error", source_name)
            return self._failed(source, report, f"unexpected {exc.__class__.__name__}: {exc}")
        return self.ingest(source_name, result, report)

    @job
    def ingest(self, source_name: str, result: FetchResult, report: PollReport | None = None) -> PollReport:
        """Everything after fetching, for polled and pushed (webhook) items alike; returns once stored."""
        source = self.sources[source_name]
        report = report or PollReport(source_name)
        now = self.clock()
        report.fetched, report.not_modified = len(result.items), result.not_modified
        report.skipped = list(result.skipped)
        # Parsing and scoring (most of the CPU) run outside the lock, so polls overlap; what needs
        # one order — dedup's story index, storing, the rules, incidents — runs under it.
        # A hot list (a snapshot source) is read whole every poll: every entry is scored and matched to
        # topics, for the rules that watch lists see what left it too; only new entries are stored.
        snapshot = getattr(source, "snapshot", False) and not result.not_modified
        every = self._normalise(source, result, now, report)
        mentions = self._new_only(source_name, every)
        cancel.current().check()  # a cancelled poll stops between stages (pushes are never cancelled)
        with self.metrics.scoring.time():
            scored = self._score(_unique(every) if snapshot else mentions)
        new = {m.external_id for m in mentions}
        mentions = [m for m in scored if m.external_id in new] if snapshot else scored
        cancel.current().check()
        with self._lock:
            stored = self._store(source, result, mentions if snapshot else self._link_stories(mentions), now,
                                 volume=not snapshot)
            report.stored = len(stored)
            if snapshot:  # kept whole: a cluster's rules leader reads it, a restart takes the list up from it
                with_ids = {m.external_id: m for m in stored}
                entries = [with_ids.get(m.external_id, m) for m in scored]
                with self.db.session() as s:
                    repo.record_snapshot(s, source_name, [mention_to_json(m) for m in entries], now)
            if not self.evaluate:
                matches = []
            elif snapshot:
                matches = self.rules.observe_snapshot(source_name, entries, now)
            else:
                matches = self.rules.add_data(stored, now)
            if self.evaluate:
                self.metrics.rule_evaluations.inc()
                matches += self.rules.observe_poll(source_name, True, None, len(stored), now)
            alerts = self.incidents.handle(matches, now)
        self.notifier.deliver(alerts, now)
        report.alerts = len(alerts)
        self._count(report, alerts)
        self.quiet_log.skipped(source_name, "normalise", report.skipped)
        log.log(logging.INFO if report.stored else logging.DEBUG, "[source=%s stage=store] %s", source_name,
                "not modified" if result.not_modified else f"{report.fetched} fetched, {report.stored} new")
        return report

    @job
    def tick(self) -> int:
        """Evaluate rules as time passes (conditions start and end without new data); send due reminders."""
        now = self.clock()
        with self._lock:
            alerts = self.incidents.handle(self.rules.tick(now), now)
            self.metrics.rule_evaluations.inc()
            alerts += self.incidents.reminders(now)
        self.notifier.deliver(alerts, now)
        return len(alerts)

    @job
    def evaluate_stored(self, mentions: Sequence[Mention], polls: Sequence[tuple[str, bool, str | None, int]],
                        now: datetime, snapshots: Sequence[tuple[str, list[dict]]] = ()) -> int:
        """The rules over what the nodes of a cluster stored (the leader's step): new mentions, poll
        outcomes (source, ok, error, stored), hot lists' new whole polls. The number of alerts."""
        with self._lock:
            matches = self.rules.add_data(list(mentions), now) if mentions else []
            for source, entries in snapshots:
                if source in self.sources:
                    matches += self.rules.observe_snapshot(source, snapshot_entries(entries), now)
            for source, ok, error, n in polls:
                if source in self.sources:
                    matches += self.rules.observe_poll(source, ok, error, n, now)
            self.metrics.rule_evaluations.inc()
            alerts = self.incidents.handle(matches, now)
        self.notifier.deliver(alerts, now)
        return len(alerts)

    @job
    def deliver_due(self) -> int:
        """Send the notifications that are due: retries, rate-limited sends, pages left by a restart."""
        return self.notifier.run_due(self.clock())

    def _count(self, report: PollReport, alerts) -> None:
        m = self.metrics
        m.polls.labels(report.source, "not_modified" if report.not_modified else "ok").inc()
        m.fetched.labels(report.source).inc(report.fetched)
        m.stored.labels(report.source).inc(report.stored)
        for alert in alerts:
            m.alerts.labels(alert.kind, alert.severity.value).inc()

    # -- stages ----------------------------------------------------------------------
    def _failed(self, source: Source, report: PollReport, reason: str) -> PollReport:
        now = self.clock()
        with self.db.session() as s:
            failures = repo.record_poll_failure(s, source.name, source.config.type, reason, now)
        log.error("[source=%s stage=fetch] %s (%d consecutive failure%s; will retry next run)",
                  source.name, reason, failures, "" if failures == 1 else "s")
        report.error = reason
        self.metrics.polls.labels(source.name, "failed").inc()
        self.metrics.source_failures.labels(source.name).inc()
        if not self.evaluate:  # the leader reads the failure from the source's stored state
            return report
        with self._lock:
            alerts = self.incidents.handle(self.rules.observe_poll(source.name, False, reason, 0, now), now)
        self.notifier.deliver(alerts, now)
        report.alerts = len(alerts)
        return report

    def record_failure(self, source_name: str, reason: str) -> PollReport:
        """A failure reported from outside a poll (e.g. a rejected push): recorded like a failed poll."""
        return self._failed(self.sources[source_name], PollReport(source_name), reason)

    def _normalise(self, source: Source, result: FetchResult, now: datetime, report: PollReport) -> list[Mention]:
        out = []
        for item in result.items:
            try:
                out.append(normalise(item, source=source.name, tz=source.config.timezone, fetched_at=now))
            except ValueError as exc:
                report.skipped.append(f"item {item.external_id!r}: {exc}")
        return out

    def _new_only(self, source_name: str, mentions: list[Mention]) -> list[Mention]:
        """Drop items stored before (by external id) and repeats within the batch."""
        unique = {m.external_id: m for m in _unique(mentions)}
        with self.db.session() as s:
            known = repo.known_external_ids(s, source_name, unique)
        return [m for key, m in unique.items() if key not in known]

    def _link_stories(self, mentions: list[Mention]) -> list[Mention]:
        """Link copies and reposts to their story (under the lock: the index is shared by every source)."""
        if not self._dedup_loaded:  # stories of the last days survive a restart
            self._dedup_loaded = True
            with self.db.session() as s:
                self.deduper.load(repo.dedup_history(s, self.clock() - self.deduper.window, self.deduper.max_entries))
                self._dedup_seen = repo.last_mention_id(s)
        elif not self.evaluate:  # a node of a cluster: what the other nodes stored since counts too
            with self.db.session() as s:
                rows = repo.dedup_after(s, self._dedup_seen, self.deduper.max_entries)
            if rows:
                self._dedup_seen = rows[-1][0]
                self.deduper.load(r[1:] for r in rows if r[0] not in self._own_ids)
            self._own_ids = {i for i in self._own_ids if i > self._dedup_seen}
        return self.deduper.link(mentions)

    def _score(self, mentions: list[Mention]) -> list[Mention]:
        """Sentiment (batch: a large poll is scored in the worker pool), topics and crisis words."""
        scores = score_many(self.scorer, [m.text for m in mentions])
        sent = self.config.sentiment
        out = []
        for m, score in zip(mentions, scores):
            label = label_for(score, negative_below=sent.negative_below, positive_above=sent.positive_above)
            folded = clean(f"{m.title or ''}\n{m.text}").text.lower()
            out.append(replace(m, score=score, label=label, model_version=self.scorer.version,
                               topics=self.matcher.match_folded(folded, m.source),
                               crisis_words=self.crisis.find_folded(folded)))
        return out

    def _store(self, source: Source, result: FetchResult, mentions: list[Mention], now: datetime, *,
               volume: bool = True) -> list[Mention]:
        """``volume``: the mentions count as people talking (not a hot list's entries)."""
        with self.db.session() as s:  # items, their counts and the cursor in one transaction
            stored = repo.insert_mentions(s, mentions)
            if not self.evaluate:
                self._own_ids.update(m.id for m in stored if m.id is not None)
            if volume:
                counts.add(s, stored)
            repo.record_poll_success(s, source.name, source.config.type, result.state, now, len(stored))
        return stored

    def cancel(self) -> None:
        """Cancel the running polls (they store nothing); pushes, ticks and deliveries finish."""
        self.jobs.token.cancel()

    def retire(self) -> bool:
        """Close once the last running job ends (now, True, if none runs)."""
        return self.jobs.when_idle(self.close)

    def close(self) -> None:
        getattr(self.scorer, "close", lambda: None)()  # the batch-scoring worker pool, if started
        for source in self.sources.values():
            source.close()
        for channel in self.notifier.channels:
            channel.close()


def snapshot_entries(stored: list[dict]) -> list[Mention]:
    """A stored hot-list poll back as mentions (an unreadable entry is skipped, not the list)."""
    out = []
    for data in stored:
        try:
            out.append(mention_from_json(data))
        except (KeyError, TypeError, ValueError):
            log.warning("[stage=rules] an unreadable stored hot-list entry was skipped")
    return out


def _unique(mentions: list[Mention]) -> list[Mention]:
    """The first mention of each external id, in order."""
    seen: dict[str, Mention] = {}
    for m in mentions:
        seen.setdefault(m.external_id, m)
    return list(seen.values())
