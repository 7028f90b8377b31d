"""core tables: sources and items

Revision ID: 0001
Revises:
Create Date: 2026-11-27 23:34:43.208131
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indexer_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "rss",
                "page",
                "folder",
                "jsonl",
                name="sourcekind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("every_s", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("http_etag", sa.String(length=512), nullable=True),
        sa.Column("http_last_modified", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexer_source")),
        sa.UniqueConstraint("name", name=op.f("uq_indexer_source_name")),
    )
    with op.batch_alter_table("indexer_source", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_indexer_source_next_due_at"), ["next_due_at"], unique=False
        )

    op.create_table(
        "indexer_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=1024), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True),
        sa.Column("url_sha256", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("text_sha256", sa.String(length=64), nullable=True),
        sa.Column("author", sa.String(length=512), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("image_bytes", sa.Integer(), nullable=True),
        sa.Column("image_width", sa.Integer(), nullable=True),
        sa.Column("image_height", sa.Integer(), nullable=True),
        sa.Column("image_phash", sa.String(length=32), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("crawled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "indexed",
                "failed",
                name="itemstatus",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["indexer_source.id"],
            name=op.f("fk_indexer_item_source_id_indexer_source"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexer_item")),
        sa.UniqueConstraint("url_sha256", name=op.f("uq_indexer_item_url_sha256")),
    )
    with op.batch_alter_table("indexer_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_indexer_item_crawled_at"), ["crawled_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_indexer_item_image_phash"), ["image_phash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_indexer_item_image_sha256"), ["image_sha256"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_indexer_item_published_at"), ["published_at"], unique=False
        )
        batch_op.create_index(
            "ix_indexer_item_source_published", ["source_id", "published_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_indexer_item_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_indexer_item_text_sha256"), ["text_sha256"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("indexer_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_indexer_item_text_sha256"))
        batch_op.drop_index(batch_op.f("ix_indexer_item_status"))
        batch_op.drop_index("ix_indexer_item_source_published")
        batch_op.drop_index(batch_op.f("ix_indexer_item_published_at"))
        batch_op.drop_index(batch_op.f("ix_indexer_item_image_sha256"))
        batch_op.drop_index(batch_op.f("ix_indexer_item_image_phash"))
        batch_op.drop_index(batch_op.f("ix_indexer_item_crawled_at"))

    op.drop_table("indexer_item")
    with op.batch_alter_table("indexer_source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_indexer_source_next_due_at"))

    op.drop_table("indexer_source")
