"""Typed ORM models. Every datetime column is timezone-aware UTC (see UTCDateTime).

Changing a model means adding an Alembic revision under monitor/migrations/versions.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, cast, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint, literal_column, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC — the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime passed to the database; use aware UTC")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class SourceStateRow(Base):
    __tablename__ = "source_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    cursor: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_poll_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_item_at: Mapped[datetime | None]  # when a new item was last stored
    items_stored: Mapped[int] = mapped_column(Integer, default=0)
    first_poll_at: Mapped[datetime | None]  # "stale for" counts from here until a first item arrives
    # several daemons (migration 0012): when the source is next due, which node polled it last, and its
    # politeness (slow-down, Retry-After) so that every node keeps to it
    next_poll_at: Mapped[datetime | None]
    polled_by: Mapped[str | None] = mapped_column(String(200))
    poll_claimed_at: Mapped[datetime | None]  # polled_by took this period's poll then (last_poll_at follows)
    politeness: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # a hot list's latest whole poll, its entries in list order (migration 0014): the rules leader of a
    # cluster reads it, and a restart takes the list's rules up from it
    snapshot: Mapped[list[Any] | None] = mapped_column(JSON)
    snapshot_at: Mapped[datetime | None]


class MentionRow(Base):
    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_mentions_source_external_id"),
        Index("ix_mentions_published_at", "published_at"),
        Index("ix_mentions_content_hash", "content_hash"),
        Index("ix_mentions_fetched_at", "fetched_at"),  # the rules leader reads what any node stored (0012)
        # the console's mention search (migration 0008; the GIN index on topics follows the class)
        Index("ix_mentions_source_published_at", "source", "published_at"),
        Index("ix_mentions_label_published_at", "sentiment_label", "published_at"),
        # its text filter (LIKE '%…%'): a pg_trgm index, on PostgreSQL only (migration 0009); a literal
        # column, so that autogenerate skips it on SQLite like the GIN index on topics below
        Index("ix_mentions_text_trgm", literal_column("text"), postgresql_using="gin",
              postgresql_ops={"text": "gin_trgm_ops"}),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    raw_text: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]
    fetched_at: Mapped[datetime]
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_label: Mapped[str | None] = mapped_column(String(20))
    model_version: Mapped[str | None] = mapped_column(String(100))
    topics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # reach (None: the source does not say) — migration 0003
    platform: Mapped[str | None] = mapped_column(String(40))
    author_followers: Mapped[int | None] = mapped_column(BigInteger)
    likes: Mapped[int | None] = mapped_column(BigInteger)
    reposts: Mapped[int | None] = mapped_column(BigInteger)
    comments: Mapped[int | None] = mapped_column(BigInteger)
    # dedup: a copy / repost belongs to the story of its root mention (story_id NULL = a root)
    simhash: Mapped[int | None] = mapped_column(BigInteger)  # signed 64-bit
    story_id: Mapped[int | None] = mapped_column(Integer, index=True)
    dup_kind: Mapped[str | None] = mapped_column(String(10))  # exact | near
    repost_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # crisis-lexicon hits (nlp/crisis.py) — migration 0002
    crisis_words: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")


# "Has this topic" is jsonb containment on PostgreSQL, answered by this index (migration 0008). SQLite
# cannot build it (it is made on PostgreSQL only) nor reflect it (autogenerate skips it there, with a warning).
Index("ix_mentions_topics_gin", cast(MentionRow.topics, JSONB).label("topics_jsonb"), postgresql_using="gin",
      postgresql_ops={"topics_jsonb": "jsonb_path_ops"})


class MentionCountRow(Base):
    """Mentions and negatives per topic, platform and minute of publication (migration 0010).

    Written in the transaction that stores the mentions, so the rules' warm-up after a restart
    reads days of history as a few thousand small rows instead of every mention.
    """

    __tablename__ = "mention_counts"

    topic: Mapped[str] = mapped_column(String(100), primary_key=True)
    platform: Mapped[str] = mapped_column(String(40), primary_key=True)  # '' when the source does not say
    minute: Mapped[datetime] = mapped_column(primary_key=True)  # start of the minute, UTC
    negative: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    negative_heat: Mapped[float] = mapped_column(Float, default=0.0)  # 舆情热度 of the negatives (core.heat)

    __table_args__ = (Index("ix_mention_counts_minute", "minute"),)


class SentimentFeedbackRow(Base):
    """A person's correction of a stored mention's sentiment (training data for the next model)."""

    __tablename__ = "sentiment_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id", ondelete="SET NULL"), index=True)
    label: Mapped[str] = mapped_column(String(20))  # negative | neutral | positive
    text: Mapped[str] = mapped_column(Text)  # the text as labelled (kept if the mention is pruned)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]
    previous_label: Mapped[str | None] = mapped_column(String(20))
    previous_score: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(100))  # the model that had scored it


class IncidentRow(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        # At most one active (not resolved) incident per group (a topic, or topic + rule), enforced by the database.
        Index(
            "uq_incidents_active_group",
            "group_key",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_incidents_opened_at", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(300))
    topic: Mapped[str] = mapped_column(String(100))
    rule: Mapped[str] = mapped_column(String(100))
    rule_type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(20))  # open | acknowledged | resolved
    title: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    numbers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    last_notified_at: Mapped[datetime | None]
    plan: Mapped[str | None] = mapped_column(String(100))
    assignee: Mapped[str | None] = mapped_column(String(100))
    last_signal_at: Mapped[datetime | None]  # the rule's latest firing evidence
    reopened_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # escalation: the step of the current round last notified (-1 = none yet), the round, when next
    escalation_step: Mapped[int] = mapped_column(Integer, default=-1, server_default="-1")
    escalation_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)
    # rule -> severity of each rule firing into this incident now (migration 0011; NULL on older rows:
    # the opening rule alone); the incident resolves when the last of them recovers
    signals: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # 主要诉求 / 舆情热度 / 最大传播 as of the latest page (alerts.crisis_summary, JSON form; migration 0011)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    events: Mapped[list["IncidentEventRow"]] = relationship(
        back_populates="incident", order_by="IncidentEventRow.id", cascade="all, delete-orphan"
    )


class IncidentStepRow(Base):
    """One step of the response plan attached to an incident (应急预案清单)."""

    __tablename__ = "incident_steps"
    __table_args__ = (UniqueConstraint("incident_id", "position", name="uq_incident_steps_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1-based, as staff refer to it
    plan: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime | None]
    reply: Mapped[str | None] = mapped_column(Text)  # the rendered reply template
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | done | skipped
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(100))


class IncidentEventRow(Base):
    """The incident timeline: opened, evidence, notified, acknowledged, note, resolved …"""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    incident: Mapped[IncidentRow] = relationship(back_populates="events")


class NotificationRow(Base):
    """Delivery log: one row per attempt to send one alert through one channel."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_channel_at", "channel", "at"),)  # rate limits count recent sends

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(100))
    alert_kind: Mapped[str] = mapped_column(String(20))
    dedup_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # sent | failed | silenced
    attempt: Mapped[int] = mapped_column(Integer, default=1)  # 0 = not attempted (silenced)
    at: Mapped[datetime]
    error: Mapped[str | None] = mapped_column(Text)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"), index=True)


