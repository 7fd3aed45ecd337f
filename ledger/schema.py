"""The ledger's one schema: every job field, state, verdict, result, counter and reason.

Python reads these names directly; the Lua scripts get them from `lua_prelude()`, which
is prepended to every script, so a name exists in exactly one place. Lua code writes
`F.state`, `S.sent`, `C.attempts`: a misspelt name is nil and Redis refuses the call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from config.keys import LANES

# --- states -------------------------------------------------------------------------------
STATES = ("queued", "sending", "retrying", "sent", "delivered", "not_delivered", "dead", "expired", "held", "cancelled")
FINAL_STATES = frozenset({"delivered", "not_delivered", "dead", "expired", "cancelled"})
"""States a job leaves only by an operator's action or the provider's late word (`sent` still waits
for its receipt)."""
LATE_SETTLEABLE = frozenset({"dead", "expired", "cancelled"})
"""Final states the provider's word (an acceptance or a receipt) may still overturn, with `late`."""
WAITING_STATES = frozenset({"queued", "retrying"})
"""Nobody is sending these now; they have not gone out (as far as the ledger knows)."""

# --- job hash fields (the outcome record) ---------------------------------------------------
JOB_FIELDS = {
    "state": "one of STATES",
    "lane": "single | bulk",
    "batch": "batch id of a bulk job",
    "to": "destination number",
    "from": "sender name",
    "text": "message text (never logged)",
    "callback": "the application's own callback URL, if any",
    "forward": "'1': COSMOS gets our receiver's URL; the application's callback gets a forwarded POST",
    "idem": "idempotency key",
    "created_ts": "epoch seconds, recorded",
    "updated_ts": "epoch seconds, last change",
    "expires_ts": "deadline: not sent by then means expired",
    "send_at": "epoch seconds: a scheduled job is not sent before",
    "waiting": "what a waiting job waits for: 'send_at' or 'quiet_hours' (absent: nothing)",
    "attempts": "HTTP requests made to COSMOS (probes excluded)",
    "deliveries": "single-job deliveries begun since the last outcome (poison detection)",
    "owner": "lease owner while sending",
    "lease_ts": "lease expiry while sending",
    "inflight": "'1' while a request is on the wire",
    "due_ts": "when a retrying job is next due",
    "resend_next": "'1': the next attempt repeats one whose outcome is unknown",
    "doubt": "'1': an attempt's outcome was unknown once, so COSMOS may hold another copy",
    "ambiguous_resends": "attempts that repeated one whose outcome was unknown",
    "extra_sends": "other message_ids COSMOS reported for this job",
    "extra_ids": "those message_ids, ';'-separated, at most MAX_EXTRA_IDS",
    "message_id": "COSMOS's id of the accepted message",
    "price": "from the acceptance, replaced by the receipt's",
    "sent_ts": "epoch seconds, accepted",
    "delivered_ts": "epoch seconds, receipt applied",
    "delivery_status": "the receipt's status",
    "receipt_timestamp": "the receipt's message_timestamp",
    "rcpt_status": "an early receipt kept until the acceptance is recorded",
    "rcpt_msgid": "its message_id",
    "rcpt_price": "its price",
    "rcpt_ts": "its timestamp",
    "last_error": "the last failure, for people",
    "dead_reason": "why it is dead",
    "history": "the last HISTORY_LEN attempts, 'status/http/ms/route/provider_status' ';'-separated",
    "late": "'1': the provider's word overturned a final state",
    "fwd_seq": "forwards written for this job",
    "route": "the route of the last attempt: http | smpp",
    "archived": "'1': the archive has had this record at least once (the sweep may remove it)",
    "redacted": "'1': to, text, idempotency key and callback query were redacted (one-way)",
    "call": "id of the last begin or finish call (a repeated call answers `call_reply`)",
    "call_reply": "that call's reply, JSON, without what the record holds (ONCE_REPLY_FROM_RECORD)",
    "timeline_n": "timeline entries ever written (the kept ones are in TIMELINE_FIELD<slot> fields)",
}

