"""hourly and daily rollups of readings

Revision ID: 0006
Revises: 0005

Schema only: the daily buckets start at the city's local midnight, which is deployment
configuration, so the tables are created empty and the composition root (app.open_store,
`citybrain db upgrade`) fills them from the readings already stored when an upgrade crosses this
revision (store.migrate.rollups_need_filling, store.rollups.rebuild_rollups).
"""

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("bucket", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"]),
        sa.PrimaryKeyConstraint("series_id", "bucket"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    _rollup_table("readings_daily")
    _rollup_table("readings_hourly")


def downgrade() -> None:
    op.drop_table("readings_hourly")
    op.drop_table("readings_daily")
