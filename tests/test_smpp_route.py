"""The SMPP route end to end: real workers, real Redis, the sandbox's SMSC in its own process.

One SMSC and one fleet per module; each test uses numbers of its own and resets the SMSC's faults.
"""

from __future__ import annotations

import pytest

from tests.support.polling import wait_for
from tests.support.smsc_fixture import SmscHandle


@pytest.fixture(scope="module")
def fleet(smpp_fleet):
    smpp_fleet.start(concurrency=8)
    return smpp_fleet


@pytest.fixture
def smsc_fresh(smsc: SmscHandle) -> SmscHandle:
    smsc.faults(latency_ms=0, throttle_rate=0, bind_cap=0, receipt_before_response=False, receipts=True)
    return smsc


def final(
    producer, job_id: str, states=("delivered", "not_delivered", "dead", "held", "expired"), timeout: float = 30
) -> dict:
    def reached() -> dict:
        record = producer.get_status(job_id)
        return record if record and record["state"] in states else {}

    return wait_for(
        reached,
        timeout=timeout,
        what=f"{job_id} to reach one of {states}",
    )


def test_a_message_goes_as_one_submit_sm_and_its_receipt_delivers_it(fleet, smsc_fresh, smpp_producer):
    job = smpp_producer.send_sms("044770090010101", "Acme", "hello over SMPP")
    record = final(smpp_producer, job)
    assert record["state"] == "delivered"
    assert record["route"] == "smpp"
    assert record["history"][-1]["route"] == "smpp"
    assert record["history"][-1]["provider_status"] == "0x0"
    [sent] = smsc_fresh.messages("044770090010101")
    assert sent["from"] == "Acme" and (sent["source_ton"], sent["source_npi"]) == (5, 0)
    assert sent["registered_delivery"] == 1
    assert record["message_id"] == sent["message_id"].lower().lstrip("0")


_numbers = iter(range(10_000, 99_999))


def number() -> str:
    """A recipient of this test's own (scripts are per number)."""
    return f"0447700900{next(_numbers)}"


PERMANENT_ROWS = [
    ("0x0b", "invalid_to"),
    ("0x50", "invalid_to"),
    ("0x51", "invalid_to"),
    ("0x0a", "invalid_from"),
    ("0x48", "invalid_from"),
    ("0x49", "invalid_from"),
    ("0x01", "invalid_text"),
    ("0x400", "failed"),
    ("0x401", "spam"),
    ("0x402", "blacklist"),
    ("0x45", "smpp_0x45"),
]


def test_every_permanent_status_dead_letters_with_its_reason(fleet, smsc_fresh, smpp_producer):
    jobs = {}
    for status, reason in PERMANENT_ROWS:
        to = number()
        smsc_fresh.script(to, status)
        jobs[smpp_producer.send_sms(to, "Acme", f"row {status}")] = (status, reason)
    for job, (status, reason) in jobs.items():
        record = final(smpp_producer, job)
        assert (record["state"], record["dead_reason"]) == ("dead", reason), status
        assert record["history"][-1]["provider_status"] == hex(int(status, 16)), status
        assert record["attempts"] == 1, status


def test_magic_numbers_answer_as_over_http(fleet, smsc_fresh, smpp_producer):
    failed = smpp_producer.send_sms("099900000000001", "Acme", "magic failed")
    undelivered = smpp_producer.send_sms("099900000000007", "Acme", "magic not delivered")
    assert final(smpp_producer, failed)["dead_reason"] == "failed"
    assert final(smpp_producer, undelivered)["state"] == "not_delivered"


TRANSIENT_ROWS = ["0x08", "0x64", "0x04", "nack"]
"""Not taken: retried, each an attempt; nothing sent twice."""
AMBIGUOUS_ROWS = ["none", "drop", "nack0"]
"""Maybe taken: retried under the ambiguous policy and counted as an ambiguous resend."""


def test_transient_answers_are_retried_and_delivered_once(fleet, smsc_fresh, smpp_producer):
    jobs = {}
    for verb in TRANSIENT_ROWS:
        to = number()
        smsc_fresh.script(to, verb, "ok")
        jobs[smpp_producer.send_sms(to, "Acme", f"row {verb}")] = (verb, to)
    for job, (verb, to) in jobs.items():
        record = final(smpp_producer, job)
        assert record["state"] == "delivered", verb
        assert record["attempts"] == 2 and record["ambiguous_resends"] == 0, (verb, record)
        assert len(smsc_fresh.messages(to)) == 1, verb