# --- results -------------------------------------------------------------------------------
BEGIN_VERDICTS = ("go", "wait", "skip", "held", "dead", "expired", "sent", "busy")
"""What `begin` decided. `busy`: no rate token within the bulk look-ahead; ask again later."""
OUTCOME_KINDS = ("accepted", "permanent", "transient", "ambiguous", "account", "defer", "release")
"""What the worker tells `finish` about one attempt. `account`: COSMOS refused our account
(unauthorized, or 404 from a wrong endpoint), which says nothing about the message. `defer`: a
burst is spent, wait in the retry set. `release`: a lease given back before any request."""
FINISH_RESULTS = (
    "sent",
    "extra",
    "duplicate",
    "dead",
    "retry",
    "retrying",
    "held",
    "expired",
    "paused",
    "lost_lease",
    "missing",
)
RECEIPT_RESULTS = (
    "applied",
    "pending",
    "duplicate",
    "extra",
    "settled",
    "late",
    "refused_foreign",
    "unknown_job",
    "to_mismatch",
)
OPERATIONS = ("cancel", "requeue", "resend", "mark_sent", "purge", "withdraw")
CANCEL_REASONS = ("cancelled", "unreplicated", "batch_cancelled")
"""Why a job was cancelled (its `last_error`); `unreplicated`: withdrawn by its producer because too few
replicas had the enqueue in time (a repeated call records it again)."""

# --- reasons -------------------------------------------------------------------------------
DEAD_REASONS_OURS = ("suppressed", "retries_exhausted", "poison", "held_limit")
"""Dead reasons of our own; the others are COSMOS's permanent statuses."""
ACCOUNT_PAUSE_REASONS = ("unauthorized", "endpoint_not_found")
PAUSE_SCOPES = ("all", *LANES)
"""What an operator can pause: all sending, or one lane."""

# --- the budget day hash ({P}:budget:<day start>) ------------------------------------------------
BUDGET_DAY_FIELDS = {
    "messages": "acceptances counted on this budget day",
    "price": "their price, integer micro-dollars (receipts move it by at most the accepted price)",
    "warned_80": "when the day reached 80 % of a cap (its budget event fired)",
    "warned_100": "when the day reached 100 % of a cap: sending paused",
    "logged_80": "'1': a worker logged the 80 % line",
    "logged_100": "'1': a worker logged the 100 % line",
    "resumed": "JSON {by, ts}: an operator lifted the budget pause for the rest of the day",
}
BUDGET_PAUSE_REASONS = ("daily_budget", "daily_message_cap")
BUDGET_WARN_LEVELS = (80, 100)
"""Percent of a cap at which a `budget` event and a log line come, once per day each."""
BUDGET_KEEP_S = 3 * 86400
"""A budget day's hash outlives its day by this long (seconds): yesterday's figures stay readable."""

# --- counters hash fields --------------------------------------------------------------------
COUNTERS = {
    "attempts": "HTTP requests to COSMOS",
    "probes": "account-pause probe requests",
    "transient_failures": "attempts that failed transiently or ambiguously",
    "retries": "bursts spent and rescheduled",
    "ambiguous_attempts": "attempts whose outcome was unknown",
    "ambiguous_resends": "attempts that repeated an unknown one",
    "extra_sends": "message_ids COSMOS reported beyond a job's own",
    "unauthorized": "attempts COSMOS refused for our credentials",
    "breaker_opened": "times the breaker opened",
    "requeued": "operator requeues and resends",
    "late": "final states the provider's word overturned",
    "unreplicated_acceptances": "outcome writes with an acceptance that too few replicas had within the WAIT timeout",
    "receipt_price_refused": "receipts applied without their price (outside [0, max(1.00, 10 x accepted)] USD)",
    "swept": "records removed by the retention sweep",
    "total_price": "sum of prices",
    "smpp_binds": "SMPP bind slots taken (each a bind attempt under the fleet's lease)",
    "smpp_receipts": "SMPP delivery receipts recorded",
    "smpp_receipts_kept": "SMPP receipts kept because no job was known for their message_id yet",
    "smpp_receipts_unmatched": "kept SMPP receipts dropped unmatched (10 minutes, or the 100,000 bound)",
    "smpp_throttled": "submit_sm answered ESME_RTHROTTLED or ESME_RMSGQFUL",
    "smpp_inbound": "inbound (non-receipt) deliver_sm received",
}
"""Plus `state:<state>` (live records per state), `lane:<lane>:<state>` (the same per lane) and
`dead:<reason>` (live dead records per reason); and, never lowered (the sweep leaves them),
`outcome:<state>:<lane>` (moves into each of OUTCOME_STATES), `dead_total:<reason>` and
`attempt:<route>:<kind>` (attempts per route and OUTCOME_KINDS)."""
OUTCOME_STATES = ("sent", "delivered", "not_delivered", "dead", "expired", "held", "cancelled")
"""States whose every entry is counted for good (`outcome:<state>:<lane>`)."""

