"""Logs never carry the API secret, message text or a whole phone number."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from config.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    """configure_logging sets process-wide state; later tests in this process (an xdist worker) get it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_exception_raised_while_holding_the_secret_is_logged_without_it(settings):
    stream = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": "json"}), stream=stream)
    secret = settings.api_secret.get_secret_value()

    def send(api_secret: str) -> None:
        body = {"api_secret": api_secret}
        raise RuntimeError(f"boom while posting {body}")

    try:
        send(secret)
    except RuntimeError:
        structlog.get_logger("t").exception("send failed", to="033334445566770", text="my code is 1234")

    output = stream.getvalue()
    assert "send failed" in output
    assert secret not in output
    assert "033334445566770" not in output
    assert "my code is 1234" not in output
    line = json.loads(output.strip().splitlines()[-1])
    assert line["to"].endswith("6770")
