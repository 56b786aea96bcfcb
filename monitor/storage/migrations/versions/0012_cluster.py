"""several daemons on one PostgreSQL: cluster nodes and leases, the sources' schedule and politeness in
the database, one pending page per dedup key, and an index for reading what other nodes stored

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cluster_nodes',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('host', sa.String(length=200), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('version', sa.String(length=40), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('info', sa.JSON(), nullable=False),
    )
    op.create_table(
        'cluster_leases',
        sa.Column('name', sa.String(length=100), primary_key=True),
        sa.Column('node_id', sa.String(length=40), nullable=False),
        sa.Column('node_name', sa.String(length=200), nullable=False),
        sa.Column('acquired_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table('source_state') as batch:
        batch.add_column(sa.Column('next_poll_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('polled_by', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('poll_claimed_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('politeness', sa.JSON(), nullable=True))
    op.create_index('ix_mentions_fetched_at', 'mentions', ['fetched_at'])
    with op.batch_alter_table('deliveries') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=200), nullable=True))
    # a page queued twice while pending (older databases may hold such pairs: keep the first pending)
    demoted = ("SELECT id FROM pages WHERE status = 'pending' AND id NOT IN "
               "(SELECT MIN(id) FROM pages WHERE status = 'pending' GROUP BY dedup_key)")
    op.execute(f"UPDATE deliveries SET status = 'deduplicated', next_attempt_at = NULL WHERE status = 'pending' "
               f"AND page_id IN ({demoted})")
    op.execute(f"UPDATE pages SET status = 'failed', settled_at = created_at WHERE id IN ({demoted})")
    op.create_index('uq_pages_pending_dedup_key', 'pages', ['dedup_key'], unique=True,
                    sqlite_where=sa.text("status IN ('new', 'pending')"),
                    postgresql_where=sa.text("status IN ('new', 'pending')"))


def downgrade() -> None:
    op.drop_index('uq_pages_pending_dedup_key', table_name='pages')
    op.drop_index('ix_mentions_fetched_at', table_name='mentions')
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('claimed_by')
    with op.batch_alter_table('source_state') as batch:
        batch.drop_column('poll_claimed_at')
        batch.drop_column('politeness')
        batch.drop_column('polled_by')
        batch.drop_column('next_poll_at')
    op.drop_table('cluster_leases')
    op.drop_table('cluster_nodes')
