"""console indexes: the mentions search (by source, by label, by topic), newest first

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A filter plus "newest first" reads one index range backwards and stops at the page's LIMIT.
    op.create_index('ix_mentions_source_published_at', 'mentions', ['source', 'published_at'])
    op.create_index('ix_mentions_label_published_at', 'mentions', ['sentiment_label', 'published_at'])
    if op.get_bind().dialect.name == 'postgresql':
        # topics is a JSON list: "has this topic" is jsonb containment, which a GIN index answers
        # (SQLite has no such index; json_each scans the rows the other filters leave).
        op.execute('CREATE INDEX ix_mentions_topics_gin ON mentions USING gin ((topics::jsonb) jsonb_path_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_mentions_topics_gin', table_name='mentions')
    op.drop_index('ix_mentions_label_published_at', table_name='mentions')
    op.drop_index('ix_mentions_source_published_at', table_name='mentions')
