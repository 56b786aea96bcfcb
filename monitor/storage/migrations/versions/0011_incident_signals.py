"""incident signals and summary: the rules firing into an incident (one incident per crisis), and what
people are angry about (主要诉求, 舆情热度, 最大传播) as of its latest page

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(sa.Column('signals', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('summary', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incidents') as batch:
        batch.drop_column('summary')
        batch.drop_column('signals')
