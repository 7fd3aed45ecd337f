"""The archive's first schema: messages, daily facts, metadata.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("prefix", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lane", sa.String(8)),
        sa.Column("batch_id", sa.String(200)),
        sa.Column("to", sa.String(40)),
        sa.Column("sender", sa.String(64)),
        sa.Column("text", sa.Text),
        sa.Column("callback", sa.Text),
        sa.Column("idempotency_key", sa.String(300)),
        sa.Column("message_id", sa.String(200)),
        sa.Column("price", sa.Double),
        sa.Column("last_error", sa.Text),
        sa.Column("dead_reason", sa.String(64)),
        sa.Column("delivery_status", sa.String(32)),
        sa.Column("receipt_timestamp", sa.String(40)),
        sa.Column("history", sa.Text),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("ambiguous_resends", sa.Integer, nullable=False),
        sa.Column("extra_sends", sa.Integer, nullable=False),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.Column("updated_ts", sa.Double),
        sa.Column("expires_ts", sa.Double),
        sa.Column("sent_ts", sa.Double),
        sa.Column("delivered_ts", sa.Double),
        sa.Column("next_attempt_ts", sa.Double),
        sa.Column("send_at", sa.Double),
        sa.Column("route", sa.String(64)),
        sa.Column("redacted", sa.Boolean, nullable=False),
        sa.Column("archived_ts", sa.Double, nullable=False),
    )
    op.create_index("ix_messages_to_created", "messages", ["prefix", "to", "created_ts"])
    op.create_index("ix_messages_message_id", "messages", ["prefix", "message_id"])
    op.create_index("ix_messages_batch_created", "messages", ["prefix", "batch_id", "created_ts"])
    op.create_index("ix_messages_created", "messages", ["prefix", "created_ts", "job_id"])
    op.create_index("ix_messages_state_created", "messages", ["prefix", "state", "created_ts"])
    op.create_table(
        "daily_facts",
        sa.Column("prefix", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("state", sa.String(16), primary_key=True),
        sa.Column("dead_reason", sa.String(64), primary_key=True),
        sa.Column("sender", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(200), primary_key=True),
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Column("price", sa.Double, nullable=False),
    )
    op.create_index("ix_daily_facts_batch", "daily_facts", ["prefix", "batch_id"])
    op.create_table(
        "archive_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_meta")
    op.drop_table("daily_facts")
    op.drop_table("messages")
