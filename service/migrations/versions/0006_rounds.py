"""city rounds: a round's districts and its joined plan

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from service.store import UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rounds",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("organisation", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("request", JSON, nullable=False),
        sa.Column("districts", JSON, nullable=False),
        sa.Column("document", JSON, nullable=True),
    )
    op.create_index("ix_rounds_created_at", "rounds", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_rounds_created_at", "rounds")
    op.drop_table("rounds")