def test_unknown_outcomes_are_resent_and_counted(fleet, smsc_fresh, smpp_producer):
    jobs = {}
    for verb in AMBIGUOUS_ROWS:
        to = number()
        smsc_fresh.script(to, verb, "ok")
        jobs[smpp_producer.send_sms(to, "Acme", f"row {verb}")] = (verb, to)
    for job, (verb, to) in jobs.items():
        record = final(smpp_producer, job)
        assert record["state"] == "delivered", (verb, record)
        # At least this row's own unknown outcome; a dropped or corrupt session ends the other
        # rows' submits in flight on it too (each then counted).
        assert record["ambiguous_resends"] >= 1, (verb, record)
        copies = len(smsc_fresh.messages(to))
        assert 1 <= copies <= 1 + record["ambiguous_resends"] - 1, (verb, record)  # this row's own was not taken
        assert record["history"][0]["status"] in ("no_answer", "connection_lost"), (verb, record)


@pytest.mark.parametrize("status", ["0x58", "0x14"])
def test_throttling_slows_the_route_and_spends_no_attempt(fleet, smsc_fresh, smpp_producer, status):
    to = number()
    smsc_fresh.script(to, status, status, "ok")
    record = final(smpp_producer, smpp_producer.send_sms(to, "Acme", "throttled twice"))
    assert record["state"] == "delivered"
    assert record["attempts"] == 1, record


@pytest.mark.parametrize(
    ("text", "data_coding", "octets"),
    [
        ("Brackets [x] {y} ~ | ^ € \\", 0, "427261636b657473201b3c781b3e201b28791b29201b3d201b40201b14201b65201b2f"),
        ("Привет", 8, "041f04400438043204350442"),
        ("hi 😀", 8, "006800690020d83dde00"),
    ],
)
def test_texts_reach_the_smsc_byte_exact(fleet, smsc_fresh, smpp_producer, text, data_coding, octets):
    to = number()
    final(smpp_producer, smpp_producer.send_sms(to, "Acme", text))
    [sent] = smsc_fresh.messages(to)
    assert (sent["data_coding"], sent["short_message"], sent["text"]) == (data_coding, octets, text)


def test_a_receipt_before_its_response_completes_the_record(fleet, smsc_fresh, smpp_producer):
    smsc_fresh.faults(receipt_before_response=True)
    jobs = [smpp_producer.send_sms(number(), "Acme", "receipt first") for _ in range(3)]
    for job in jobs:
        record = final(smpp_producer, job)
        assert record["state"] == "delivered" and record["extra_sends"] == 0, record
    # They came while no job was known for their message_id: kept, then matched.
    assert int(smpp_producer.ledger.counters().get("smpp_receipts_kept", 0)) >= 3


@pytest.mark.parametrize("refusal_s", [5.0, pytest.param(20.0, marks=pytest.mark.long)])
def test_a_refused_bind_pauses_and_sending_resumes_unaided(fleet, smsc_fresh, smpp_producer, refusal_s):
    refused_before = smsc_fresh.state()["binds_refused"]
    smsc_fresh.refuse(refusal_s)
    smsc_fresh.drop()  # the fleet must bind again, into the refusal
    jobs = [smpp_producer.send_sms(number(), "Acme", "during a refusal") for _ in range(5)]
    paused: str = wait_for(
        lambda: (smpp_producer.ledger.pause_state() or {}).get("account") or "", timeout=15, what="the account pause"
    )
    assert "unauthorized" in paused
    for job in jobs:
        record = final(smpp_producer, job, states=("delivered", "dead"), timeout=refusal_s + 30)
        assert record["state"] == "delivered"
    state = smsc_fresh.state()
    # One bind attempt per probe interval (1 s here) while refused, not a storm.
    assert 1 <= state["binds_refused"] - refused_before <= refusal_s / 1 + 3, state
    assert not (smpp_producer.ledger.pause_state() or {}).get("account")


def test_stats_and_metrics_show_the_route(fleet, smsc_fresh, smpp_producer):
    from prometheus_client import CollectorRegistry, generate_latest

    from ledger.stats import stats
    from receipts.metrics import LedgerCollector

    final(smpp_producer, smpp_producer.send_sms(number(), "Acme", "for the figures"))
    figures = wait_for(lambda: (f := stats(smpp_producer.ledger)) and f["smpp"]["binds"] == 1 and f, timeout=10)
    assert figures["transport"] == "smpp"
    assert figures["smpp"]["max_binds"] == 1 and figures["smpp"]["in_flight"] >= 0
    assert figures["smpp_receipts"] >= 1 and figures["smpp_binds"] >= 1
    registry = CollectorRegistry()
    registry.register(LedgerCollector(smpp_producer.ledger, 3600))
    text = generate_latest(registry).decode()
    for name in (
        "smpp_binds_held ",
        "smpp_binds_total ",
        "smpp_window_in_use",
        "smpp_submit_latency_seconds_bucket",
        "smpp_throttled_total",
    ):
        assert name in text, name