# --- the other hashes the ledger owns (config.keys.LEDGER_OWNED), field -> meaning ------------------
# A field ending in ':' is a family: `state:<state>`, `op:<scope>`. tests/test_key_ownership.py checks
# that the scripts and ledger/*.py use no other field of these hashes.
BATCH_FIELDS = {
    "total": "members the batch was created with",
    "fingerprint": "hash of the whole member list: the same batch id with other members conflicts",
    "created_ts": "epoch seconds, recorded",
    "cancelled": "'1': cancel_batch ran; enqueue refuses new members",
    "send_until": "the latest send_at of a member: the batch's record lives at least until then",
    "state:": "live members per state",
}
BREAKER_FIELDS = {
    "state": "closed | open | half_open",
    "failures": "transient failures counted towards the threshold",
    "streak": "consecutive openings (the open interval doubles, capped)",
    "open_until": "epoch seconds the breaker stays open",
    "probe_until": "while half open: when the one probe's ownership ends",
}
PAUSE_FIELDS = {
    "op:": "an operator's pause of a scope (PAUSE_SCOPES): JSON {reason, by, ts}",
    "account": "COSMOS refused our account: JSON {reason, ts}; a probe's acceptance lifts it",
    "probe_ts": "when the last account-pause probe went out",
}
RATE_FIELDS = {
    "tat": "theoretical arrival time of the next request slot (GCRA), 60 s TTL",
    "single_tat": "the same for single-lane sends, which may take a slot ahead of bulk",
}
FORWARD_FIELDS = {
    "job": "the job whose final state is forwarded",
    "url": "the application's callback URL",
    "payload": "the JSON body, exactly as signed and sent",
    "webhook_id": "Standard Webhooks webhook-id, the same on every retry",
    "attempts": "POSTs made",
    "created_ts": "epoch seconds, written",
    "last_error": "the last failure, for people",
    "last_attempt_ts": "epoch seconds of the last failure",
    "retry_ts": "start of the retry window an operator's retry opened",
    "failed_ts": "epoch seconds it was given up",
    "seq": "the job's forward number: a later state's is higher, and an older one is never sent after it",
    "claimed_until": "while a POST of it may be in flight: a later forward of the job waits",
}
LEDGER_HASHES = {
    "job": JOB_FIELDS,
    "batch": BATCH_FIELDS,
    "breaker": BREAKER_FIELDS,
    "pause": PAUSE_FIELDS,
    "budget_day": BUDGET_DAY_FIELDS,
    "rate": RATE_FIELDS,
    "forward": FORWARD_FIELDS,
    "counters": {
        **COUNTERS,
        "state:": "live records per state",
        "lane:": "per lane and state",
        "dead:": "per reason",
        "outcome:": "moves into each outcome state per lane, never lowered",
        "dead_total:": "dead-letterings per reason, never lowered",
        "attempt:": "requests per route and outcome kind, never lowered",
    },
    "histograms": {"": "latency bucket counts, `<histogram>:<bucket>`"},
    "suppression": {"": "one number's reasons (`blacklist`, `opt_out`, `operator`) -> since when"},
    "smpp_early_data": {"": "an SMPP receipt kept until its job is known, by its message_id"},
}
"""Every hash the ledger owns, by its `config.keys.Keys` name, with its fields."""

