"""`cosmos-sms`: the command group; each command lives in a module of its own."""

from __future__ import annotations

import click

from cli import sandbox_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """cosmos-sms: deliver SMS through the COSMOS API with Celery on Redis.

    Nothing lost, nothing sent twice. Configuration comes from COSMOS_* environment
    variables (and a .env file); see the README.
    """


cli.add_command(sandbox_command.sandbox)

if __name__ == "__main__":
    cli()
