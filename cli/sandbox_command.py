"""`cosmos-sms sandbox`: run the COSMOS API simulator."""

from __future__ import annotations

import click

from sandbox import config as defaults
from sandbox.faults import ACCEPT_NOT_DELIVERED, MAGIC_NUMBERS, FaultSettings


def _env(name: str) -> str:
    return f"COSMOS_SANDBOX_{name}"


def _check(setting: str):
    """A click callback that applies FaultSettings' own range check to one option."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        try:
            FaultSettings().update({setting: value})
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        return value

    return callback


_MAGIC_HELP = "; ".join(
    f"{number} {'ok, receipt not_delivered' if verb == ACCEPT_NOT_DELIVERED else verb}"
    for number, verb in MAGIC_NUMBERS.items()
)


@click.command(epilog=f"Magic recipients: {_MAGIC_HELP}. Control endpoints under /_sandbox/; see docs/sandbox.md.")
@click.option(
    "--host", default=defaults.DEFAULT_HOST, show_default=True, envvar=_env("HOST"), help="Address to listen on."
)
@click.option(
    "--port",
    default=defaults.DEFAULT_PORT,
    show_default=True,
    envvar=_env("PORT"),
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option(
    "--api-key",
    default=defaults.DEFAULT_API_KEY,
    show_default=True,
    envvar=[_env("API_KEY"), "COSMOS_API_KEY"],
    help="The only api_key accepted (env COSMOS_SANDBOX_API_KEY, else COSMOS_API_KEY).",
)
@click.option(
    "--api-secret",
    default=defaults.DEFAULT_API_SECRET,
    show_default=True,
    envvar=[_env("API_SECRET"), "COSMOS_API_SECRET"],
    help="The only api_secret accepted (env COSMOS_SANDBOX_API_SECRET, else COSMOS_API_SECRET). Never logged.",
)
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    envvar=_env("LATENCY_MS"),
    callback=_check("latency_ms"),
    help="Fixed delay before every answer, in milliseconds.",
)
@click.option(
    "--jitter-ms",
    default=0.0,
    show_default=True,
    envvar=_env("JITTER_MS"),
    callback=_check("jitter_ms"),
    help="Extra uniform random delay from 0 to this many milliseconds, added to --latency-ms.",
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    envvar=_env("FAULT_RATE"),
    callback=_check("fault_rate"),
    help="Probability (0-1) of a random transient fault, split evenly over 500 internal_error, "
    "408 timeout and a dropped connection; none of them accepts the message.",
)
@click.option(
    "--price",
    default=0.0,
    show_default=True,
    envvar=_env("PRICE"),
    callback=_check("price"),
    help="Price in US dollars answered for each accepted message and in its receipt.",
)
@click.option(
    "--receipt-delay-s",
    default=0.2,
    show_default=True,
    envvar=_env("RECEIPT_DELAY_S"),
    callback=_check("receipt_delay_s"),
    help="Seconds between accepting a message and pushing its delivery status to its callback.",
)
@click.option(
    "--not-delivered-share",
    default=0.0,
    show_default=True,
    envvar=_env("NOT_DELIVERED_SHARE"),
    callback=_check("not_delivered_share"),
    help="Fraction (0-1) of receipts that say not_delivered instead of delivered.",
)
@click.option(
    "--throughput-limit",
    default=0,
    show_default=True,
    envvar=_env("THROUGHPUT_LIMIT"),
    callback=_check("throughput_limit"),
    help="Requests per second per account over a sliding 1 s window; more answer 400 spam "
    "(permanent for clients: those messages are dead-lettered). 0 turns it off.",
)
@click.option(
    "--receipt-retries",
    default=defaults.DEFAULT_RECEIPT_RETRIES,
    show_default=True,
    envvar=_env("RECEIPT_RETRIES"),
    type=click.IntRange(0, 20),
    help="Retries of a failed callback (connection error or non-2xx), waiting 0.5 s, 1 s, 2 s...",
)
@click.option(
    "--unauthorized-s",
    default=0.0,
    show_default=True,
    envvar=_env("UNAUTHORIZED_S"),
    type=click.FloatRange(0, 86_400),
    help="Answer every SMS request 401 unauthorized for this many seconds after start, as COSMOS does "
    "for wrong credentials (POST /_sandbox/unauthorized sets it at run time).",
)
@click.option(
    "--smpp-port",
    default=None,
    envvar=_env("SMPP_PORT"),
    type=click.IntRange(0, 65535),
    help="Also serve an SMPP 3.4 SMSC on this port (system_id = --api-key, password = --api-secret), "
    "with the same magic numbers; control endpoints under /_sandbox/smpp/ (docs/smpp.md).",
)
@click.option(
    "--seed",
    default=None,
    type=int,
    envvar=_env("SEED"),
    help="Seed of the random faults, jitter and not_delivered picks, for repeatable runs.",
)
def sandbox(
    host,
    port,
    api_key,
    api_secret,
    latency_ms,
    jitter_ms,
    fault_rate,
    price,
    receipt_delay_s,
    not_delivered_share,
    throughput_limit,
    receipt_retries,
    unauthorized_s,
    smpp_port,
    seed,
) -> None:
    """Run the COSMOS API simulator: POST {COSMOS_API_URL}/sms/ with COSMOS_API_URL=http://HOST:PORT/v1.0.

    It validates requests with the project's message rules, answers every COSMOS status with its
    HTTP code, pushes delivery receipts to callbacks, and injects faults on demand (magic
    numbers, scripted outcomes, outages, random faults, latency, a throughput limit).
    """
    # Imported here so `cosmos-sms --help` does not pay for aiohttp.
    from sandbox.config import SandboxConfig
    from sandbox.server import run

    faults = FaultSettings(
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        fault_rate=fault_rate,
        price=price,
        receipt_delay_s=receipt_delay_s,
        not_delivered_share=not_delivered_share,
        throughput_limit=throughput_limit,
    )
    run(
        SandboxConfig(
            host=host,
            port=port,
            api_key=api_key,
            api_secret=api_secret,
            receipt_retries=receipt_retries,
            seed=seed,
            faults=faults,
            unauthorized_s=unauthorized_s,
            smpp_port=smpp_port,
        )
    )
