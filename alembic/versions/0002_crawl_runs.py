"""crawl runs and near-duplicate image links

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 23:59:13.581139
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indexer_crawl_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("duplicate", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["indexer_source.id"],
            name=op.f("fk_indexer_crawl_run_source_id_indexer_source"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexer_crawl_run")),
    )
    with op.batch_alter_table("indexer_crawl_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_indexer_crawl_run_source_started", ["source_id", "started_at"], unique=False
        )

    with op.batch_alter_table("indexer_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image_duplicate_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_indexer_item_image_duplicate_of_indexer_item"),
            "indexer_item",
            ["image_duplicate_of"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("indexer_item", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_indexer_item_image_duplicate_of_indexer_item"), type_="foreignkey"
        )
        batch_op.drop_column("image_duplicate_of")

    with op.batch_alter_table("indexer_crawl_run", schema=None) as batch_op:
        batch_op.drop_index("ix_indexer_crawl_run_source_started")

    op.drop_table("indexer_crawl_run")
