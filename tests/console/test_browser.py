"""The console in a real browser: Playwright for Python driving Debian's Chromium against real processes.

A `cosmos-sms console` process, and for sending a real Celery worker and the COSMOS sandbox. Screenshots
go to the test's tmp dir, and also to CONSOLE_SCREENSHOTS_DIR when set (how docs/screenshots/ is made).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from archive.opening import open_archive
from archive.rows import row_from_hash
from tests.console.helpers import OPERATOR, VIEWER
from tests.support.polling import wait_for
from tests.support.ports import free_port, port_open
from tests.support.processes import cosmos_cmd, spawn, stop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's Chromium: run scripts/install-browser"),
]


@dataclass
class ConsoleServer:
    url: str
    proc: object
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def console_factory(pipeline_env, users_value, tmp_path):
    """`console_factory(**env)`: a `cosmos-sms console` process with these settings besides the test's."""
    started = []

    def start(**env_overrides: str) -> ConsoleServer:
        port = free_port()
        log_path = tmp_path / f"console-{port}.log"
        env = {**pipeline_env, "COSMOS_CONSOLE_USERS": users_value, **env_overrides}
        proc = spawn(cosmos_cmd("console", "--port", str(port)), env, log_path)
        started.append(proc)
        server = ConsoleServer(f"http://127.0.0.1:{port}", proc, log_path)
        wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=30, what="the console to listen")
        assert proc.poll() is None, server.log()
        return server

    yield start
    for proc in started:
        stop(proc)


@pytest.fixture
def console_server(console_factory):
    return console_factory()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shoot(tmp_path):
    """Save a full-page screenshot under a name; copied to CONSOLE_SCREENSHOTS_DIR when set."""
    out = tmp_path / "screenshots"
    out.mkdir()

    def take(page, name: str) -> Path:
        path = out / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("CONSOLE_SCREENSHOTS_DIR"):
            shutil.copy(path, Path(os.environ["CONSOLE_SCREENSHOTS_DIR"]) / path.name)
        return path

    return take


def logged_in(browser, server: ConsoleServer, who):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of data-confirm forms
    page.goto(f"{server.url}/")
    assert "/login" in page.url
    page.fill("input[name=name]", who[0])
    page.fill("input[name=password]", who[2])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    return page


def submit(page, selector: str) -> None:
    """Click a form's button and wait for the page its post leads to (after any confirmation)."""
    with page.expect_navigation():
        page.click(selector)


