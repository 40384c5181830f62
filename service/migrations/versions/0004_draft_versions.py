"""draft versions: a re-plan or a hand edit can wait for the dispatcher to publish it

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every version made before drafts existed was live at once: published.
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("publication", sa.String(16), nullable=False, server_default="published"))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("publication")
