"""incident response plans, escalation, reopen and quiet hours

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('assignee', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('last_signal_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('reopened_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('escalation_step', sa.Integer(), server_default='-1', nullable=False))
        batch_op.add_column(sa.Column('escalation_round', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_escalation_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_incidents_next_escalation_at', ['next_escalation_at'], unique=False)

    op.create_table(
        'incident_steps',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('plan', sa.String(length=100), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=True),
        sa.Column('reply', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('done_at', sa.DateTime(), nullable=True),
        sa.Column('done_by', sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'position', name='uq_incident_steps_position'),
    )
    with op.batch_alter_table('incident_steps', schema=None) as batch_op:
        batch_op.create_index('ix_incident_steps_incident_id', ['incident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incident_steps', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_steps_incident_id')
    op.drop_table('incident_steps')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_next_escalation_at')
        for col in ('next_escalation_at', 'escalation_round', 'escalation_step', 'reopened_count',
                    'last_signal_at', 'assignee', 'plan'):
            batch_op.drop_column(col)
