"""Storage on SQLite always and PostgreSQL when configured: migrations, UTC times, idempotent inserts,
cursor moved only with stored items."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, inspect, select

from monitor.core.domain import Mention
from monitor.core.errors import StorageError
from monitor.storage import Database, repo
from monitor.storage.models import MentionRow, SourceStateRow
from sources.base import SourceState
from tests.factories import T0, make_mention

HEAD = "0014"  # newest migration revision


def test_migration_creates_every_table_and_is_idempotent(db):
    tables = set(inspect(db.engine).get_table_names())
    assert {"source_state", "mentions", "incidents", "incident_events", "notifications", "silences",
            "alembic_version"} <= tables
    assert db.schema_revision() == HEAD
    db.migrate()  # a second start never needs a hand-dropped table
    assert db.schema_revision() == HEAD


def test_sqlite_uses_wal(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'sub' / 'monitor.db'}")
    database.migrate()
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    database.dispose()


def test_insert_is_idempotent_and_times_come_back_as_aware_utc(db):
    shanghai_time = T0.astimezone(ZoneInfo("Asia/Shanghai"))
    first = make_mention(external_id="m1", published_at=shanghai_time, topics=("品牌A", "品牌B"))
    with db.session() as s:
        [stored] = repo.insert_mentions(s, [first])
        assert stored.id is not None
    with db.session() as s:  # the same item again (e.g. re-fetched after a crash) is skipped
        assert repo.insert_mentions(s, [first, make_mention(external_id="m2")]) != []
        assert [m.external_id for m in repo.insert_mentions(s, [first])] == []
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(MentionRow)) == 2
        [back] = repo.mentions_by_ids(s, [stored.id])
        assert back.published_at == T0 and back.published_at.tzinfo == timezone.utc
        assert back.topics == ("品牌A", "品牌B") and back.score == first.score and back.label == "negative"
        assert repo.known_external_ids(s, "weibo", ["m1", "m2", "m3"]) == {"m1", "m2"}
        assert [m.external_id for m in repo.mentions_since(s, T0 - timedelta(minutes=1))] == ["m1", "m2"]


def test_mention_mapping_is_derived_from_the_fields_and_round_trips(db):
    """Mention <-> row is derived from the dataclass fields and the columns (+ ``repo.RENAMED``): every
    column is a field, every field but dedup's in-batch link is stored, and a mention comes back equal."""
    assert set(repo.MENTION_COLUMNS.values()) == {c.name for c in MentionRow.__table__.columns}
    assert {f.name for f in fields(Mention)} - set(repo.MENTION_COLUMNS) == {"duplicate_of", "rank"}
    full = make_mention(external_id="full", title="标题", parent_id="p1", crisis_words=("维权", "315"),
                        platform="weibo", author_followers=12000, likes=3, reposts=4, comments=5,
                        simhash=-(2**63) + 7, story_id=99, dup_kind="near", repost_count=2)
    bare = Mention(source="rss", external_id="bare", text="t", raw_text="t", published_at=T0, fetched_at=T0,
                   content_hash="h")
    with db.session() as s:
        stored = repo.insert_mentions(s, [full, bare])
    assert stored == [replace(full, id=stored[0].id), replace(bare, id=stored[1].id)]
    with db.session() as s:
        assert repo.mentions_by_ids(s, [m.id for m in stored]) == stored
        assert repo.mentions_since(s, T0) == stored
        row = s.get(MentionRow, stored[0].id)
        assert (row.sentiment_label, row.sentiment_score, row.crisis_words) == ("negative", 0.1, ["维权", "315"])


def test_naive_datetime_is_refused(db):
    with pytest.raises(StorageError):
        with db.session() as s:
            repo.insert_mentions(s, [replace(make_mention(), published_at=T0.replace(tzinfo=None))])


def test_cursor_moves_only_with_the_transaction_that_stores_items(db):
    with db.session() as s:
        repo.record_poll_success(s, "weibo", "rss", SourceState(cursor="10", etag='"v1"'), T0, 1)
    with pytest.raises(RuntimeError):
        with db.session() as s:  # a crash between store and commit
            repo.insert_mentions(s, [make_mention(external_id="lost")])
            repo.record_poll_success(s, "weibo", "rss", SourceState(cursor="20"), T0, 1)
            raise RuntimeError("killed")
    with db.session() as s:
        assert repo.load_source_state(s, "weibo") == SourceState(cursor="10", etag='"v1"')
        assert repo.known_external_ids(s, "weibo", ["lost"]) == set()
        failures = [repo.record_poll_failure(s, "weibo", "rss", "HTTP 503", T0) for _ in range(2)]
        assert failures == [1, 2]
    with db.session() as s:
        row = s.get(SourceStateRow, "weibo")
        assert (row.cursor, row.consecutive_failures, row.last_error, row.items_stored) == ("10", 2, "HTTP 503", 1)


def test_bad_url_is_a_storage_error():
    with pytest.raises(StorageError, match="invalid database URL"):
        Database("not a url")
    with pytest.raises(StorageError, match="cannot migrate"):
        Database("postgresql+psycopg://nobody@127.0.0.1:1/none").migrate()


def test_models_and_migrations_agree(db):
    """Every model change comes with a migration: autogenerate finds nothing left to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from monitor.storage.models import Base

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = [d for d in compare_metadata(ctx, Base.metadata)
                if not (isinstance(d, tuple) and d[0] in {"remove_table"} and d[1].name == "alembic_version")]
    assert diff == []
