"""The README's five-minute tour as a newcomer runs it: its `.env` block, then `honcho start` with the
Procfile, in a fresh directory; only the ports differ (free ones, so the test runs beside others)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.polling import wait_for
from tests.support.ports import free_port, port_open
from tests.support.processes import ROOT

pytestmark = pytest.mark.chaos  # a whole stack of processes on a busy machine: run alone

BIN = Path(sys.executable).parent


def tour_env_block() -> str:
    """The tour's first shell block, from writing the passwords on (the venv already exists here)."""
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## A five-minute tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", tour, re.DOTALL)
    assert block is not None
    lines = block.group(1).splitlines()
    assert lines[0].startswith("python3 -m venv .venv") and "honcho" in lines[0]
    return "\n".join(lines[1:]) + "\n"


def test_the_tour_runs_everything_with_honcho_and_one_message_is_delivered(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    env.update(PATH=f"{BIN}:{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    made = subprocess.run(["bash", "-e"], input=tour_env_block(), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    console_password = re.search(r"console: admin / (\S+)", made.stdout).group(1)  # type: ignore[union-attr]

    ports = {name: free_port() for name in ("redis", "WEBHOOK_PORT", "CONSOLE_PORT", "SANDBOX_PORT", "FLOWER_PORT")}
    dotenv = (tmp_path / ".env").read_text()
    dotenv = dotenv.replace(":6379/", f":{ports['redis']}/").replace(":8900/", f":{ports['SANDBOX_PORT']}/")
    dotenv = dotenv.replace(":8000/", f":{ports['WEBHOOK_PORT']}/")
    dotenv += "".join(f"{name}={port}\n" for name, port in ports.items() if name != "redis")
    (tmp_path / ".env").write_text(dotenv)
    shutil.copy(ROOT / "Procfile", tmp_path / "Procfile")

    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "start"],
        cwd=tmp_path,
        env=env,
        stdout=open(tmp_path / "honcho.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def log() -> str:
        return (tmp_path / "honcho.log").read_text(errors="replace")[-4000:]

    try:
        for name, port in ports.items():
            wait_for(
                lambda p=port: port_open(p) or honcho.poll() is not None,  # type: ignore[misc]
                timeout=90,
                interval=0.2,
                what=f"{name} to listen",
            )
            assert honcho.poll() is None, log()
        console = f"http://127.0.0.1:{ports['CONSOLE_PORT']}"
        session = requests.Session()
        form = session.get(f"{console}/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        login = {"csrf_token": csrf, "next": "/", "name": "admin", "password": console_password}
        assert session.post(f"{console}/login", data=login, timeout=30).url.rstrip("/") == console  # the overview
        flower = requests.get(f"http://127.0.0.1:{ports['FLOWER_PORT']}/", timeout=10)
        assert flower.status_code == 401  # basic auth, with the tour's password
        flower_password = re.search(r"flower: admin / (\S+)", made.stdout).group(1)  # type: ignore[union-attr]
        assert requests.get(flower.url, auth=("admin", flower_password), timeout=10).status_code == 200

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            command = [str(BIN / "cosmos-sms"), *args]
            return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

        sent = cli("send", "--to", "033334445566770", "--from", "Tour", "--text", "Hello world!")
        assert sent.returncode == 0, sent.stderr
        job_id = sent.stdout.strip()
        wait_for(
            lambda: json.loads(cli("status", job_id).stdout or "{}").get("state") == "delivered",
            timeout=90,
            interval=0.5,
            what="the tour's message to be delivered",
        )
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGINT)
        try:
            honcho.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            raise AssertionError(f"honcho did not stop on SIGINT:\n{log()}") from None
    still = [name for name, port in ports.items() if port_open(port)]
    assert still == [], f"still listening after SIGINT: {still}\n{log()}"