def test_stop_suppresses_the_next_message_and_start_lifts_it(fleet, smsc_fresh, smpp_producer, smpp_env):
    import json
    import subprocess
    import sys

    sender = number()
    ledger = smpp_producer.ledger
    smsc_fresh.inbound(f"+{sender}", "COSMOS", "  stop ")
    wait_for(lambda: sender in set(ledger.suppressed()), timeout=15, what="the opt-out recorded")
    record = final(smpp_producer, smpp_producer.send_sms(sender, "Acme", "after STOP"))
    assert (record["state"], record["dead_reason"]) == ("dead", "suppressed")
    assert smsc_fresh.messages(sender) == []
    smsc_fresh.inbound(sender, "COSMOS", "START")
    wait_for(lambda: sender not in set(ledger.suppressed()), timeout=15, what="the opt-in recorded")
    assert final(smpp_producer, smpp_producer.send_sms(sender, "Acme", "after START"))["state"] == "delivered"
    wait_for(lambda: smsc_fresh.state()["pending"] == 0, timeout=10, what="both inbound messages acknowledged")

    listed = subprocess.run(
        [sys.executable, "-m", "cli.main", "inbound", "list", "--json"],
        env=smpp_env,
        capture_output=True,
        text=True,
        check=True,
    )
    mine = [m for m in json.loads(listed.stdout) if m["from"] == sender]
    assert [m["text"] for m in mine] == ["START", "  stop "]
    assert all(m["to"] == "COSMOS" and m["received_at"].endswith("Z") for m in mine)
    kinds = [e for e in smpp_producer_events(smpp_env) if e.get("kind") == "inbound" and e["from"] == sender]
    assert len(kinds) == 2


def test_start_never_lifts_a_suppression_an_opt_out_did_not_make(fleet, smsc_fresh, smpp_producer):
    blacklisted = number()
    smpp_producer.ledger.suppress([blacklisted])
    smsc_fresh.inbound(blacklisted, "COSMOS", "STOP")
    smsc_fresh.inbound(blacklisted, "COSMOS", "START")
    wait_for(
        lambda: len([m for m in smpp_producer.ledger.inbound_page() if m["from"] == blacklisted]) == 2,
        timeout=10,
        what="both recorded",
    )
    assert blacklisted in set(smpp_producer.ledger.suppressed())


def smpp_producer_events(env: dict[str, str]) -> list[dict]:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "events", "--json", "-n", "1000"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_the_smpp_password_is_in_no_redis_key_value_or_log_line(fleet, smsc_fresh, smpp_producer, smpp_env):
    final(smpp_producer, smpp_producer.send_sms(number(), "Acme", "a message to leave traces"))
    password = smpp_env["COSMOS_SMPP_PASSWORD"]
    client = smpp_producer.redis
    seen = 0
    for key in client.scan_iter(f"{smpp_env['COSMOS_REDIS_PREFIX']}*", count=1000):
        seen += 1
        kind = client.type(key)
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [f"{k}={v}" for k, v in client.hgetall(key).items()]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = [str(entry) for entry in client.xrange(key)]
        assert password not in key and not any(password in str(v) for v in values), key
    assert seen > 10
    for worker in fleet.started:
        assert password not in worker.log()


def test_an_smsc_throttling_above_a_rate_slows_the_route_without_spending_attempts(fleet, smsc_fresh, smpp_producer):
    throttled_before = smsc_fresh.state()["throttled"]
    smsc_fresh.faults(throttle_rate=10)
    ids = smpp_producer.send_bulk([{"to": number(), "sender": "Acme", "text": f"burst {i}"} for i in range(40)])
    wait_for(lambda: all(s == "delivered" for s in smpp_producer.ledger.states(ids)), timeout=60, what="all delivered")
    smsc_fresh.faults(throttle_rate=0)
    assert smsc_fresh.state()["throttled"] > throttled_before
    assert all(r and r["attempts"] == 1 for r in (smpp_producer.get_status(i) for i in ids))
