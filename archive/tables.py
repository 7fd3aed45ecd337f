"""The archive's tables: one row per message, daily facts for reports, and the archive's own metadata.

Times are epoch seconds (double precision), as in the ledger: one comparable, indexable form on
every backend, shown as ISO 8601 by `ledger.record.iso`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("prefix", String(64), primary_key=True),
    Column("job_id", String(100), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("lane", String(8)),
    Column("batch_id", String(200)),
    Column("to", String(40)),
    Column("sender", String(64)),
    Column("text", Text),
    Column("callback", Text),
    Column("idempotency_key", String(300)),
    Column("message_id", String(200)),
    Column("price", Double),
    Column("last_error", Text),
    Column("dead_reason", String(64)),
    Column("delivery_status", String(32)),
    Column("receipt_timestamp", String(40)),
    Column("history", Text),
    Column("late", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("ambiguous_resends", Integer, nullable=False, default=0),
    Column("extra_sends", Integer, nullable=False, default=0),
    Column("created_ts", Double, nullable=False),
    Column("updated_ts", Double),
    Column("expires_ts", Double),
    Column("sent_ts", Double),
    Column("delivered_ts", Double),
    Column("next_attempt_ts", Double),
    Column("send_at", Double),
    Column("route", String(64)),
    Column("redacted", Boolean, nullable=False, default=False),
    Column("archived_ts", Double, nullable=False),
    Index("ix_messages_to_created", "prefix", "to", "created_ts"),
    Index("ix_messages_message_id", "prefix", "message_id"),
    Index("ix_messages_batch_created", "prefix", "batch_id", "created_ts"),
    Index("ix_messages_created", "prefix", "created_ts", "job_id"),
    Index("ix_messages_state_created", "prefix", "state", "created_ts"),
)

FACT_KEYS = ("prefix", "day", "state", "dead_reason", "sender", "batch_id", "route")
"""A daily fact's key; absent values are '' so the key is a primary key on every backend."""

daily_facts = Table(
    "daily_facts",
    metadata,
    Column("prefix", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("state", String(16), primary_key=True),
    Column("dead_reason", String(64), primary_key=True),
    Column("sender", String(64), primary_key=True),
    Column("batch_id", String(200), primary_key=True),
    Column("route", String(64), primary_key=True),
    Column("messages", BigInteger, nullable=False),
    Column("price", Double, nullable=False),
    Index("ix_daily_facts_batch", "prefix", "batch_id"),
)

archive_meta = Table(
    "archive_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
