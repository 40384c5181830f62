"""crew links: a crew key belongs to one plan (every version of it) and expires with its day

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.store import UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Crew keys made before this revision have no plan: they are bound to the first plan they
    # open (service.auth.Keys.bind_plan), so none keeps reaching every day's route of its vehicle.
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("plan_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
    op.create_index("ix_api_keys_plan_id", "api_keys", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_plan_id", table_name="api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("plan_id")
