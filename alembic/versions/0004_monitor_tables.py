"""monitor tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 01:47:20.734289
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitor_job_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_job_run")),
    )
    with op.batch_alter_table("monitor_job_run", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_job_run_job_started", ["job", "started_at"], unique=False)

    op.create_table(
        "monitor_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "volume_spike",
                "negative_share",
                "sentiment_drop",
                "source_silent",
                name="rulekind",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "series_kind",
            sa.Enum(
                "all",
                "source",
                "topic",
                "ticker",
                "query",
                name="serieskind",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.Column("series_key", sa.String(length=200), nullable=True),
        sa.Column("bucket_hours", sa.Integer(), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("min_history", sa.Integer(), nullable=False),
        sa.Column("min_volume", sa.Integer(), nullable=False),
        sa.Column("z", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("confirm", sa.Integer(), nullable=False),
        sa.Column("cooldown_s", sa.Integer(), nullable=False),
        sa.Column("repeat_s", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_rule")),
        sa.UniqueConstraint("name", name=op.f("uq_monitor_rule_name")),
    )
    op.create_table(
        "monitor_saved_query",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("space", sa.String(length=8), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_saved_query")),
        sa.UniqueConstraint("name", name=op.f("uq_monitor_saved_query_name")),
    )
    op.create_table(
        "monitor_series_hour",
        sa.Column(
            "kind",
            sa.Enum(
                "all",
                "source",
                "topic",
                "ticker",
                "query",
                name="serieskind",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("sentiment_sum", sa.Float(), nullable=False),
        sa.Column("sentiment_sq", sa.Float(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", "hour", name=op.f("pk_monitor_series_hour")),
    )
    op.create_table(
        "monitor_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column(
            "series_kind",
            sa.Enum(
                "all",
                "source",
                "topic",
                "ticker",
                "query",
                name="serieskind",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.Column("series_key", sa.String(length=200), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "firing",
                "resolved",
                name="alertstatus",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("bucket_hours", sa.Integer(), nullable=False),
        sa.Column("first_bucket", sa.Integer(), nullable=False),
        sa.Column("last_bucket", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("z", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["monitor_rule.id"],
            name=op.f("fk_monitor_alert_rule_id_monitor_rule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alert")),
    )
    with op.batch_alter_table("monitor_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitor_alert_dedup_key"), ["dedup_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_monitor_alert_status"), ["status"], unique=False)

    op.create_table(
        "monitor_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["monitor_alert.id"],
            name=op.f("fk_monitor_notification_alert_id_monitor_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_notification")),
    )
    with op.batch_alter_table("monitor_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_notification_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_monitor_notification_sent_at"), ["sent_at"], unique=False
        )

    op.create_table(
        "monitor_score",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=8), nullable=False),
        sa.Column("sentiment", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.Column("sentiment_scorer", sa.String(length=80), nullable=False),
        sa.Column("topic_scorer", sa.String(length=80), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("tickers", sa.JSON(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["indexer_item.id"],
            name=op.f("fk_monitor_score_item_id_indexer_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_monitor_score")),
    )
    with op.batch_alter_table("monitor_score", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitor_score_hour_source",
            ["hour", "source_id", "sentiment", "negative"],
            unique=False,
        )
        batch_op.create_index("ix_monitor_score_source_hour", ["source_id", "hour"], unique=False)

    op.create_table(
        "monitor_series_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("series_key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("last_bucket", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["monitor_alert.id"],
            name=op.f("fk_monitor_series_state_alert_id_monitor_alert"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["monitor_rule.id"],
            name=op.f("fk_monitor_series_state_rule_id_monitor_rule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_series_state")),
        sa.UniqueConstraint("rule_id", "series_key", name=op.f("uq_monitor_series_state_rule_id")),
    )
    op.create_table(
        "monitor_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "all",
                "source",
                "topic",
                "ticker",
                "query",
                name="serieskind",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("sentiment", sa.Float(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["indexer_item.id"],
            name=op.f("fk_monitor_tag_item_id_indexer_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_tag")),
    )
    with op.batch_alter_table("monitor_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitor_tag_item_id"), ["item_id"], unique=False)
        batch_op.create_index(
            "ix_monitor_tag_series", ["kind", "key", "hour", "sentiment", "negative"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("monitor_tag", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_tag_series")
        batch_op.drop_index(batch_op.f("ix_monitor_tag_item_id"))

    op.drop_table("monitor_tag")
    op.drop_table("monitor_series_state")
    with op.batch_alter_table("monitor_score", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_score_source_hour")
        batch_op.drop_index("ix_monitor_score_hour_source")

    op.drop_table("monitor_score")
    with op.batch_alter_table("monitor_notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_notification_sent_at"))
        batch_op.drop_index(batch_op.f("ix_monitor_notification_alert_id"))

    op.drop_table("monitor_notification")
    with op.batch_alter_table("monitor_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_alert_status"))
        batch_op.drop_index(batch_op.f("ix_monitor_alert_dedup_key"))

    op.drop_table("monitor_alert")
    op.drop_table("monitor_series_hour")
    op.drop_table("monitor_saved_query")
    op.drop_table("monitor_rule")
    with op.batch_alter_table("monitor_job_run", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_job_run_job_started")

    op.drop_table("monitor_job_run")
