"""workers: staged vectors, who ran each job and for which due time, and (PostgreSQL) the
task queue's own schema (Procrastinate)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 12:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from simmim.task_queue_schema import create_queue_schema, drop_queue_schema

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indexer_staged_vectors",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("indexed_spaces", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("text", sa.LargeBinary(), nullable=True),
        sa.Column("fused", sa.LargeBinary(), nullable=True),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["indexer_item.id"],
            name=op.f("fk_indexer_staged_vectors_item_id_indexer_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_indexer_staged_vectors")),
    )
    with op.batch_alter_table("monitor_job_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runner", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        create_queue_schema(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        drop_queue_schema(op.get_bind())
    with op.batch_alter_table("monitor_job_run", schema=None) as batch_op:
        batch_op.drop_column("due_at")
        batch_op.drop_column("runner")
    op.drop_table("indexer_staged_vectors")
