"""nlp feedback and crisis words

Mentions get the crisis-lexicon words found in them; ``sentiment_feedback``
holds people's corrections of a mention's sentiment (``monitor label``), the
training data of the next model version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mentions") as batch:
        batch.add_column(sa.Column("crisis_words", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "sentiment_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mention_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("previous_label", sa.String(length=20), nullable=True),
        sa.Column("previous_score", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["mention_id"], ["mentions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sentiment_feedback") as batch:
        batch.create_index("ix_sentiment_feedback_mention_id", ["mention_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sentiment_feedback") as batch:
        batch.drop_index("ix_sentiment_feedback_mention_id")
    op.drop_table("sentiment_feedback")
    with op.batch_alter_table("mentions") as batch:
        batch.drop_column("crisis_words")
