"""Ticker scorer: the company table's version on every score row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 08:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows scored before have no version: `simmim monitor rescore` re-tags them with the
    # company universe.
    with op.batch_alter_table("monitor_score") as batch:
        batch.add_column(
            sa.Column("ticker_scorer", sa.String(length=80), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("monitor_score") as batch:
        batch.drop_column("ticker_scorer")
