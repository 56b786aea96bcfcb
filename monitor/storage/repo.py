"""Queries and writes for mentions and source state (short, explicit transactions)."""

from __future__ import annotations

from collections import Counter
from dataclasses import MISSING, dataclass, fields, replace
from datetime import datetime
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import Row, and_, bindparam, cast, exists, func, literal, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.core.domain import Mention, SourceState
from monitor.storage.models import MentionRow, SourceStateRow

_ERROR_MAX = 2000


def known_external_ids(session: Session, source: str, external_ids: Iterable[str]) -> set[str]:
    ids = list(set(external_ids))
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        found.update(
            session.scalars(
                select(MentionRow.external_id).where(MentionRow.source == source, MentionRow.external_id.in_(chunk))
            )
        )
    return found


def insert_mentions(session: Session, mentions: Sequence[Mention]) -> list[Mention]:
    """Insert idempotently (keyed by source + external id); return the rows actually inserted, with ids.

    A mention already present (e.g. stored just before a crash, before the
    cursor moved) is skipped, never duplicated. A mention that dedup marked as a
    copy of another (``duplicate_of``) is linked to that mention's story root
    (``story_id``), whose ``repost_count`` grows by one.

    A handful of statements whatever the batch size: one query for the story roots stored
    earlier, one multi-row INSERT … RETURNING, then (only when there are copies) one update of
    the story links made within the batch and one of the roots' repost counts.
    """
    if not mentions:
        return []
    table = MentionRow.__table__
    position = {(m.source, m.external_id): i for i, m in enumerate(mentions)}
    stored_roots = _stored_roots(session, {m.duplicate_of for m in mentions if m.duplicate_of is not None})
    rows, later = [], set()  # later: copies of a mention earlier in this batch, linked once it has an id
    for i, m in enumerate(mentions):
        if m.duplicate_of is not None:
            if m.duplicate_of in stored_roots:
                m = replace(m, story_id=stored_roots[m.duplicate_of])
            elif position.get(m.duplicate_of, i) < i:
                later.add(i)
            else:
                m = replace(m, dup_kind=None, duplicate_of=None)
        rows.append(m)
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[session.get_bind().dialect.name]
    add = (insert(table).on_conflict_do_nothing(index_elements=["source", "external_id"])
           .returning(table.c.id, table.c.source, table.c.external_id))
    ids = {(r.source, r.external_id): r.id for r in session.execute(add, [_row_values(m) for m in rows])}
    roots: dict[tuple[str, str], int] = {}  # (source, external_id) -> its story root's id, this batch
    inserted: list[Mention] = []
    links: list[dict[str, int]] = []
    for i, m in enumerate(rows):
        key = (m.source, m.external_id)
        if key not in ids:
            continue
        if i in later:
            root = roots.get(m.duplicate_of)
            if root is None:  # its root was not inserted after all: a mention of its own
                m = replace(m, dup_kind=None, duplicate_of=None)
                links.append({"row_id": ids[key], "root_id": None, "kind": None})
            else:
                m = replace(m, story_id=root)
                links.append({"row_id": ids[key], "root_id": root, "kind": m.dup_kind})
        roots[key] = m.story_id or ids[key]
        inserted.append(replace(m, id=ids[key]))
    if links:
        session.execute(update(table).where(table.c.id == bindparam("row_id"))
                        .values(story_id=bindparam("root_id"), dup_kind=bindparam("kind")), links)
    reposts = Counter(m.story_id for m in inserted if m.story_id is not None)
    if reposts:
        session.execute(update(table).where(table.c.id == bindparam("root_id"))
                        .values(repost_count=table.c.repost_count + bindparam("n")),
                        [{"root_id": root, "n": n} for root, n in sorted(reposts.items())])
    return inserted


