"""The events feed: consumer groups that resume after a crash, a bounded stream, and no silent gap.

Events are written here with the shape the ledger's Lua `move` writes (`job`, `state`, `prev`,
`ts`, and `reason`/`batch` when they apply), with `XADD MAXLEN ~` as it does.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from config.keys import Keys
from producers.events import Event, EventFeed, EventReader, EventsMissed
from tests.support.polling import wait_for
from tests.support.processes import ROOT, stop

STATES = ("queued", "sending", "sent", "delivered")


def write_events(client, prefix: str, jobs: int, maxlen: int = 1_000_000, batch: str | None = None) -> list[str]:
    """Append the four state changes of `jobs` jobs, as the ledger does; returns the entry ids."""
    stream = Keys(prefix).events
    ids: list[str] = []
    for start in range(0, jobs, 250):
        pipe = client.pipeline(transaction=False)
        for _ in range(start, min(jobs, start + 250)):
            job = uuid.uuid4().hex
            prev = ""
            for state in STATES:
                fields = {"job": job, "state": state, "prev": prev}
                if batch:
                    fields["batch"] = batch
                pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)
                prev = state
        ids.extend(pipe.execute())
    return ids


def test_reader_gets_every_event_once_acknowledged(redis_client, prefix, settings):
    ids = write_events(redis_client, prefix, 30)
    reader = EventReader("app", "app-1", settings, client=redis_client, start="0")
    got = []
    while batch := reader.read(count=50):
        got.extend(batch)
        reader.ack(batch)
    assert [e.id for e in got] == ids
    assert got[0].state == "queued" and got[0].prev is None and got[1].prev == "queued"
    assert reader.pending_count() == 0
    assert reader.read(count=10) == []


def test_same_consumer_rereads_its_unacknowledged_events_after_a_restart(redis_client, prefix, settings):
    ids = write_events(redis_client, prefix, 5)
    first = EventReader("app", "app-1", settings, client=redis_client, start="0")
    unacked = first.read(count=7)
    # A new process with the same consumer name: the 7 come back first, then the rest.
    again = EventReader("app", "app-1", settings, client=redis_client, start="0")
    assert [e.id for e in again.read(count=100)] == [e.id for e in unacked]
    rest = again.read(count=100)
    assert [e.id for e in unacked + rest] == ids


def test_new_group_at_dollar_sees_only_new_events(redis_client, prefix, settings):
    write_events(redis_client, prefix, 3)
    reader = EventReader("late", "l-1", settings, client=redis_client)
    reader.ensure_group()
    new = write_events(redis_client, prefix, 1)
    assert [e.id for e in reader.read(count=100)] == new


def test_a_blocking_read_returns_when_an_event_arrives(redis_client, prefix, settings):
    reader = EventReader("app", "b-1", settings, client=redis_client)
    reader.ensure_group()
    assert reader.read(count=10, block_ms=50) == []
    write_events(redis_client, prefix, 1)
    assert len(reader.read(count=10, block_ms=1000)) == 4


def test_a_blocking_read_longer_than_the_clients_reply_timeout_waits_in_slices(redis_server, prefix, settings):
    client = redis.Redis(port=redis_server.port, decode_responses=True, socket_timeout=1)
    reader = EventReader("app", "slow-1", settings, client=client)
    reader.ensure_group()
    started = time.monotonic()
    assert reader.read(count=10, block_ms=1800) == []  # no TimeoutError from the 1 s socket timeout
    assert time.monotonic() - started >= 1.7


def test_bad_arguments_name_the_field(redis_client, settings):
    with pytest.raises(ValueError, match="^group:"):
        EventReader("has space", "c", settings, client=redis_client)
    with pytest.raises(ValueError, match="^start:"):
        EventReader("g", "c", settings, client=redis_client, start="1-0")
    reader = EventReader("g", "c", settings, client=redis_client)
    with pytest.raises(ValueError, match="^count:"):
        reader.read(count=5000)
    with pytest.raises(ValueError, match="^block_ms:"):
        reader.read(block_ms=-1)


def test_a_group_behind_the_bound_gets_an_explicit_error_then_resumes(redis_client, prefix, settings):
    write_events(redis_client, prefix, 10)  # 40 events
    reader = EventReader("slow", "s-1", settings, client=redis_client, start="0")
    seen = reader.read(count=10)
    reader.ack(seen)
    # The stream moves on past its bound before the group reads again.
    write_events(redis_client, prefix, 1000, maxlen=500)
    stream = Keys(prefix).events
    length = redis_client.xlen(stream)
    added = redis_client.xinfo_stream(stream)["entries-added"]
    with pytest.raises(EventsMissed) as caught:
        reader.read(count=10)
    first_id = redis_client.xrange(stream, count=1)[0][0]
    assert caught.value.count == added - 10 - length
    assert caught.value.first_available_id == first_id
    assert "skip_missed()" in str(caught.value)
    with pytest.raises(EventsMissed):  # said again until the application decides
        reader.read(count=10)

    assert reader.skip_missed() is True
    got = []
    while batch := reader.read(count=500):
        got.extend(batch)
        reader.ack(batch)
    assert got[0].id == first_id and len(got) == length  # every event still kept, none twice
    assert reader.skip_missed() is False


def test_pending_events_trimmed_before_they_were_handled_are_reported(redis_client, prefix, settings):
    write_events(redis_client, prefix, 5)
    crashed = EventReader("app", "crashed", settings, client=redis_client, start="0")
    lost = crashed.read(count=8)  # delivered, never acknowledged
    write_events(redis_client, prefix, 1000, maxlen=500)
    restarted = EventReader("app", "crashed", settings, client=redis_client, start="0")
    with pytest.raises(EventsMissed) as caught:
        restarted.read(count=100)
    assert caught.value.count == len(lost)


def test_stream_stays_within_its_bound_under_load(redis_client, prefix, settings):
    bound = 5000
    write_events(redis_client, prefix, 25_000, maxlen=bound)  # 100,000 events
    stream = Keys(prefix).events
    assert redis_client.xinfo_stream(stream)["entries-added"] == 100_000
    # `MAXLEN ~` trims whole nodes: at most one node (stream-node-max-entries, 100) over.
    assert bound <= redis_client.xlen(stream) <= bound + 100


def test_feed_pages_and_latest(redis_client, prefix, settings):
    ids = write_events(redis_client, prefix, 5, batch="b1")
    feed = EventFeed(settings, client=redis_client)
    assert [e.id for e in feed.latest(3)] == ids[-3:]
    page1 = feed.after("0-0", count=8)
    page2 = feed.after(page1[-1].id, count=100)
    assert [e.id for e in page1 + page2] == ids
    assert page1[0].to_dict()["batch_id"] == "b1" and page1[0].to_dict()["at"].endswith("Z")
    info = feed.info()
    assert info["length"] == 20 and info["last_id"] == ids[-1]


CONSUMER = """
import os, sys, time
from config.settings import load_settings
from producers.events import EventReader
out = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
reader = EventReader("billing", sys.argv[2], load_settings(), start="0", claim_idle_ms=1000)
idle_since = time.monotonic()
while time.monotonic() - idle_since < 3 or reader.pending_count():
    batch = reader.read(count=20, block_ms=200)
    if batch:
        idle_since = time.monotonic()
    for event in batch:
        os.write(out, (event.id + "\\n").encode())  # handled: written before the ack
    time.sleep(0.002)  # the application's work
    reader.ack(batch)