class PageRow(Base):
    """The delivery outbox: one alert to deliver (serialised) and its overall outcome."""

    __tablename__ = "pages"
    __table_args__ = (
        # Two daemons can never queue the same page at once (migration 0012); once it settled, the
        # notification log's dedup decides about a later copy.
        Index("uq_pages_pending_dedup_key", "dedup_key", unique=True,
              sqlite_where=text("status IN ('new', 'pending')"),
              postgresql_where=text("status IN ('new', 'pending')")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    alert_kind: Mapped[str] = mapped_column(String(20))
    dedup_key: Mapped[str] = mapped_column(String(200))
    alert: Mapped[dict[str, Any]] = mapped_column(JSON)  # alerts.delivery.alert_to_json
    status: Mapped[str] = mapped_column(String(20))  # new (not queued yet) | pending | delivered | failed
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]  # delivered to a first channel, or given up on every channel
    alarm_at: Mapped[datetime | None]  # when "reached no channel" was first reported


class DeliveryRow(Base):
    """One page through one channel: retried with backoff until sent or out of attempts."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("page_id", "channel", name="uq_deliveries_page_channel"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]  # due time while pending (also the claim lease)
    last_error: Mapped[str | None] = mapped_column(Text)
    fallback_for: Mapped[str | None] = mapped_column(String(100))  # the channel this one stands in for
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # the cluster node sending it (0012)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SilenceRow(Base):
    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    matcher: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"topic": ..., "rule": ..., "severity": ...}
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class DaemonLeaseRow(Base):
    """The one daemon allowed to poll this database, and its heartbeat (``monitor status``)."""

    __tablename__ = "daemon_lease"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    holder: Mapped[str] = mapped_column(String(100))  # random per daemon start
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # version, config path, sources


class ClusterNodeRow(Base):
    """One daemon of a cluster (several daemons on one PostgreSQL) and its heartbeat (migration 0012)."""

    __tablename__ = "cluster_nodes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # random per daemon start
    name: Mapped[str] = mapped_column(String(200))  # host:pid unless configured
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20))  # running | stopping
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # polls, leader, jobs running


class HostSlotRow(Base):
    """One of a host's request slots, taken by a node of a cluster until released or ``expires_at``
    (migration 0013): a host's concurrency limit holds across every daemon."""

    __tablename__ = "host_slots"

    host: Mapped[str] = mapped_column(String(300), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(250))  # node name + thread
    expires_at: Mapped[datetime]


class ClusterLeaseRow(Base):
    """A piece of work only one node may do at a time (the rules), held until ``expires_at``."""

    __tablename__ = "cluster_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(40))
    node_name: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class UserRow(Base):
    """A person who may log in to the web console; ``role`` is viewer, responder or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(default=False)
    last_login_at: Mapped[datetime | None]
