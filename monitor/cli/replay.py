"""`monitor replay`: run rules over recorded data without sending anything.

    monitor replay mentions.jsonl [--config FILE]       # scored mentions through the rules
    monitor replay --counts series.csv [--config FILE]  # negatives per bucket through negative_spike
    ... --labels labels.json                            # + precision, recall and detection delay

Each page the daemon would send — its incident handling replayed: reopening, reminders, quiet
hours — is printed to stdout as one JSON line (``at``, ``kind`` firing/escalated/reopened/reminder/
recovered, ``severity``, ``topic``, ``rule``, ``reason``, ``numbers``, ``incident_id``); a summary
goes to stderr. Without ``--config`` the rule is ``negative_spike`` with its default settings.
Registered on the main app by one import line in :mod:`monitor.cli.main`.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from monitor.cli.main import app, cli_errors, err
from monitor.core.errors import UsageError

DEFAULT_TOPIC = "全部"  # monitor.app.replay.DEFAULT_TOPIC, spelled out: the rules and storage load only when replaying


@app.command("replay")
@cli_errors
def replay(
    mentions: Optional[Path] = typer.Argument(None, help="JSONL of mentions (text, published_at, label or score, …)."),
    counts: Optional[Path] = typer.Option(None, "--counts", help="CSV timestamp,value: negative mentions per bucket."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Take rules, topics and sentiment thresholds "
                                          "from this config (default: negative_spike with its defaults)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Labelled windows: NAB labels.json or CSV start,end."),
    series: Optional[str] = typer.Option(None, "--series", help="Entry of labels.json to use (default: the counts "
                                         "file's name)."),
    rule: Optional[str] = typer.Option(None, "--rule", help="With --counts and --config: the negative_spike rule "
                                       "to use (default: the first)."),
    topic: str = typer.Option(DEFAULT_TOPIC, "--topic", help="Topic for data that names none."),
    step: str = typer.Option("1m", "--step", help="Mentions: evaluate rules every STEP of simulated time."),
    tz: str = typer.Option("UTC", "--tz", help="Time zone of timestamps written without an offset."),
) -> None:
    """Run rules over recorded mentions or counts; print the pages they would send (nothing is sent)."""
    from alerts.rules.negative_spike import NegativeSpikeConfig
    from monitor.app.config import load_config
    from monitor.app.progress import progress_counter
    from monitor.app.replay import (DETECTIONS, load_counts, load_mentions, load_windows, replay_counts,
                                    replay_mentions, score_pages, summary_lines)
    from monitor.core.configtypes import parse_duration

    if (mentions is None) == (counts is None):
        raise UsageError("give either a JSONL file of mentions or --counts FILE.csv (one of them)")
    zone = _zone(tz)
    cfg = load_config(config) if config is not None else None
    if counts is not None:
        data = load_counts(counts, zone)
        with progress_counter("replaying", len(data), unit="buckets") as advance:
            pages = replay_counts(data, _spike_config(cfg, rule), topic, advance=advance, app_config=cfg)
        span = (data[0][0], data[-1][0])
    else:
        try:
            every = parse_duration(step)
        except Exception:
            raise UsageError(f'--step: expected a duration like "1m", got {step!r}') from None
        if every <= timedelta(0):
            raise UsageError(f"--step: must be positive, got {step!r}")
        sentiment = cfg.sentiment if cfg is not None else None
        data = load_mentions(mentions, zone, *((sentiment.negative_below, sentiment.positive_above)
                                               if sentiment else ()))
        data, topics = _with_topics(data, cfg, topic)
        rules = cfg.rules if cfg is not None and cfg.rules else (NegativeSpikeConfig(name="负面激增",
                                                                                      type="negative_spike"),)
        with progress_counter("replaying", len(data), unit="mentions") as advance:
            pages = replay_mentions(data, rules, topics, step=every, advance=advance, app_config=cfg)
        span = (min(m.published_at for m in data), max(m.published_at for m in data)) if data else None
    for page in pages:
        typer.echo(json.dumps(page.as_json(), ensure_ascii=False))
    score = None
    if labels is not None:
        windows = load_windows(labels, series or (counts.name if counts is not None else mentions.name), zone,
                               strict=series is not None)
        score = score_pages([p.at for p in pages if p.kind in DETECTIONS], windows)
    for line in summary_lines(pages, span, score):
        err.print(line, highlight=False, markup=False)


def _zone(name: str):
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz: unknown time zone {name!r}, expected e.g. Asia/Shanghai") from None


def _spike_config(cfg, name: str | None):
    from alerts.rules.negative_spike import NegativeSpikeConfig

    if cfg is None:
        if name is not None:
            raise UsageError("--rule needs --config")
        return NegativeSpikeConfig(name="负面激增", type="negative_spike")
    spikes = [r for r in cfg.rules if r.type == "negative_spike"]
    chosen = [r for r in spikes if name is None or r.name == name]
    if not chosen:
        known = ", ".join(r.name for r in spikes) or "(none)"
        raise UsageError(f"--counts needs a negative_spike rule in the config"
                         f"{f' named {name!r}' if name else ''}; negative_spike rules: {known}")
    return chosen[0]


def _with_topics(data, cfg, default: str):
    """Mentions without topics get the config's topic matches, else ``default``."""
    from dataclasses import replace

    from nlp.topics import Topic, TopicMatcher

    match = None
    if cfg is not None and cfg.topics:
        if hasattr(TopicMatcher, "from_config"):  # the matcher the pipeline uses (expressions, per-source topics)
            matcher = TopicMatcher.from_config(cfg.topics)
            match = lambda m: matcher.match(f"{m.title or ''}\n{m.text}", m.source)  # noqa: E731
        else:
            matcher = TopicMatcher(Topic(t.name, t.keywords, t.exclude) for t in cfg.topics)
            match = lambda m: matcher.match(f"{m.title or ''}\n{m.text}")  # noqa: E731
    out = []
    for m in data:
        if not m.topics:
            m = replace(m, topics=match(m) if match else (default,))
        out.append(m)
    names = {t for m in out for t in m.topics}
    if cfg is not None and cfg.topics:
        names |= {t.name for t in cfg.topics}
    return out, sorted(names)
