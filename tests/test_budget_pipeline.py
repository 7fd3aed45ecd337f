"""Budgets end to end: real Celery workers, the sandbox over HTTP, the ledger's clock moved to the next budget day.

The bound a cap holds to: sending stops within what was in flight when the cap was reached, i.e. the leases
taken before it. These workers send one bulk chunk at a time (chunk size = send threads = CHUNK), so at
most CHUNK - 1 acceptances land after the one that reached the cap; the tests allow CHUNK.
"""

from __future__ import annotations

from click.testing import CliRunner

from cli import main
from ledger.budget import Budget
from ledger.controls import Controls
from ledger.stats import stats
from producers.events import EventFeed
from producers.producer import SmsProducer
from receipts.metrics import LedgerCollector
from tests.support.polling import wait_for

TO = "033334445566770"
DAY = 86400
CHUNK = 5
ONE_CHUNK_AT_A_TIME = {"COSMOS_BULK_CHUNK_SIZE": str(CHUNK), "COSMOS_BATCH_THREADS": str(CHUNK)}


def campaign(producer: SmsProducer, n: int, text: str) -> list[str]:
    messages = [{"to": TO, "sender": "F", "text": f"{text} {i}", "expires_in": 3 * DAY} for i in range(n)]
    return producer.send_bulk(messages)


def paused_and_settled(producer: SmsProducer) -> dict:
    """The figures once the budget pause holds and no lease taken before it is still sending."""

    def settled():
        figures = stats(producer.ledger)
        paused = figures["paused"] and figures["paused"]["kind"] == "budget"
        return paused and figures["states"]["sending"] == 0 and figures

    return wait_for(settled, timeout=30, what="the budget pause with nothing in flight")


def cli(env: dict, *args: str) -> str:
    """The command line in this process (its start-up costs seconds a subprocess)."""
    done = CliRunner().invoke(main.cli, list(args), env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.output


def test_a_message_cap_stops_sending_dead_letters_nothing_and_resumes_next_day_or_by_resume_budget(
    settings_for, pipeline_env, workers, sandbox
):
    cap = 7  # not a multiple of CHUNK: the cap is reached with a chunk's other members in flight
    env = {
        **pipeline_env,
        **ONE_CHUNK_AT_A_TIME,
        "COSMOS_DAILY_MESSAGE_CAP": str(cap),
        "COSMOS_BUDGET_TZ": "Asia/Tokyo",
    }
    sandbox.set_faults(latency_ms=30)
    producer = SmsProducer(settings_for(**{k: v for k, v in env.items() if k.startswith("COSMOS_")}))
    workers.start(concurrency=2, **env)
    job_ids = campaign(producer, 30, "capped")

    # Day 1: the cap stops sending within what was in flight; the rest wait, none dead-lettered.
    figures = paused_and_settled(producer)
    first_day = figures["spend_today"]["messages"]
    assert cap <= first_day <= cap + CHUNK
    assert sandbox.stats()["accepted"] == first_day
    assert figures["paused"]["reason"] == "daily_message_cap"
    assert figures["states"]["retrying"] + figures["states"]["queued"] == 30 - first_day
    assert figures["dead_letter_size"] == 0 and figures["states"]["expired"] == 0

    # A plain resume lifts only an operator's pause.
    assert "not paused" in cli(env, "resume")
    assert stats(producer.ledger)["paused"]["kind"] == "budget"
    assert sandbox.stats()["accepted"] == first_day
    workers.stop_all()

    # Day 2 (the ledger's clock moved past midnight in Tokyo): sending resumes by itself, counting afresh.
    ledger = producer.ledger
    offset = Budget(ledger.settings).days(ledger.now()).end - ledger.now() + 1
    tomorrow_env = {**env, "COSMOS_TEST_CLOCK_OFFSET_S": str(offset)}
    tomorrow = SmsProducer(settings_for(**{k: v for k, v in tomorrow_env.items() if k.startswith("COSMOS_")}))
    workers.start(concurrency=2, **tomorrow_env)
    figures = paused_and_settled(tomorrow)
    second_day = figures["spend_today"]["messages"]
    assert cap <= second_day <= cap + CHUNK
    assert sandbox.stats()["accepted"] == first_day + second_day  # day 1 sent nothing after its pause
    assert stats(producer.ledger)["spend_today"]["messages"] == first_day

    # `resume --budget` lifts the pause for the rest of day 2, audited: everything goes, once each.
    assert "resumed sending for the rest of the budget day (daily_message_cap reached)" in cli(
        tomorrow_env, "resume", "--budget"
    )
    wait_for(
        lambda: stats(tomorrow.ledger)["states"]["sent"] == 30, timeout=30, what="every message sent after the resume"
    )
    figures = stats(tomorrow.ledger)
    assert figures["paused"] is None and figures["dead_letter_size"] == 0
    assert figures["spend_today"]["messages"] == 30 - first_day
    assert sandbox.stats()["accepted"] == 30
    assert all(sandbox.count(TO, f"capped {i}") == 1 for i in range(30))
    assert {(producer.get_status(job_id) or {}).get("state") for job_id in job_ids} == {"sent"}
    entries, _ = Controls(ledger.redis, ledger.keys).audit_page()
    assert [(e.action, e.target) for e in entries if e.action == "resume_budget"] == [("resume_budget", "budget")]


def test_a_price_budget_pauses_at_the_sandboxs_price_and_warns_once_at_80_and_100_percent(
    settings_for, pipeline_env, worker_processes, sandbox
):
    env = {**pipeline_env, **ONE_CHUNK_AT_A_TIME, "COSMOS_DAILY_BUDGET": "0.10"}
    sandbox.set_faults(price=0.02, latency_ms=30)  # 5 messages reach the budget
    producer = SmsProducer(settings_for(**{k: v for k, v in env.items() if k.startswith("COSMOS_")}))
    worker = worker_processes.start(concurrency=2, **env)  # a process of its own: its log is read below
    campaign(producer, 15, "priced")

    figures = paused_and_settled(producer)
    accepted = sandbox.stats()["accepted"]
    assert 5 <= accepted <= 5 + CHUNK
    assert figures["spend_today"]["messages"] == accepted
    assert figures["spend_today"]["price"] == round(0.02 * accepted, 6)
    assert figures["paused"]["reason"] == "daily_budget" and figures["paused"]["cap"] == 0.1
    assert figures["dead_letter_size"] == 0

    warnings = EventFeed(producer.settings, client=producer.ledger.redis, kinds={"budget"}).latest(100)
    assert [(w.detail["level"], w.reason, w.detail["cap"]) for w in warnings] == [
        ("80", "daily_budget", "0.100000"),
        ("100", "daily_budget", "0.100000"),
    ]
    wait_for(lambda: "daily cap reached" in worker.log(), timeout=10, what="the 100 % log line")
    log = worker.log()
    assert log.count("budget at 80 % of the daily cap") == 1 and log.count("daily cap reached") == 1

    scraped = {m.name: m.samples[0].value for m in LedgerCollector(producer.ledger, 3600).collect() if m.samples}
    assert scraped["cosmos_spend_today_usd"] == round(0.02 * accepted, 6)
    assert scraped["cosmos_daily_budget_usd"] == 0.1 and scraped["cosmos_daily_message_cap"] == 0
