"""readings clustered on (series_id, observed_at) on SQLite (WITHOUT ROWID)

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("readings", recreate="always", table_kwargs={"sqlite_with_rowid": False}):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("readings", recreate="always", table_kwargs={"sqlite_with_rowid": True}):
        pass