# --- sizes ---------------------------------------------------------------------------------
HISTORY_LEN = 10
TIMELINE_HEAD = 10
"""Timeline entries kept from a job's start; later ones beyond TIMELINE_TAIL are counted, not kept."""
TIMELINE_TAIL = 40
"""Timeline entries kept from a job's end (slots TIMELINE_HEAD.. rotate)."""
TIMELINE_FIELD = "~"
"""Job hash fields `~0`..`~49` hold the kept timeline entries, inside the record itself."""
TIMELINE_ENTRY_MAX = 63
"""Bytes an entry keeps: under Redis's hash-max-listpack-value (64), so the record stays a compact listpack."""
TIMELINE_NAMES = {
    "status": "st",
    "http": "h",
    "route": "r",
    "error": "e",
    "why": "w",
    "until": "u",
    "by": "b",
    "state": "s",
    "reason": "rs",
    "note": "nt",
    "message_id": "mid",
    "probe": "p",
}
"""Timeline field names as stored (short: the timeline lives in every record); readers expand them."""
TIMELINE_TIMES = ("until",)
"""Timeline fields that are times: stored as ms since created, read as ISO 8601."""
MAX_EXTRA_IDS = 5
"""Extra message_ids kept per job: replayed or forged receipts cannot grow a record."""
HISTOGRAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
STEP = 1000
"""Most items one script call handles: no call of ours holds Redis for long."""
ENQUEUE_STEP = 250
"""Most new jobs one enqueue call records: each costs ~40 µs inside Redis (record, indexes, events,
counters, its share of a broker message; measured with SLOWLOG), so a call holds Redis ~10 ms."""
ARCHIVE_STEP = 2000
"""Most records one archiver step reads from Redis (pipelined HGETALLs) and writes in one archive
transaction: a commit costs a disk flush, so rows per commit set the archive's throughput."""
ARCHIVED_STEP = 500
"""Most records one `archived` call takes out of the to-archive set (~5 µs each inside Redis)."""
CLAIM_STEP = 250
"""Most jobs one reconciler claim republishes per kind (due, lease expired, lost message): each costs a few
µs inside Redis, so even a claim full of every kind holds Redis a few ms."""
EXPIRE_STEP = 50
"""Most waiting jobs one claim ends `expired`: each is a whole state move (~80 µs), so ~4 ms a call."""
RELEASE_STEP = 100
"""Most scheduled (or quiet-hours) jobs one release call hands to the broker: each costs ~6 µs inside
Redis (its state, two set moves), so a call holds Redis about 1 ms (`python -m bench.redis_hold`):
short bursts that a busy host seldom preempts."""
SWEEP_STEP = 250
"""Most records one retention sweep call removes: each costs ~25-45 µs inside Redis (the record, its
index entries and set members, the counts), so a call holds Redis ~10 ms."""


