"""warning engine: forecast time, muting, acknowledgement on alerts; silences

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import store.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(sa.Column("predicted_at", store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("muted", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("acknowledged_at", store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("indicator_key", sa.String(length=64), nullable=True),
        sa.Column("rule_type", sa.String(length=16), nullable=True),
        sa.Column("entity", sa.String(length=32), nullable=True),
        sa.Column("starts_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("silences")
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("acknowledged_by")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("muted")
        batch_op.drop_column("predicted_at")
