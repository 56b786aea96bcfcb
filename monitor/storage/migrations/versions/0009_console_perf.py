"""console performance: a trigram index for the mention search's text filter (PostgreSQL)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
import logging

from alembic import op
from sqlalchemy import text

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite has no index for LIKE '%…%': its search keeps scanning (fine at its sizes)
    schema = _trgm_schema()
    if schema is None:
        log.warning('cannot use pg_trgm (not installed, or no right to create it): the mention search by text '
                    'scans the mentions. The database owner may run CREATE EXTENSION pg_trgm, then CREATE INDEX '
                    'ix_mentions_text_trgm ON mentions USING gin (text gin_trgm_ops)')
        return
    # A search for text of three or more characters (Chinese included: pg_trgm hashes multibyte
    # trigrams) reads the matching rows from this index instead of scanning every mention; the
    # planner still prefers the newest-first scan when the text is common (LIKE's estimate).
    op.execute(f'CREATE INDEX ix_mentions_text_trgm ON mentions USING gin (text {schema}.gin_trgm_ops)')


def _trgm_schema() -> str | None:
    """The (quoted) schema of the pg_trgm extension, created in ``public`` if missing; None when it cannot be.

    Not in the current schema: a database whose schemas come and go (one per test run) would drop it
    with the schema, and an extension exists once per database whichever schema asks."""
    bind = op.get_bind()
    find = text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")
    schema = bind.execute(find).scalar()
    if schema is not None:
        return schema
    if bind.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar() is None:
        return None
    try:
        with bind.begin_nested():  # a savepoint: lacking the privilege must not abort the migration
            bind.execute(text('CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public'))
    except Exception as exc:  # noqa: BLE001 - no privilege, or another process created it just now
        log.info('CREATE EXTENSION pg_trgm: %s', exc)
    return bind.execute(find).scalar()


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_mentions_text_trgm')  # the extension stays: others may use it