def test_log_in_and_find_a_message_by_number(browser, console_server, producer, shoot):
    job_id = producer.send_sms(to="033334445566770", sender="Shop", text="Your code is 1234")
    producer.send_sms(to="033334445566771", sender="Shop", text="Another")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{console_server.url}/")
    page.fill("input[name=name]", OPERATOR[0])
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.inner_text("#error") == "Wrong name or password."
    shoot(page, "login-refused")
    page.fill("input[name=name]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[2])
    page.click("button[type=submit]")
    page.wait_for_url(f"{console_server.url}/")
    page.click("text=Messages")
    page.fill("input[name=number]", "033334445566770")
    page.click("form.search button[type=submit]")
    rows = page.locator("#results tr[data-job]")
    assert rows.count() == 1 and rows.first.get_attribute("data-job") == job_id
    shoot(page, "messages-search")
    rows.first.locator("a").click()
    assert page.inner_text("#state") == "queued" and "033334445566770" in page.inner_text("#fields")
    page.goto(f"{console_server.url}/messages?number=12")
    assert "number: must be 0 followed by 14 digits" in page.inner_text("#error")


def test_requeue_a_dead_letter_from_its_page_and_see_it_sent(browser, console_server, producer, workers, shoot):
    workers.start(concurrency=2)
    number = "033334445566772"
    page = logged_in(browser, console_server, OPERATOR)
    # The operator puts the number on the suppression list, so the worker dead-letters its message.
    page.goto(f"{console_server.url}/suppression")
    page.fill("#add-numbers", number)
    submit(page, "#add")
    job_id = producer.send_sms(to=number, sender="Shop", text="Hello")
    wait_for(
        lambda: (producer.get_status(job_id) or {}).get("state") == "dead",
        timeout=60,
        what="the suppressed message to be dead",
    )
    page.goto(f"{console_server.url}/dead")
    assert page.locator(f"#results tr[data-job='{job_id}']").count() == 1
    page.goto(f"{console_server.url}/messages/{job_id}")
    assert page.inner_text("#state") == "dead"
    shoot(page, "dead-letter")
    # Requeue is refused while the number is still suppressed (the CLI's guard)...
    submit(page, "#action-requeue")
    assert "suppression list" in page.inner_text("#error")
    # ...and works once it left the list.
    page.goto(f"{console_server.url}/suppression?q={number}")
    submit(page, "#numbers button")
    page.goto(f"{console_server.url}/messages/{job_id}")
    submit(page, "#action-requeue")

    def shows_sent():
        page.goto(f"{console_server.url}/messages/{job_id}")
        return page.inner_text("#state") in ("sent", "delivered")

    wait_for(shows_sent, timeout=60, interval=0.5, what="the requeued message to show as sent")
    assert "sent" in page.inner_text("#timeline")
    shoot(page, "requeued-and-sent")
    page.goto(f"{console_server.url}/audit")
    assert "requeue" in page.inner_text("#audit")


def test_watch_the_overview_change_while_messages_are_sent(browser, console_server, producer, workers, shoot):
    page = logged_in(browser, console_server, OPERATOR)
    before = int(page.inner_text("td[data-state='sent']"))
    workers.start(concurrency=4)
    for i in range(8):
        producer.send_sms(to=f"0333344455667{i:02d}", sender="Shop", text=f"message {i}")
    # No reload: the tiles change through server-sent events (read from the page as it stands).
    wait_for(
        lambda: int(page.inner_text("td[data-state='sent']")) >= before + 8,
        timeout=60,
        interval=0.5,
        what="the overview's sent count to rise without a reload",
    )
    wait_for(
        lambda: int(page.inner_text("#chart-sent")) >= 8,
        timeout=30,
        interval=0.5,
        what="the chart to count the sent messages",
    )
    assert page.locator("#chart rect.sent").count() > 0
    assert page.get_attribute("#tiles", "data-updated")  # set by the event-stream handler
    shoot(page, "overview")


def test_a_viewer_is_refused_an_action(browser, console_server, producer, shoot, redis_client, prefix):
    job_id = producer.send_sms(to="033334445566779", sender="Shop", text="Hello")
    page = logged_in(browser, console_server, VIEWER)
    page.goto(f"{console_server.url}/messages/{job_id}")
    assert page.locator("#action-cancel").count() == 0  # no buttons for a viewer
    assert "0333••••••••779" in page.inner_text("#fields") and "033334445566779" not in page.content()
    shoot(page, "viewer-message")
    # Posting the action anyway (with the session's valid CSRF token) is refused.
    page.evaluate(
        """(jobId) => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = `/messages/${jobId}/cancel`;
        const token = document.querySelector('input[name=csrf_token]').cloneNode();
        form.appendChild(token);
        document.body.appendChild(form);
        form.submit();
    }""",
        job_id,
    )
    page.wait_for_url(f"**/messages/{job_id}/cancel")
    assert page.inner_text("h1") == "Forbidden" and "viewers cannot act" in page.inner_text("#error")
    shoot(page, "viewer-refused")
    assert producer.get_status(job_id)["state"] == "queued"


def test_history_finds_live_and_archived_records_and_reports_draw_charts(
    browser, console_factory, producer, settings_for, tmp_path, shoot
):
    url = f"sqlite:///{tmp_path}/archive.sqlite3"
    archive = open_archive(settings_for(COSMOS_ARCHIVE_URL=url), producer.ledger)
    assert archive is not None
    number, now = "033334445566780", time.time()
    archived = [
        row_from_hash(
            producer.keys.prefix,
            f"old-{i}",
            {
                "state": ("delivered", "dead", "not_delivered")[i % 3],
                "dead_reason": "failed" if i % 3 == 1 else "",
                "to": number if i < 3 else "033334445566781",
                "from": ("Shop", "Bank")[i % 2],
                "batch": f"spring-{i % 2}",
                "price": "0.05" if i % 3 != 1 else "",
                "created_ts": str(now - 86400 * (i % 5) - 60),
            },
            now,
        )
        for i in range(12)
    ]
    archive.write(archived)
    live = producer.send_sms(to=number, sender="Shop", text="still in Redis")
    server = console_factory(COSMOS_ARCHIVE_URL=url)
    page = logged_in(browser, server, OPERATOR)
    page.click("text=History")
    page.fill("#history-search input[name=to]", number)
    page.click("#history-search button[type=submit]")
    rows = page.locator("#history tr[data-job]")
    assert [rows.nth(i).get_attribute("data-job") for i in range(rows.count())] == [live, "old-0", "old-1", "old-2"]
    shoot(page, "history-search")

    page.click("text=Reports")
    assert "12 messages" in page.inner_text("#totals")
    for chart in ("messages-per-day", "spend-per-day", "delivery-rate", "dead-reasons", "top-batches", "top-senders"):
        assert page.locator(f"#{chart} svg rect").count() > 0, chart
    assert "spring-0" in page.inner_text("#top-batches") and "Bank" in page.inner_text("#top-senders")
    shoot(page, "reports")
