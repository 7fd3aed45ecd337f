"""The on-call view in a real browser, on one stack shared by the module: a console, a receiver, the
sandbox and a pair of Celery workers beating every second. The test that kills workers runs last."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ledger.controls import Controls
from producers.producer import SmsProducer
from sandbox.control import SandboxControl
from sandbox.pytest_plugin import start_sandbox
from tests.conftest import TEST_API_KEY, TEST_API_SECRET
from tests.console.helpers import OPERATOR
from tests.console.test_browser import CHROMIUM, CHROMIUM_ARGS, ConsoleServer, logged_in, submit
from tests.support.polling import wait_for
from tests.support.ports import free_port, port_open
from tests.support.processes import cosmos_cmd, spawn, stop
from tests.support.receiver_fixture import TEST_WEBHOOK_SECRET
from tests.support.worker_fixture import WorkerPool

pytestmark = [
    pytest.mark.browser,
    pytest.mark.chaos,  # kills workers and times how soon one shows as lost: run alone
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's Chromium: run scripts/install-browser"),
]
HEARTBEAT_S = 1.0


class Stack:
    def __init__(self, env: dict[str, str], console: ConsoleServer, sandbox: SandboxControl, workers: WorkerPool):
        self.env, self.console, self.sandbox, self.workers = env, console, sandbox, workers


@pytest.fixture(scope="module")
def stack(redis_server, users_value, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oncall")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    sandbox_env = {**env, "COSMOS_API_KEY": TEST_API_KEY, "COSMOS_API_SECRET": TEST_API_SECRET}
    sandbox = start_sandbox((), sandbox_env, tmp)
    receiver_port, console_port = free_port(), free_port()
    env.update(
        REDIS_URL=redis_server.url,
        COSMOS_REDIS_PREFIX=prefix,
        COSMOS_API_KEY=TEST_API_KEY,
        COSMOS_API_SECRET=TEST_API_SECRET,
        COSMOS_API_URL=sandbox.api_url,
        COSMOS_WEBHOOK_URL=f"http://127.0.0.1:{receiver_port}/delivery-status",
        COSMOS_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET,
        COSMOS_RETRY_BACKOFF_BASE_S="0.01",
        COSMOS_RETRY_BACKOFF_MAX_S="0.05",
        COSMOS_RECONCILER_INTERVAL_S="0.1",
        COSMOS_HEARTBEAT_S=str(HEARTBEAT_S),
        COSMOS_CONSOLE_USERS=users_value,
        COSMOS_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    receiver = spawn(cosmos_cmd("webhook", "--port", str(receiver_port)), env, tmp / "receiver.log")
    console_proc = spawn(cosmos_cmd("console", "--port", str(console_port)), env, tmp / "console.log")
    console = ConsoleServer(f"http://127.0.0.1:{console_port}", console_proc, tmp / "console.log")
    workers = WorkerPool(env, tmp)
    try:
        for port in (receiver_port, console_port):
            wait_for(lambda: port_open(port), timeout=30, what=f"port {port} to listen")  # noqa: B023
        workers.start(concurrency=2)
        workers.start(concurrency=2)
        yield Stack(env, console, SandboxControl(f"http://127.0.0.1:{sandbox.port}"), workers)
    finally:
        workers.stop_all()
        for proc in (console_proc, receiver):
            stop(proc)
        sandbox.stop()
        client = redis_server.client()
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def producer_of(stack: Stack) -> SmsProducer:
    from config.settings import Settings

    values: dict[str, object] = {k: v for k, v in stack.env.items() if k.startswith("COSMOS_") or k == "REDIS_URL"}
    return SmsProducer(Settings(_env_file=None, **values))  # type: ignore[arg-type]


def timeline_events(page) -> list[str]:
    return [row.get_attribute("data-event") for row in page.locator("#timeline tbody tr[data-event]").all()]


def test_the_timeline_tells_a_retried_paused_requeued_and_delivered_message(stack, browser, tmp_path):
    producer = producer_of(stack)
    controls = Controls(producer.redis, producer.keys)
    number = "033334445566781"
    stack.sandbox.script(number, "internal_error", "spam")
    job_id = producer.send_sms(to=number, sender="Shop", text="Your code is 4711")
    wait_for(lambda: (producer.get_status(job_id) or {}).get("state") == "dead", timeout=60, what="the message dead")

    page = logged_in(browser, stack.console, OPERATOR)
    controls.pause(None, "rehearsal at 3 a.m.", "ana")
    page.goto(f"{stack.console.url}/messages/{job_id}")
    assert "Sending paused (operator, lane all): rehearsal at 3 a.m., since " in page.inner_text("#banner")
    assert "by ana" in page.inner_text("#banner")
    submit(page, "#action-requeue")

    def waits_for_the_pause() -> bool:
        return any(e["event"] == "waiting" for e in (producer.get_status(job_id) or {}).get("timeline", [])[5:])

    wait_for(waits_for_the_pause, timeout=60, what="the requeued message to wait for the pause")
    controls.resume(None, "ana")
    wait_for(
        lambda: (producer.get_status(job_id) or {}).get("state") == "delivered",
        timeout=60,
        what="the requeued message delivered",
    )
    page.goto(f"{stack.console.url}/messages/{job_id}")
    assert page.locator("#banner").count() == 0
    events = timeline_events(page)
    story = ["queued", "sending", "attempt", "attempt", "dead", "requeued", "waiting", "sending", "attempt", "sent"]
    assert events[: len(story)] == story and events[-1] == "receipt", events
    rows = page.locator("#timeline tbody tr")
    assert "status internal_error, HTTP 500" in rows.nth(2).inner_text()
    assert "status spam, HTTP 400" in rows.nth(3).inner_text()
    assert f"by console:{OPERATOR[0]}" in rows.nth(5).inner_text()
    assert "why operator_paused" in rows.nth(6).inner_text()
    assert "delivered" in rows.nth(len(events) - 1).inner_text()
    page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)


def test_processes_page_shows_both_workers_then_one_killed_as_lost_and_the_banner(stack, browser):
    page = logged_in(browser, stack.console, OPERATOR)

    def rows() -> dict[str, str]:
        page.goto(f"{stack.console.url}/processes")
        found = page.locator("#processes tr[data-process]").all()
        return {str(r.get_attribute("data-process")): str(r.get_attribute("data-state")) for r in found}

    wait_for(lambda: list(rows().values()) == ["alive", "alive"], timeout=30, what="two alive workers")
    assert "single, bulk" in page.inner_text("#processes") and "last seen" in page.inner_text("#processes")
    victim, survivor = stack.workers.started
    pid = f":{victim.proc.pid}"
    victim.kill()
    killed_at = time.monotonic()
    wait_for(
        lambda: [state for p, state in rows().items() if p.endswith(pid)] == ["lost"],
        timeout=15,
        interval=0.2,
        what="the killed worker shown lost",
    )
    shown_lost_after = time.monotonic() - killed_at
    assert shown_lost_after <= 3 * HEARTBEAT_S + 2.5  # 3 missed heartbeats, plus a page load under load
    assert sorted(rows().values()) == ["alive", "lost"]
    cli = subprocess.run(cosmos_cmd("processes", "--json"), env=stack.env, capture_output=True, text=True, timeout=60)
    assert sorted(p["state"] for p in json.loads(cli.stdout)) == ["alive", "lost"]

    survivor.kill()
    wait_for(
        lambda: (
            page.goto(f"{stack.console.url}/") is not None
            and "heard from for 3 heartbeats"
            in (page.locator("#banner").inner_text() if page.locator("#banner").count() else "")
        ),
        timeout=15,
        interval=0.3,
        what="the no-worker banner",
    )
