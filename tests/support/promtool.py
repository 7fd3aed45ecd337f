"""promtool for the tests, without a Prometheus server: Debian's package, unpacked into .cache/promtool."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.processes import ROOT

CACHE = ROOT / ".cache" / "promtool"
BINARY = CACHE / "usr" / "bin" / "promtool"


def ensure_promtool() -> Path:
    """The cached promtool; on a clean checkout `apt-get update`, `apt-get download prometheus` and
    `dpkg-deb -x` put it there first (nothing is installed, no server started)."""
    if BINARY.exists():
        return BINARY
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError("promtool is missing and this machine has no apt-get/dpkg-deb to fetch it")
    CACHE.mkdir(parents=True, exist_ok=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]  # the package lists are root's; the download is not
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, capture_output=True, timeout=300)
    subprocess.run(
        ["apt-get", "download", "-qq", "prometheus"], cwd=CACHE, check=True, capture_output=True, timeout=300
    )
    [package] = sorted(CACHE.glob("prometheus_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(package), str(CACHE)], check=True, timeout=120)
    package.unlink()
    return BINARY


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ensure_promtool()), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
