"""Every Redis key shape of cosmos-sms, all under `COSMOS_REDIS_PREFIX`.

Celery's own keys (broker queues, unacked messages, results) sit under
`{prefix}:celery:` through kombu's `global_keyprefix`. The ledger's Lua scripts build
the same shapes from the prefix (`key(...)` in ledger/lua/common.lua): change both together.
ARCHITECTURE.md lists every shape with what writes and reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

LANE_SINGLE = "single"
"""Lane of `send_sms`: one-time codes never wait behind a campaign."""
LANE_BULK = "bulk"
"""Lane of `send_bulk` chunks."""
LANES = (LANE_SINGLE, LANE_BULK)


LEDGER_OWNED = frozenset(
    {
        "job",
        "take",
        "idempotency",
        "message_id",
        "batch",
        "retry",
        "scheduled",
        "quiet",
        "by_number",
        "forward",
        "created",
        "outbox",
        "deadlines",
        "awaiting",
        "retention",
        "events",
        "pause",
        "budget_day",
        "forwards_due",
        "forwards_failed",
        "leases",
        "dead",
        "held",
        "suppressed",
        "counters",
        "histograms",
        "breaker",
        "rate",
        "archive_pending",
        "archive_identity",
        "smpp_bind",
        "smpp_early",
        "smpp_early_data",
        "inbound",
        "suppression",
    }
)
"""Keys only the ledger writes (ledger/ and its Lua scripts); other modules read them or call the ledger.
Its hashes and their fields are declared in ledger.schema.LEDGER_HASHES."""
PROCESS_OWNED = frozenset(
    {
        "chunk",
        "lock",
        "redis_run_id",
        "audit",
        "console_minute",
        "console_hour",
        "console_events_cursor",
        "console_task",
        "console_login_failures",
        "archiver_status",
        "process",
        "processes",
        "smpp_relay",
        "smpp_relay_answer",
    }
)
"""A process's own bookkeeping: locks, bulk chunk redelivery counters, the audit stream, console caches,
tasks and login throttle, worker heartbeats, the SMPP relay between a process and a bind's holder
(the demo's heartbeats are `DEMO_RUNS`)."""
BROKER_OWNED = frozenset({"celery_prefix", "queue", "broker_queue_key"})
"""Celery's (kombu's) names; the ledger pushes task messages into the broker lists."""
DEMO_RUNS = "cosmos-demo:runs"
"""Sorted set, outside every prefix: demo prefix -> its run's last heartbeat (process-owned)."""


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
        """Hash: a batch's total, fingerprint, created_ts, cancelled flag, send_until and `state:<s>` counts."""
        return f"{self.prefix}:batch:{batch_id}"

    def chunk(self, task_id: str) -> str:
        """Counter: deliveries of one bulk chunk message (a redelivered chunk is split)."""
        return f"{self.prefix}:chunk:{task_id}"

    def take(self, owner: str) -> str:
        """A single-lane task's taken group, kept briefly for a repeated call (ledger-owned; take.lua)."""
        return f"{self.prefix}:take:{owner}"

    def retry(self, lane: str) -> str:
        """Sorted set: a lane's retrying jobs -> when due (retry timers, apart from the backlog)."""
        return f"{self.prefix}:retry:{lane}"

    def scheduled(self, lane: str) -> str:
        """Sorted set: a lane's queued jobs whose `send_at` is ahead -> send_at (no broker message yet)."""
        return f"{self.prefix}:scheduled:{lane}"

    @property
    def quiet(self) -> str:
        """Sorted set: bulk jobs waiting for the quiet hours to end -> when they were due."""
        return f"{self.prefix}:quiet"

    def by_number(self, number: str) -> str:
        """Sorted set: jobs to one number -> created_ts (console search)."""
        return f"{self.prefix}:idx:to:{number}"

    def forward(self, forward_id: str) -> str:
        """Hash: one forward of a final state to the application's callback."""
        return f"{self.prefix}:fwd:{forward_id}"

    @property
    def created(self) -> str:
        """Sorted set: every job -> created_ts (console time-range search)."""
        return f"{self.prefix}:idx:created"

    def outbox(self, lane: str) -> str:
        """Sorted set: a lane's queued jobs -> when to check whether their broker message was lost."""
        return f"{self.prefix}:outbox:{lane}"

    @property
    def deadlines(self) -> str:
        """Sorted set: waiting (queued, retrying) jobs -> deadline, so they expire on time while waiting."""
        return f"{self.prefix}:deadlines"

    @property
    def awaiting(self) -> str:
        """Sorted set: `sent` jobs waiting for a receipt -> sent_ts (overdue receipts)."""
        return f"{self.prefix}:awaiting"

    @property
    def retention(self) -> str:
        """Sorted set: retained jobs -> when the sweep removes them."""
        return f"{self.prefix}:retention"

    @property
    def events(self) -> str:
        """Stream: every state change (job, state, prev, ts, reason, batch, late), MAXLEN ~ bounded."""
        return f"{self.prefix}:events"

    @property
    def pause(self) -> str:
        """Hash: `op:all|op:single|op:bulk` (an operator's pause) and `account` (COSMOS refused us)."""
        return f"{self.prefix}:pause"

    def budget_day(self, day_start: int) -> str:
        """Hash (ledger-owned): one budget day's acceptances and price, its warnings and resume."""
        return f"{self.prefix}:budget:{day_start}"

    @property
    def forwards_due(self) -> str:
        """Sorted set: forward id -> when to (re)try posting it."""
        return f"{self.prefix}:forwards:due"

    @property
    def forwards_failed(self) -> str:
        """Sorted set: forwards that failed for good -> when."""
        return f"{self.prefix}:forwards:failed"

    def smpp_bind(self, slot: int) -> str:
        """String (PX lease): the holder of SMPP bind slot `slot` (ledger/lua/bind.lua)."""
        return f"{self.prefix}:smpp:bind:{slot}"

    def smpp_relay(self, slot: int) -> str:
        """List: submits handed to the holder of bind slot `slot` by processes without a bind (ledger/smpp_relay.py)."""
        return f"{self.prefix}:smpp:relay:{slot}"

    def smpp_relay_answer(self, request_id: str) -> str:
        """List: the holder's answer to one handed-over submit (expires)."""
        return f"{self.prefix}:smpp:relay_answer:{request_id}"

    @property
    def smpp_early(self) -> str:
        """Zset message_id -> next check: SMPP receipts kept until their job is known (smpp_receipt.lua)."""
        return f"{self.prefix}:smpp:early"

    @property
    def smpp_early_data(self) -> str:
        """Hash message_id -> [status, timestamp, kept since] of those receipts."""
        return f"{self.prefix}:smpp:early_data"

    @property
    def inbound(self) -> str:
        """Stream of inbound messages (from, to, text, word), trimmed to the records' retention."""
        return f"{self.prefix}:inbound"

    def suppression(self, number: str) -> str:
        """Hash reason -> since: why `number` is on the suppression list (ledger/lua/inbound.lua)."""
        return f"{self.prefix}:suppression:{number}"

    def process(self, process_id: str) -> str:
        """String (JSON, expires 10 minutes after its last write): a worker process's heartbeat."""
        return f"{self.prefix}:proc:{process_id}"

    @property
    def processes(self) -> str:
        """Sorted set: worker process id -> last heartbeat (pruned to the last 10 minutes on every beat)."""
        return f"{self.prefix}:processes"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"

    @property
    def redis_run_id(self) -> str:
        """String: the Redis `run_id` the reconciler last saw; a new one means Redis restarted."""
        return f"{self.prefix}:reconciler:run_id"

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

    # Operations console: audit stream and console bookkeeping.
    @property
    def audit(self) -> str:
        """Stream: operator actions (ts, user, action, target, count, detail), MAXLEN ~ 100000."""
        return f"{self.prefix}:audit"

    def console_minute(self, minute: int) -> str:
        """Hash: state-change counts (and price) of one minute (epoch minutes), kept ~2 h for the chart."""
        return f"{self.prefix}:console:minute:{minute}"

    def console_hour(self, hour: int) -> str:
        """Hash: price of one hour (epoch hours), kept ~2 days for price today and over 24 h."""
        return f"{self.prefix}:console:hour:{hour}"

    @property
    def console_events_cursor(self) -> str:
        """String: last events-stream id the console's chart counter has counted."""
        return f"{self.prefix}:console:events_cursor"

    def console_task(self, task_id: str) -> str:
        """Hash: one background whole-set action of the console (progress, state), kept a day."""
        return f"{self.prefix}:console:task:{task_id}"

    def console_login_failures(self, name: str) -> str:
        """Counter: recent failed logins under one name (for the growing delay), expiring."""
        return f"{self.prefix}:console:login_failures:{name}"

    # --- The archive: records waiting to be written, the archive's identity, the archiver's health ---
    @property
    def archive_pending(self) -> str:
        """Sorted set: records to (re)write into the archive -> when they last changed."""
        return f"{self.prefix}:archive:pending"

    @property
    def archive_identity(self) -> str:
        """String: `<uuid> <masked URL>` of the archive this prefix writes to; its presence turns archiving on."""
        return f"{self.prefix}:archive:identity"

    @property
    def archiver_status(self) -> str:
        """Hash: the archiver's `last_error`, `error_ts`, `ok_ts` (for stats, metrics and the console)."""
        return f"{self.prefix}:archiver:status"