# --- script arguments and replies, by name --------------------------------------------------------
# Each script reads its arguments as `A.<name>` from a table generated from these tuples, and Python
# builds every argument list from a dict keyed by the same names (`pack`), so an argument in the wrong
# place cannot exist: a missing or unknown name fails at the call.
BUDGET_ARGS = ("budget_yesterday", "budget_today", "budget_tomorrow", "budget_after", "message_cap", "price_cap")
"""Three consecutive budget days' four boundaries (epoch seconds), the daily caps (messages, micro-dollars)."""
COMMON_ARGS = ("prefix", "retention_s", "events_maxlen", "grace_s", "clock_offset_s", *BUDGET_ARGS)
QUIET_ARGS = ("quiet_start", "quiet_end", "quiet_next_start", "quiet_next_end")
"""The quiet hours' window in force (or next) and the one after, epoch seconds; zeros for none."""
"""The first arguments of every ledger script (`Ledger` adds them to each call)."""
BEGIN_ARGS = (
    "job",
    "owner",
    "lease_s",
    "policy",
    "max_attempts",
    "poison_deliveries",
    "count_delivery",
    "rate",
    "bulk_ahead_s",
    "probe_s",
    "max_ambiguous_resends",
    "probe_interval_s",
    *QUIET_ARGS,
)
"""`begin`'s arguments; `take` runs begin's body per job and takes them first."""
SCRIPT_ARGS: dict[str, tuple[str, ...]] = {
    "enqueue": ("batch_id", "batch_fingerprint", "batch_total", "jobs"),
    "begin": (*BEGIN_ARGS, "call"),
    "recheck": ("job", "owner", "probe"),
    "take": (*BEGIN_ARGS, "queue", "limit", "task"),
    "finish": (
        "call",
        "job",
        "owner",
        "kind",
        "status",
        "http",
        "latency_ms",
        "message_id",
        "price",
        "error",
        "policy",
        "breaker_threshold",
        "breaker_open_s",
        "breaker_cap_s",
        "delay_s",
        "max_ambiguous_resends",
        "route",
        "provider_status",
    ),
    "receipt": ("job", "to", "status", "message_id", "price", "receipt_timestamp"),
    "claim": ("limit", "single_list", "bulk_list", "probe_interval_s", "lost_horizon_s", *QUIET_ARGS),
    "release": ("limit", *QUIET_ARGS),
    "operate": ("action", "job", "expires_in_s", "cancel_reason", "by"),
    "sweep": ("limit",),
    "forward_claim": ("limit", "claim_grace_s", "prune_limit", "held"),
    "forward_reschedule": ("fwd_id", "delay_s", "error", "attempted", "max_age_s"),
    "forward_retry": ("ids",),
    "events_read": ("group", "consumer", "count"),
    "events_group": ("group", "start"),
    "events_skip": ("group",),
    "search_filter": ("state", "reason", "number", "batch", "since", "until_ts", "scheduled", "jobs"),
    "lock_release": ("name", "token"),
    "batch_close": ("batch_id",),
    "bind": ("action", "holder", "slots", "lease_ms", "slot"),
    "smpp_receipt": ("action", "message_id", "status", "timestamp", "keep_s", "max_kept", "limit"),
    "inbound": ("sender", "to", "text", "word", "url"),
    "unsuppress": ("number", "force"),
    "archived": ("pairs",),
    "redact": ("job", "expected_to", "to", "text", "idem", "callback"),
    "budget": ("action", "by"),
}
"""Each script's own arguments, after COMMON_ARGS."""
ONCE_SCRIPTS = frozenset({"begin", "finish"})
"""Scripts whose reply is kept in the job's record under the call's id (`call`): repeated after a lost
reply, the call answers the same instead of counting an attempt or an outcome twice."""
ONCE_REPLY_FROM_RECORD = {
    "begin": {"to": "to", "sender": "from", "text": "text", "callback": "callback", "forward": "forward"},
}
"""Reply fields (by name, with the job field they come from) a kept reply leaves blank and a repeated call
reads again from the record: a copy would take the message past redaction, and a value over Redis's
64-byte listpack limit turns the job's hash into a hashtable for good (twice the bytes per record)."""
INNER_SCRIPTS = {"take": "begin"}
"""Scripts that run another's body as a function (`begin_job(A)`) inside their one atomic step; they take
the inner script's arguments first."""
TAKE_TTL_S = 30
"""How long `take` keeps its reply for a repeated call (redis-py's retry after a lost reply, or ride_out)."""
SCRIPT_ROWS: dict[str, dict[str, tuple[str, ...]]] = {
    "enqueue": {
        # `jobs` rows follow the fixed arguments; then a count and the `messages` rows.
        "jobs": (
            "job_id",
            "idem",
            "fingerprint",
            "lane",
            "to",
            "sender",
            "text",
            "callback",
            "forward",
            "expires_in_s",
            "send_at",
        ),
        "messages": ("first", "last", "queue", "message"),
    },
    "forward_retry": {"ids": ("fwd_id",)},
    "forward_claim": {"held": ("fwd_id", "delay_s")},
    "search_filter": {"jobs": ("job",)},
    "archived": {"pairs": ("job", "score")},
}
"""Repeated argument groups (name -> fields of one row); Lua reads field `f` of a row at `ROW.<group>.f`."""
SCRIPT_REPLIES: dict[str, tuple[str, ...]] = {
    "enqueue": ("status",),
    "begin": (
        "verdict",
        "attempt",
        "to",
        "sender",
        "text",
        "callback",
        "delay_s",
        "probe",
        "forward",
    ),
    "finish": ("result", "change"),
    "operate": ("status", "detail"),
    "budget": ("status", "detail"),
}
"""Fixed-position replies. `begin` answers all of these with `go` (Lua builds it with `reply{...}`),
otherwise (verdict, detail); `enqueue` follows its status with (job, created) rows; `budget`'s `announce`
answers REPLY_ROWS."""
REPLY_ROWS: dict[str, tuple[str, ...]] = {
    "enqueue": ("job", "created"),
    "claim": ("job", "lane", "why"),
    "release": ("job", "lane", "why"),
    "forward_claim": ("fwd_id", "fields"),
    "budget": ("level", "reason", "messages", "price"),
}
"""Replies that are (or end in) a flat list of rows."""


