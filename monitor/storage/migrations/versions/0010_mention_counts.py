"""mention counts: mentions and negatives per topic, platform and minute (the rules' warm-up)

Existing mentions of the last 30 days are counted once here, so a daemon upgraded with days of
history keeps its negative_spike baselines.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'mention_counts',
        sa.Column('topic', sa.String(length=100), nullable=False),
        sa.Column('platform', sa.String(length=40), nullable=False),
        sa.Column('minute', sa.DateTime(), nullable=False),
        sa.Column('negative', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('negative_heat', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('topic', 'platform', 'minute'),
    )
    op.create_index('ix_mention_counts_minute', 'mention_counts', ['minute'])
    negative = "SUM(CASE WHEN m.sentiment_label = 'negative' THEN 1 ELSE 0 END)"
    # monitor.core.heat in SQL: (1 + log10(1 + followers) / 2) * (1 + log10(1 + reposts + comments + likes / 10)), capped
    reach = "(1 + LOG10(1 + COALESCE(m.author_followers, 0)) / 2.0)"
    engagement = ("(1 + LOG10(1 + COALESCE(m.reposts, 0) + COALESCE(m.comments, 0) + COALESCE(m.likes, 0) / 10.0))")
    heat = (f"SUM(CASE WHEN m.sentiment_label = 'negative' THEN "
            f"(CASE WHEN {reach} * {engagement} > 100 THEN 100 ELSE {reach} * {engagement} END) ELSE 0 END)")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"""
            INSERT INTO mention_counts (topic, platform, minute, negative, total, negative_heat)
            SELECT t.topic, COALESCE(m.platform, ''), date_trunc('minute', m.published_at), {negative}, COUNT(*),
                   {heat}
            FROM mentions m CROSS JOIN LATERAL jsonb_array_elements_text(m.topics::jsonb) AS t(topic)
            WHERE m.published_at >= now() AT TIME ZONE 'UTC' - interval '30 days'
            GROUP BY 1, 2, 3""")
    else:
        # not every SQLite is built with its math functions; this one is the same everywhere
        import math

        op.get_bind().connection.driver_connection.create_function("LOG10", 1, math.log10, deterministic=True)
        # the format SQLAlchemy writes naive datetimes in on SQLite, so stored minutes compare and match
        op.execute(f"""
            INSERT INTO mention_counts (topic, platform, minute, negative, total, negative_heat)
            SELECT t.value, COALESCE(m.platform, ''), strftime('%Y-%m-%d %H:%M:00.000000', m.published_at),
                   {negative}, COUNT(*), {heat}
            FROM mentions m, json_each(m.topics) AS t
            WHERE m.published_at >= strftime('%Y-%m-%d %H:%M:%S', 'now', '-30 days')
            GROUP BY 1, 2, 3""")


def downgrade() -> None:
    op.drop_index('ix_mention_counts_minute', table_name='mention_counts')
    op.drop_table('mention_counts')