"""


def _consumer(base_env, out: Path, name: str, tmp_path: Path) -> subprocess.Popen:
    log = open(tmp_path / f"consumer-{name}.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(out), name],
        env=base_env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _handled(out: Path) -> list[str]:
    return out.read_text().split() if out.exists() else []


def test_a_consumer_killed_mid_stream_resumes_with_no_event_lost(redis_client, prefix, base_env, tmp_path):
    ids = write_events(redis_client, prefix, 2500)  # 10,000 events
    out = tmp_path / "handled.txt"
    first = _consumer(base_env, out, "c1", tmp_path)
    wait_for(lambda: len(_handled(out)) >= 1000, timeout=60, what="the consumer to handle 1,000 events")
    stop(first, signal.SIGKILL)
    killed_at = len(_handled(out))
    assert killed_at < len(ids), "the consumer finished before it could be killed"

    # Another process of the group takes over the killed one's unacknowledged events.
    second = _consumer(base_env, out, "c2", tmp_path)
    wait_for(lambda: set(_handled(out)) >= set(ids), timeout=120, what="every event to be handled")
    second.wait(30)
    assert second.returncode == 0, (tmp_path / "consumer-c2.log").read_text()
    handled = _handled(out)
    assert set(handled) == set(ids)
    # At least once: only what the killed one had in hand comes twice.
    assert len(handled) - len(ids) <= 40
    info = redis_client.xinfo_groups(Keys(prefix).events)[0]
    assert info["pending"] == 0


def test_stream_memory_per_entry(redis_client, prefix, capsys):
    """Measure (and print) what an entry costs, for 100,000 realistic entries."""
    write_events(redis_client, prefix, 25_000, batch=None)
    stream = Keys(prefix).events
    used = redis_client.memory_usage(stream, samples=0)
    per_entry = used / redis_client.xlen(stream)
    with capsys.disabled():
        print(f"\nevents stream: {redis_client.xlen(stream)} entries, {used} bytes, {per_entry:.1f} bytes/entry")
    assert per_entry < 200


def test_a_message_run_through_the_ledger_keeps_the_stream_within_its_bound(settings_for, redis_client, prefix, capsys):
    """The ledger's own scripts write the events (queued, sending, sent per message), 3x the bound.

    10,000 messages against a bound of 10,000 entries: the same trimming as 100,000 messages against
    the default bound, at a size this shared machine runs in a test (the 100,000-entry XADD run above
    covers the count)."""
    from ledger.schema import STEP
    from producers.producer import SmsProducer

    bound = 10_000
    producer = SmsProducer(settings_for(COSMOS_EVENTS_MAXLEN=str(bound)))
    ledger = producer.ledger
    messages = 10_000
    for batch in range(messages // 2_500):
        ids = producer.send_bulk(
            [{"to": "033334445566770", "sender": "F", "text": f"m {batch} {i}"} for i in range(2_500)],
            batch_id=f"campaign-{batch}",
        )
        for start in range(0, len(ids), STEP):
            step = ids[start : start + STEP]
            ledger.begin_many(step, ["w"] * len(step), count_delivery=False)
            ledger.finish_many(
                [ledger.finish_args(j, "w", "accepted", message_id=f"mid-{j}", price=0.01, http=200) for j in step]
            )
    stream = Keys(prefix).events
    info = redis_client.xinfo_stream(stream)
    assert info["entries-added"] == 3 * messages
    length = redis_client.xlen(stream)
    assert bound <= length <= bound + 100
    last = Event.from_entry(*info["last-entry"])
    assert (last.state, last.prev, last.batch_id) == ("sent", "sending", "campaign-3")
    used = redis_client.memory_usage(stream, samples=0)
    with capsys.disabled():
        print(
            f"\nledger-written events: {length} entries kept of {3 * messages}, {used} bytes, "
            f"{used / length:.1f} bytes/entry"
        )


def test_cli_shows_the_latest_events_as_text_or_json(redis_client, prefix, base_env):
    from tests.support.processes import cosmos_cmd

    ids = write_events(redis_client, prefix, 3, batch="b7")
    shown = subprocess.run(
        cosmos_cmd("events", "--json", "--count", "5"), env=base_env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert [r["id"] for r in rows] == ids[-5:] and rows[-1]["state"] == "delivered" and rows[-1]["batch_id"] == "b7"
    text = subprocess.run(
        cosmos_cmd("events", "--count", "2"), env=base_env, capture_output=True, text=True, timeout=60
    )
    assert text.returncode == 0 and "sent -> delivered" in text.stdout and "batch=b7" in text.stdout
    bad = subprocess.run(cosmos_cmd("events", "--count", "0"), env=base_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--count" in bad.stderr