def pack(names: Sequence[str], values: Mapping[str, object]) -> tuple[object, ...]:
    """The arguments `names` declares, in their order, from `values`; refuses a missing or unknown name."""
    if values.keys() != set(names):
        missing, unknown = sorted(set(names) - values.keys()), sorted(values.keys() - set(names))
        raise ValueError(f"script arguments: missing {missing}, unknown {unknown}")
    return tuple(values[n] for n in names)


def script_args(script: str, **values: object) -> tuple[object, ...]:
    """`script`'s own arguments (SCRIPT_ARGS) by name, in the order the script reads them."""
    return pack(SCRIPT_ARGS[script], values)


def row_args(script: str, group: str, rows: Iterable[Mapping[str, object]]) -> list[object]:
    """Flat arguments of repeated rows (SCRIPT_ROWS), each row's fields by name."""
    fields = SCRIPT_ROWS[script][group]
    return [value for row in rows for value in pack(fields, row)]


def reply(script: str, values: Sequence[Any]) -> dict[str, Any]:
    """A fixed-position reply by its declared names (a shorter reply leaves the rest out)."""
    return dict(zip(SCRIPT_REPLIES[script], values))


def reply_rows(script: str, flat: Sequence[Any]) -> list[dict[str, Any]]:
    """A flat reply of rows, each by its declared names."""
    names = REPLY_ROWS[script]
    width = len(names)
    return [dict(zip(names, flat[i : i + width])) for i in range(0, len(flat), width)]


def lua_script_args(script: str) -> str:
    """Lua that names `script`'s arguments: `A.<name>`, and `ROW.<group>.<field>` offsets within a row."""
    entries = ", ".join(f"[{n!r}] = ARGV[{len(COMMON_ARGS) + i}]" for i, n in enumerate(SCRIPT_ARGS[script], 1))
    lines = [
        "-- Generated from ledger/schema.py: this script's arguments and replies by name.",
        f"local A = {{{entries}}}",
    ]
    groups = SCRIPT_ROWS.get(script, {})
    rows = ", ".join(
        f"[{g!r}] = {{" + ", ".join(f"[{f!r}] = {i}" for i, f in enumerate(fields, 1)) + f", width = {len(fields)}}}"
        for g, fields in groups.items()
    )
    lines.append(f"local ROW = {{{rows}}}")
    lines.append(
        f"local ROWS_AT = {len(COMMON_ARGS) + len(SCRIPT_ARGS[script]) + 1}  -- the first row's first argument"
    )
    names = SCRIPT_REPLIES.get(script, ())
    lines.append("local REPLY = {" + ", ".join(repr(n) for n in names) + "}")
    lines.append(
        "local function reply(t)\n"
        "  local out = {}\n"
        "  for i, n in ipairs(REPLY) do out[i] = t[n]; t[n] = nil end\n"
        "  if next(t) then return redis.error_reply('undeclared reply field ' .. next(t)) end\n"
        "  return out\n"
        "end"
    )
    return "\n".join(lines).replace("'", '"') + "\n"


