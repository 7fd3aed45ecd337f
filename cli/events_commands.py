"""`events`: the events stream (state changes, budget warnings), latest first page or followed as it grows."""

from __future__ import annotations

import json

import click

from cli.common import echo_json, one_line_errors, settings_or_exit
from producers.events import MAX_READ_COUNT, Event, EventFeed


def _line(event: Event) -> str:
    if event.kind != "state":
        detail = " ".join(f"{name}={value}" for name, value in event.detail.items())
        return f"{event.to_dict()['at']}  {event.kind}  {event.reason or ''} {detail}".rstrip()
    extra = " ".join(
        f"{name}={value}"
        for name, value in (("reason", event.reason), ("batch", event.batch_id), ("late", event.late or None))
        if value
    )
    return f"{event.to_dict()['at']}  {event.job_id}  {event.prev or '-':>13} -> {event.state:<13} {extra}".rstrip()


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they come (Ctrl-C stops).")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON: an array of events; with --follow, one JSON object per line."
)
@click.option(
    "--count",
    "-n",
    type=click.IntRange(1, MAX_READ_COUNT),
    default=50,
    show_default=True,
    help="How many of the latest events to show first.",
)
@one_line_errors
def events(follow, as_json, count) -> None:
    """The events stream (COSMOS_EVENTS_MAXLEN latest kept): every record's state changes (kind
    `state`) and the budget's warnings at 80 % and 100 % of a daily cap (kind `budget`)."""
    feed = EventFeed(settings_or_exit(), kinds=None)
    latest = feed.latest(count)
    if as_json and not follow:
        echo_json([event.to_dict() for event in latest])
        return
    for event in latest:
        click.echo(json.dumps(event.to_dict()) if as_json else _line(event))
    if not follow:
        return
    try:
        for event in feed.follow(after=latest[-1].id if latest else "$"):
            click.echo(json.dumps(event.to_dict()) if as_json else _line(event))
    except KeyboardInterrupt:
        pass
