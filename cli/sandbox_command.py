"""`cosmos-sms sandbox`: run the COSMOS API simulator."""

import click


@click.command()
def sandbox() -> None:
    """Run the COSMOS API simulator (coming)."""
