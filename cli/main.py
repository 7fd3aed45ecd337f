"""`cosmos-sms`: the command group; each command lives in a module of its own."""

from __future__ import annotations

import click

from cli import (
    archive_commands,
    console_command,
    control_commands,
    demo_command,
    events_commands,
    forwards_commands,
    inbound_command,
    jobs_commands,
    operator_commands,
    processes_command,
    sandbox_command,
    webhook_command,
    worker_command,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="cosmos-sms", message="cosmos-sms %(version)s")
def cli() -> None:
    """cosmos-sms: deliver SMS through the COSMOS API with Celery on Redis.

    Nothing lost, nothing sent twice. Configuration comes from COSMOS_* environment
    variables (and a .env file); see the README.
    """


for command in (
    jobs_commands.send,
    jobs_commands.status,
    jobs_commands.cancel,
    jobs_commands.stats,
    jobs_commands.batch,
    operator_commands.dead,
    operator_commands.held,
    operator_commands.suppression,
    worker_command.worker,
    webhook_command.webhook,
    sandbox_command.sandbox,
    demo_command.demo,
    events_commands.events,
    forwards_commands.forwards,
    console_command.console,
    control_commands.pause,
    control_commands.resume,
    control_commands.hash_password,
    archive_commands.history,
    archive_commands.export,
    archive_commands.spend,
    archive_commands.archive,
    archive_commands.forget,
    processes_command.processes,
    inbound_command.inbound,
):
    cli.add_command(command)
control_commands.add_suppression_command(operator_commands.suppression)
jobs_commands.batch.add_command(archive_commands.batch_list)

if __name__ == "__main__":
    cli()