def _stored_roots(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The story root id of each stored mention ``(source, external_id)`` in ``keys`` (absent: not stored)."""
    found: dict[tuple[str, str], int] = {}
    keys_list = sorted(keys)
    for i in range(0, len(keys_list), 400):
        chunk = keys_list[i : i + 400]
        rows = session.execute(select(MentionRow.source, MentionRow.external_id, MentionRow.id, MentionRow.story_id)
                               .where(tuple_(MentionRow.source, MentionRow.external_id).in_(chunk)))
        found.update({(r.source, r.external_id): r.story_id or r.id for r in rows})
    return found


def dedup_history(session: Session, since: datetime, limit: int) -> list[tuple[str, str, str, int | None, datetime]]:
    """(source, external_id, content_hash, simhash, published_at) of the newest mentions since ``since``."""
    stmt = (
        select(MentionRow.source, MentionRow.external_id, MentionRow.content_hash, MentionRow.simhash,
               MentionRow.published_at)
        .where(MentionRow.published_at >= since)
        .order_by(MentionRow.published_at.desc(), MentionRow.id.desc())
        .limit(limit)
    )
    return [tuple(r) for r in session.execute(stmt)][::-1]


def dedup_after(session: Session, after_id: int, limit: int) -> list[tuple[int, str, str, str, int | None, datetime]]:
    """(id, source, external_id, content_hash, simhash, published_at) of mentions stored after ``after_id``,
    in id order (what other daemons of a cluster stored since)."""
    stmt = (select(MentionRow.id, MentionRow.source, MentionRow.external_id, MentionRow.content_hash,
                   MentionRow.simhash, MentionRow.published_at)
            .where(MentionRow.id > after_id).order_by(MentionRow.id).limit(limit))
    return [tuple(r) for r in session.execute(stmt)]


# -- Mention <-> mentions row, derived once ----------------------------------------------------
# Every Mention field is stored in the column of its name, except these renamed ones; a field without
# a column (``duplicate_of``: dedup's link to a story root, resolved to ``story_id`` on insert) is not stored.
# So a new mention column touches the migration, the model and the domain type only.
RENAMED = {"score": "sentiment_score", "label": "sentiment_label"}
_TABLE = MentionRow.__table__
MENTION_COLUMNS: dict[str, str] = {
    f.name: RENAMED.get(f.name, f.name) for f in fields(Mention) if RENAMED.get(f.name, f.name) in _TABLE.c}
# A NULL reads back as the field's default when that is not None (0, ()); tuple fields are stored as JSON lists.
_DEFAULTS = {f.name: f.default for f in fields(Mention) if f.default is not MISSING and f.default is not None}


def mention_columns(*names: str) -> list[Any]:
    """The columns of Mention fields ``names`` (every stored field when none is given), labelled with the
    field names — select them and read each row with :func:`mention_fields`."""
    return [_TABLE.c[MENTION_COLUMNS[n]].label(n) for n in names or MENTION_COLUMNS]


def mention_fields(row: Row) -> dict[str, Any]:
    """The Mention field values of a row selected with :func:`mention_columns`."""
    values = {}
    for name, value in row._mapping.items():
        default = _DEFAULTS.get(name)
        values[name] = default if value is None else tuple(value) if isinstance(default, tuple) else value
    return values


def to_mention(row: Row) -> Mention:
    """The Mention of a row selected with ``mention_columns()`` (all of them)."""
    return Mention(**mention_fields(row))


def _row_values(m: Mention) -> dict[str, Any]:
    """The columns to insert for ``m`` (the database assigns ``id``)."""
    return {col: list(v) if isinstance(v := getattr(m, name), tuple) else v
            for name, col in MENTION_COLUMNS.items() if name != "id"}


def mentions_since(session: Session, since: datetime, until: datetime | None = None) -> list[Mention]:
    """Stored mentions published in [since, until), oldest first (to warm rules up after a restart)."""
    stmt = select(*mention_columns()).where(MentionRow.published_at >= since)
    if until is not None:
        stmt = stmt.where(MentionRow.published_at < until)
    return [to_mention(r) for r in session.execute(stmt.order_by(MentionRow.published_at, MentionRow.id))]


def iter_mentions_since(session: Session, since: datetime) -> Iterator[Mention]:
    """Stored mentions published since ``since``, oldest first, streamed (the rules' warm-up)."""
    stmt = (select(*mention_columns()).where(MentionRow.published_at >= since)
            .order_by(MentionRow.published_at, MentionRow.id).execution_options(yield_per=2000))
    for row in session.execute(stmt):
        yield to_mention(row)


def mentions_after(session: Session, after_id: int, limit: int) -> list[Mention]:
    """Stored mentions with an id above ``after_id``, in id order (what other nodes stored since)."""
    stmt = select(*mention_columns()).where(MentionRow.id > after_id).order_by(MentionRow.id).limit(limit)
    return [to_mention(row) for row in session.execute(stmt)]


def last_mention_id(session: Session) -> int:
    return session.scalar(select(func.max(MentionRow.id))) or 0


def mention_ids_between(session: Session, low: int, high: int) -> set[int]:
    """The ids of stored mentions in ``(low, high]``."""
    return set(session.scalars(select(MentionRow.id).where(MentionRow.id > low, MentionRow.id <= high)))


def mentions_by_ids(session: Session, ids: Sequence[int]) -> list[Mention]:
    if not ids:
        return []
    rows = session.execute(select(*mention_columns()).where(MentionRow.id.in_(list(ids))))
    by_id = {m.id: m for m in map(to_mention, rows)}
    return [by_id[i] for i in ids if i in by_id]


def load_source_state(session: Session, name: str) -> SourceState:
    row = session.get(SourceStateRow, name)
    if row is None:
        return SourceState()
    return SourceState(cursor=row.cursor, etag=row.etag, last_modified=row.last_modified)


def _state_row(session: Session, name: str, type_: str) -> SourceStateRow:
    row = session.get(SourceStateRow, name)
    if row is None:
        row = SourceStateRow(name=name, type=type_, consecutive_failures=0, items_stored=0)
        session.add(row)
    row.type = type_
    return row


def record_poll_success(
    session: Session, name: str, type_: str, state: SourceState, now: datetime, stored: int
) -> None:
    """Advance the cursor — call in the same transaction that stored the items, or after it."""
    row = _state_row(session, name, type_)
    row.cursor, row.etag, row.last_modified = state.cursor, state.etag, state.last_modified
    row.last_poll_at = row.last_success_at = now
    row.first_poll_at = row.first_poll_at or now
    row.consecutive_failures = 0
    row.last_error = None
    if stored:
        row.last_item_at = now
        row.items_stored = (row.items_stored or 0) + stored


def record_snapshot(session: Session, name: str, entries: list[dict[str, Any]], at: datetime) -> None:
    """A hot list's whole poll (its entries as JSON, in list order), replacing the previous one."""
    session.execute(update(SourceStateRow).where(SourceStateRow.name == name)
                    .values(snapshot=entries, snapshot_at=at))


def latest_snapshot(session: Session, name: str) -> tuple[datetime, list[dict[str, Any]]] | None:
    row = session.execute(select(SourceStateRow.snapshot_at, SourceStateRow.snapshot)
                          .where(SourceStateRow.name == name)).one_or_none()
    return None if row is None or row.snapshot_at is None else (row.snapshot_at, list(row.snapshot or []))


def record_poll_failure(session: Session, name: str, type_: str, error: str, now: datetime) -> int:
    """Record a failed poll (cursor untouched); return the consecutive failure count."""
    row = _state_row(session, name, type_)
    row.last_poll_at = row.last_error_at = now
    row.first_poll_at = row.first_poll_at or now
    row.last_error = error[:_ERROR_MAX]
    row.consecutive_failures = (row.consecutive_failures or 0) + 1
    return row.consecutive_failures


@dataclass(frozen=True)
class SourceStatus:
    """A source's stored state and poll history, as ``monitor sources`` and the health rules read it."""

    name: str
    type: str
    cursor: str | None
    etag: str | None
    last_modified: str | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    last_item_at: datetime | None
    items_stored: int
    first_poll_at: datetime | None


def source_states(session: Session) -> list[SourceStatus]:
    """Every polled source, by name."""
    names = [f.name for f in fields(SourceStatus)]
    stmt = select(*(SourceStateRow.__table__.c[n] for n in names)).order_by(SourceStateRow.name)
    return [SourceStatus(*row) for row in session.execute(stmt)]


# -- mention search and stories (the console's 提及 screen) ----------------------------------------
@dataclass(frozen=True)
class MentionQuery:
    """Filters of a mention search; each None matches everything. ``text``: the cleaned text contains it
    (case-insensitive, ``%`` and ``_`` literal); ``label``: the label the model gave."""

    topic: str | None = None
    source: str | None = None
    label: str | None = None
    since: datetime | None = None  # published at or after
    until: datetime | None = None  # published before
    text: str | None = None


def _has_topic(session: Session, topic: str) -> Any:
    """``mentions.topics`` (a JSON list) holds ``topic``: a GIN-indexed containment on PostgreSQL
    (migration 0008), ``json_each`` on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(MentionRow.topics, postgresql.JSONB).contains([topic])
    each = func.json_each(MentionRow.topics).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == topic))


def topic_mentions(session: Session, topic: str, since: datetime, until: datetime, *, negative: bool | None = None,
                   limit: int = 5000) -> list[Mention]:
    """Mentions of ``topic`` published in ``[since, until]`` (only negatives, or only the others, when
    ``negative`` says so), newest first, at most ``limit`` — what an incident's page summarises."""
    stmt = (select(*mention_columns())
            .where(MentionRow.published_at >= since, MentionRow.published_at <= until, _has_topic(session, topic)))
    if negative is not None:
        label = MentionRow.sentiment_label
        stmt = stmt.where(label == "negative" if negative else or_(label.is_(None), label != "negative"))
    stmt = stmt.order_by(MentionRow.published_at.desc(), MentionRow.id.desc()).limit(limit)
    return [to_mention(r) for r in session.execute(stmt)]


def topic_texts(session: Session, topic: str, since: datetime, until: datetime, *, limit: int = 5000) -> list[str]:
    """The texts alone of :func:`topic_mentions` (a baseline to compare an incident with: one column,
    no Mention built per row)."""
    stmt = (select(MentionRow.text)
            .where(MentionRow.published_at >= since, MentionRow.published_at < until, _has_topic(session, topic))
            .order_by(MentionRow.published_at.desc(), MentionRow.id.desc()).limit(limit))
    return list(session.scalars(stmt))


def search_mentions(session: Session, query: MentionQuery, *, before_id: int | None = None,
                    limit: int = 50) -> list[Mention]:
    """Mentions matching every filter of ``query``, newest first (by published time, then id), at most
    ``limit``; with ``before_id`` those that come after that mention in this order (keyset paging: the
    next page starts where the last one ended, however many rows lie before it)."""
    stmt = select(*mention_columns())
    if query.topic:
        stmt = stmt.where(_has_topic(session, query.topic))
    if query.source:
        stmt = stmt.where(MentionRow.source == query.source)
    if query.label:
        stmt = stmt.where(MentionRow.sentiment_label == query.label)
    if query.since is not None:
        stmt = stmt.where(MentionRow.published_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(MentionRow.published_at < query.until)
    if query.text:
        # ILIKE costs PostgreSQL several times what LIKE does on a full scan; a text without cased
        # letters (Chinese, digits) matches the same rows either way, so only cased ones pay for it.
        cased = query.text.lower() != query.text.upper()
        match = MentionRow.text.icontains if cased else MentionRow.text.contains
        stmt = stmt.where(match(query.text, autoescape=True))
    if before_id is not None:
        after = session.execute(select(MentionRow.published_at).where(MentionRow.id == before_id)).scalar()
        if after is None:
            return []
        stmt = stmt.where(or_(MentionRow.published_at < after,
                              and_(MentionRow.published_at == after, MentionRow.id < before_id)))
    stmt = stmt.order_by(MentionRow.published_at.desc(), MentionRow.id.desc()).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # The best plan depends on the values: a rare text or topic is read from its GIN index, a common
        # one by walking the newest-first index until the page is full. psycopg prepares a statement run
        # five times, and PostgreSQL may then plan it once for any values (a generic plan): seen to scan
        # all mentions for a text found nowhere (0.4 s at a million) that its index answers in 1 ms.
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return [to_mention(r) for r in session.execute(stmt)]


def story(session: Session, mention_id: int, *, limit: int = 100) -> tuple[Mention, list[Mention]] | None:
    """The root mention of ``mention_id``'s story and its reposts, newest first (at most ``limit``;
    the root's ``repost_count`` says how many there are); None when there is no such mention."""
    found = mentions_by_ids(session, [mention_id])
    if not found:
        return None
    root = found[0]
    if root.story_id is not None:
        root = next(iter(mentions_by_ids(session, [root.story_id])), root)
    stmt = (select(*mention_columns()).where(MentionRow.story_id == root.id)
            .order_by(MentionRow.published_at.desc(), MentionRow.id.desc()).limit(limit))
    return root, [to_mention(r) for r in session.execute(stmt)]
