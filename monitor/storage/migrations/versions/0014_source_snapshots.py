"""source snapshots: a hot list's latest whole poll, for a cluster's rules leader and for restarts

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('source_state') as batch:
        batch.add_column(sa.Column('snapshot', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('snapshot_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('source_state') as batch:
        batch.drop_column('snapshot_at')
        batch.drop_column('snapshot')
