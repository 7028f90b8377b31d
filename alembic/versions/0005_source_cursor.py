"""read cursor per source: big dumps and folders arrive over several crawls

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 07:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("indexer_source", schema=None) as batch_op:
        batch_op.add_column(sa.Column("read_cursor", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("read_remaining", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("indexer_source", schema=None) as batch_op:
        batch_op.drop_column("read_remaining")
        batch_op.drop_column("read_cursor")
