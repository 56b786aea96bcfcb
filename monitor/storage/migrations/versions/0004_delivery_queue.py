"""delivery queue: retries, rate limits, fallback

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21

``pages`` is the outbox (one serialised alert to deliver), ``deliveries`` one
page through one channel (retried with backoff until sent or out of attempts),
and every attempt stays a row in ``notifications``, now linked to its delivery.
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pages',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=True),
        sa.Column('alert_kind', sa.String(length=20), nullable=False),
        sa.Column('dedup_key', sa.String(length=200), nullable=False),
        sa.Column('alert', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('settled_at', sa.DateTime(), nullable=True),
        sa.Column('alarm_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.create_index('ix_pages_incident_id', ['incident_id'], unique=False)

    op.create_table(
        'deliveries',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('page_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('fallback_for', sa.String(length=100), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['page_id'], ['pages.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('page_id', 'channel', name='uq_deliveries_page_channel'),
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_page_id', ['page_id'], unique=False)
        batch_op.create_index('ix_deliveries_due', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_notifications_delivery_id', 'deliveries', ['delivery_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index('ix_notifications_delivery_id', ['delivery_id'], unique=False)
        batch_op.create_index('ix_notifications_channel_at', ['channel', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_channel_at')
        batch_op.drop_index('ix_notifications_delivery_id')
        batch_op.drop_constraint('fk_notifications_delivery_id', type_='foreignkey')
        batch_op.drop_column('delivery_id')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_due')
        batch_op.drop_index('ix_deliveries_page_id')
    op.drop_table('deliveries')
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_index('ix_pages_incident_id')
    op.drop_table('pages')
