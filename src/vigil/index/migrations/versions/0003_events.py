"""Events: object events, their zones, per-second motion activity, webhook dead letters.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("camera_id", sa.Integer, sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("track_id", sa.BigInteger, nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=True),
        sa.Column("max_score", sa.Float, nullable=False),
        sa.Column("zones", sa.JSON, nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("snapshot", sa.String(512), nullable=True),
        sa.Column("snapshot_us", sa.BigInteger, nullable=True),
        sa.Column("snapshot_box", sa.JSON, nullable=True),
        sa.Column("stationary", sa.Boolean, nullable=False),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.Column("hold_id", sa.Integer, nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_events_start_id", "events", ["start_us", "id"])
    op.create_index("ix_events_camera_start", "events", ["camera_id", "start_us"])
    op.create_index("ix_events_label_start", "events", ["label", "start_us"])
    op.create_index("ix_events_end", "events", ["end_us"])
    op.create_table(
        "event_zones",
        sa.Column("event_id", sa.String(128), sa.ForeignKey("events.id"), primary_key=True),
        sa.Column("zone", sa.String(64), primary_key=True),
    )
    op.create_index("ix_event_zones_zone", "event_zones", ["zone", "event_id"])
    op.create_table(
        "motion_activity",
        sa.Column("camera_id", sa.Integer, sa.ForeignKey("cameras.id"), primary_key=True),
        sa.Column("second", sa.BigInteger, primary_key=True),
        sa.Column("peak", sa.Float, nullable=False),
        sa.Column("mean", sa.Float, nullable=False),
    )
    op.create_table(
        "webhook_dead_letters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("webhook", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("replayed_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_webhook_dead_letters_created", "webhook_dead_letters", ["created_us"])


def downgrade() -> None:
    op.drop_index("ix_webhook_dead_letters_created", table_name="webhook_dead_letters")
    op.drop_table("webhook_dead_letters")
    op.drop_table("motion_activity")
    op.drop_index("ix_event_zones_zone", table_name="event_zones")
    op.drop_table("event_zones")
    op.drop_index("ix_events_end", table_name="events")
    op.drop_index("ix_events_label_start", table_name="events")
    op.drop_index("ix_events_camera_start", table_name="events")
    op.drop_index("ix_events_start_id", table_name="events")
    op.drop_table("events")
