"""field operations: plan versions and organisations, the field ledger, API keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from service.store import UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("organisation", sa.String(100), nullable=False, server_default="default"))
        batch.add_column(sa.Column("root_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("parent_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("purged_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE plans SET root_id = id WHERE root_id IS NULL")
    op.create_index("ix_plans_root_id", "plans", ["root_id"])
    op.create_index("ix_plans_organisation_created", "plans", ["organisation", "created_at"])
    op.create_table(
        "plan_events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("plan_id", sa.String(32), sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("vehicle_id", sa.String(128), nullable=True),
        sa.Column("step_id", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.UniqueConstraint("plan_id", "idempotency_key", name="uq_plan_events_idempotency"),
    )
    op.create_index("ix_plan_events_plan_seq", "plan_events", ["plan_id", "seq"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("organisation", sa.String(100), nullable=False),
        sa.Column("vehicle_id", sa.String(128), nullable=True),
        sa.Column("can_read_personal", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_plan_events_plan_seq", table_name="plan_events")
    op.drop_table("plan_events")
    op.drop_index("ix_plans_organisation_created", table_name="plans")
    op.drop_index("ix_plans_root_id", table_name="plans")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("purged_at")
        batch.drop_column("version")
        batch.drop_column("parent_id")
        batch.drop_column("root_id")
        batch.drop_column("organisation")
