"""Every Redis key shape of cosmos-sms, all under `COSMOS_REDIS_PREFIX`.

Celery's own keys (broker queues, unacked messages, results) sit under
`{prefix}:celery:` through kombu's `global_keyprefix`. The ledger's Lua scripts build
the same shapes from the prefix (`key(...)` in ledger/lua/common.lua): change both together.
"""

from __future__ import annotations

from dataclasses import dataclass

LANE_SINGLE = "single"
"""Lane of `send_sms`: one-time codes never wait behind a campaign."""
LANE_BULK = "bulk"
"""Lane of `send_bulk` chunks."""
LANES = (LANE_SINGLE, LANE_BULK)


@dataclass(frozen=True)
class Keys:
    """Key names for one prefix."""

    prefix: str = "cosmos"

    def job(self, job_id: str) -> str:
        """Hash: the outcome record of one job."""
        return f"{self.prefix}:job:{job_id}"

    def idempotency(self, key: str) -> str:
        """String: job id that owns an idempotency key."""
        return f"{self.prefix}:idem:{key}"

    def message_id(self, message_id: str) -> str:
        """String: job id of a COSMOS message_id, for receipts."""
        return f"{self.prefix}:msgid:{message_id}"

    def batch(self, batch_id: str) -> str:
        """Counter: deliveries of one bulk chunk (a redelivered chunk is split)."""
        return f"{self.prefix}:batch:{batch_id}"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"

    @property
    def due(self) -> str:
        """Sorted set: job id -> when it must next be (re)published (outbox and retry timer)."""
        return f"{self.prefix}:due"

    @property
    def awaiting(self) -> str:
        """Sorted set: jobs in `sent` waiting for a receipt, job id -> when sent (overdue receipts)."""
        return f"{self.prefix}:awaiting"

    @property
    def leases(self) -> str:
        """Sorted set: job id -> when its worker's lease expires."""
        return f"{self.prefix}:leases"

    @property
    def dead(self) -> str:
        """Sorted set: dead-letter queue, job id -> time it died."""
        return f"{self.prefix}:dead"

    @property
    def held(self) -> str:
        """Sorted set: jobs held after an ambiguous attempt, job id -> time held."""
        return f"{self.prefix}:held"

    @property
    def suppressed(self) -> str:
        """Set: numbers that opted out (COSMOS said `blacklist`)."""
        return f"{self.prefix}:suppressed"

    @property
    def counters(self) -> str:
        """Hash: counts per state, per dead reason, totals (the source of stats and metrics)."""
        return f"{self.prefix}:counters"

    @property
    def histograms(self) -> str:
        """Hash: bucket counts of latency histograms, for metrics from any process."""
        return f"{self.prefix}:histograms"

    @property
    def breaker(self) -> str:
        """Hash: circuit breaker state shared by every worker."""
        return f"{self.prefix}:breaker"

    @property
    def rate(self) -> str:
        """Hash: global token bucket for requests to COSMOS."""
        return f"{self.prefix}:rate"

    @property
    def celery_prefix(self) -> str:
        """kombu `global_keyprefix` for broker and results."""
        return f"{self.prefix}:celery:"

    def queue(self, lane: str) -> str:
        """Celery queue name of a lane."""
        return f"{self.prefix}.{lane}"

    def broker_queue_key(self, lane: str) -> str:
        """Redis list that holds a lane's broker messages."""
        return f"{self.celery_prefix}{self.queue(lane)}"
