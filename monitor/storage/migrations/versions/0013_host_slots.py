"""host slots: a host's concurrency limit shared by every daemon of a cluster

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'host_slots',
        sa.Column('host', sa.String(length=300), primary_key=True),
        sa.Column('slot', sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column('holder', sa.String(length=250), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('host_slots')
