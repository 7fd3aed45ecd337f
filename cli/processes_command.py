"""`cosmos-sms processes`: the worker processes seen, from their heartbeats."""

from __future__ import annotations

import click

from cli.common import echo_json, one_line_errors, settings_or_exit
from config.keys import Keys
from config.redis_client import redis_client
from ledger.processes import LOST_AFTER_BEATS, Heartbeats


@click.command()
@click.option("--json", "as_json", is_flag=True, help="An array of objects: host, pid, lanes, last_seen, state, ...")
@one_line_errors
def processes(as_json) -> None:
    """The worker processes seen in the last 10 minutes, alive or lost.

    A process is lost when it missed 3 heartbeats (COSMOS_HEARTBEAT_S each); one that stopped
    cleanly is not listed.
    """
    settings = settings_or_exit()
    seen = Heartbeats(redis_client(settings, "cli"), Keys(settings.redis_prefix)).seen()
    if as_json:
        echo_json(seen)
        return
    if not seen:
        click.echo(f"no worker process seen in the last 10 minutes (a process beats every {settings.heartbeat_s:g} s)")
        return
    click.echo(f"{'host:pid':<32} {'state':<6} {'lanes':<12} {'threads':<8} {'last seen':<12} started")
    for p in seen:
        threads = f"{p.get('threads_busy', '?')}/{p.get('threads_total', '?')}"
        click.echo(
            f"{p['host'] + ':' + str(p['pid']):<32} {p['state']:<6} {','.join(p.get('lanes', [])):<12} {threads:<8} "
            f"{p['last_seen_s_ago']:>6.1f} s ago {p.get('started_at') or ''}"
        )
    lost = sum(p["state"] == "lost" for p in seen)
    if lost:
        click.echo(f"{lost} lost: no heartbeat for {LOST_AFTER_BEATS} intervals (killed, or cut off from Redis)")