def batch_job_id(batch_id: str, index: int) -> str:
    """The job id of member `index` of a batch: the same call repeated finds the same ids."""
    digest = hashlib.sha256(batch_id.encode()).hexdigest()[:20]
    return f"b{digest}-{index}"


def _lua_table(name: str, names: Iterable[str]) -> str:
    entries = ", ".join(f"[{n!r}] = {n!r}" for n in names)
    return f"local {name} = {{{entries}}}"


def _lua_set(name: str, values: Iterable[str]) -> str:
    entries = ", ".join(f"[{v!r}] = true" for v in sorted(values))
    return f"local {name} = {{{entries}}}"


def _lua_common_args() -> str:
    names = ", ".join(f"[{n!r}] = ARGV[{i}]" for i, n in enumerate(COMMON_ARGS, 1))
    return f"local COMMON = {{{names}}}\nlocal BASE = {len(COMMON_ARGS)}"


@cache
def lua_prelude() -> str:
    """Lua definitions of every schema name; the first lines of every ledger script."""
    lines = [
        "-- Generated from ledger/schema.py: every name the scripts use.",
        _lua_common_args(),
        _lua_table("F", JOB_FIELDS),
        _lua_table("S", STATES),
        _lua_table("C", COUNTERS),
        _lua_table("V", BEGIN_VERDICTS),
        _lua_table("K", OUTCOME_KINDS),
        _lua_table("R", sorted(set(FINISH_RESULTS) | set(RECEIPT_RESULTS))),
        _lua_table("DR", DEAD_REASONS_OURS),
        _lua_table("AP", ACCOUNT_PAUSE_REASONS),
        _lua_table("CR", CANCEL_REASONS),
        _lua_table("BF", BUDGET_DAY_FIELDS),
        _lua_table("BP", BUDGET_PAUSE_REASONS),
        "local BUDGET_LEVELS = {" + ", ".join(str(level) for level in BUDGET_WARN_LEVELS) + "}",
        f"local BUDGET_KEEP_S = {BUDGET_KEEP_S}",
        _lua_set("FINAL", FINAL_STATES),
        _lua_set("LATE_OK", LATE_SETTLEABLE),
        _lua_set("OUTCOMES", OUTCOME_STATES),
        _lua_set("WAITING", WAITING_STATES),
        f"local HISTORY_LEN = {HISTORY_LEN}",
        f"local TIMELINE_HEAD, TIMELINE_TAIL = {TIMELINE_HEAD}, {TIMELINE_TAIL}",
        f"local TL, TIMELINE_ENTRY_MAX = {TIMELINE_FIELD!r}, {TIMELINE_ENTRY_MAX}",
        "local TLN = {" + ", ".join(f"[{k!r}] = {v!r}" for k, v in TIMELINE_NAMES.items()) + "}",
        _lua_set("TLT", TIMELINE_TIMES),
        f"local MAX_EXTRA_IDS = {MAX_EXTRA_IDS}",
        f"local STEP = {STEP}",
        f"local EXPIRE_STEP = {EXPIRE_STEP}",
        f"local TAKE_TTL_S = {TAKE_TTL_S}",
        "local BUCKETS = {" + ", ".join(repr(b) for b in HISTOGRAM_BUCKETS) + "}",
    ]
    return "\n".join(lines).replace("'", '"') + "\n"
