"""The installed version of cosmos-sms, as `--version`, the heartbeats and the worker's banner show it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("cosmos-sms")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
