"""sources dedup and health

Mentions get their reach (platform, author followers, likes / reposts / comments) and
their story linkage (SimHash fingerprint, root mention id, kind of duplicate, repost
count on the root); source state gets the time of its first poll ("stale for").

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_MENTION_COLUMNS = (
    ("platform", sa.String(40)),
    ("author_followers", sa.BigInteger()),
    ("likes", sa.BigInteger()),
    ("reposts", sa.BigInteger()),
    ("comments", sa.BigInteger()),
    ("simhash", sa.BigInteger()),
    ("story_id", sa.Integer()),
    ("dup_kind", sa.String(10)),
)


def upgrade() -> None:
    with op.batch_alter_table("mentions") as batch:
        for name, type_ in _MENTION_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.add_column(sa.Column("repost_count", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_mentions_story_id", ["story_id"])
    with op.batch_alter_table("source_state") as batch:
        batch.add_column(sa.Column("first_poll_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_state") as batch:
        batch.drop_column("first_poll_at")
    with op.batch_alter_table("mentions") as batch:
        batch.drop_index("ix_mentions_story_id")
        batch.drop_column("repost_count")
        for name, _ in reversed(_MENTION_COLUMNS):
            batch.drop_column(name)
