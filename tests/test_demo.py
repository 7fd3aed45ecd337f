"""The newcomer's path: `cosmos-sms demo` from nothing, and deployment files that only run real commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
import yaml

from cli.main import cli
from config.settings import Settings
from demo.scenario import MIN_COUNT
from tests.support.polling import wait_for
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
DEMO_TIMEOUT_S = 240
"""The demo itself finishes in seconds; a 2-core machine busy with other tests needs far more."""
NOT_FINAL = ("queued", "sending", "retrying", "sent", "held")


def _survivors(pgid: int, marker: str) -> list[str]:
    """Processes still alive from the demo: in its process group, or carrying the test's env marker."""
    alive = []
    try:
        if pgid > 0:
            os.killpg(pgid, 0)
            alive.append(f"process group {pgid}")
    except ProcessLookupError:
        pass
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.environ().get("DEMO_TEST_MARKER") == marker:
                alive.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return alive


def test_demo_runs_every_path_on_a_bare_machine_and_leaves_nothing_running(tmp_path):
    # Given: no Redis at REDIS_URL and no redis-server on PATH (the demo must use the valkey-server it bundles).
    bare_bin = tmp_path / "bin"
    bare_bin.mkdir()
    (bare_bin / "python").symlink_to(sys.executable)
    assert shutil.which("redis-server", path=str(bare_bin)) is None
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    env.update(PATH=str(bare_bin), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", DEMO_TEST_MARKER=marker)
    cosmos_sms = Path(sys.executable).parent / "cosmos-sms"

    # When: the demo runs 50 messages, in a process group of its own.
    proc = subprocess.Popen(
        [str(cosmos_sms), "demo", "--count", "50", "--json"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"demo did not finish in {DEMO_TIMEOUT_S} s: {err.decode(errors='replace')[-2000:]}")

    # Then: every message ended in exactly one final state, through every path.
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    summary = json.loads(out)
    states = summary["states"]
    assert summary["count"] == 50 and summary["final"] is True
    assert summary["redis"] == "private"
    assert sum(states.values()) == 50
    assert all(states[state] == 0 for state in NOT_FINAL), states
    assert states["delivered"] > 0 and states["not_delivered"] > 0
    reasons = summary["dead_reasons"]
    assert {"failed", "spam", "blacklist", "suppressed"} <= set(reasons), reasons
    assert reasons["blacklist"] == 1 and reasons["suppressed"] == 1
    assert sum(reasons.values()) == states["dead"]
    assert summary["total_price"] > 0 and summary["throughput_msg_s"] > 0
    # The account refused for a moment (401, COSMOS's wrong credentials): paused and resumed, nothing dead.
    pause = summary["account_pause"]
    assert pause["paused_seen"] is True and pause["unauthorized_answers"] >= 1, pause
    assert "unauthorized" not in reasons
    # A few messages scheduled a few seconds ahead went, none before their send_at.
    scheduled = summary["scheduled"]
    assert scheduled["count"] == scheduled["sent"] >= 1 and scheduled["early"] == 0, scheduled
    for leg in ("to_sent", "to_delivered"):
        latency = summary["latency_ms"][leg]
        assert 0 <= latency["p50"] <= latency["p95"], summary["latency_ms"]

    # And: nothing it started survives (its children run in process groups of their own).
    try:
        wait_for(
            lambda: not _survivors(proc.pid, marker),
            timeout=30,
            interval=0.1,
            what="every process the demo started to exit",
        )
    except AssertionError:
        raise AssertionError(f"survivors: {_survivors(proc.pid, marker)}") from None


# --- deployment files --------------------------------------------------------------------

assert all(field.alias for field in Settings.model_fields.values()), "every setting is read by its env alias"
# Old names still read (`exclude=True`: kept out of every dump) are no longer documented.
SETTING_NAMES = {field.alias for field in Settings.model_fields.values() if field.alias and not field.exclude}
PROJECT_COMMANDS = set(cli.commands)
VAR_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")


def _process_of(command: str | list[str]) -> tuple[list[str], list[str]]:
    """(argv of the program run, names of the variables assigned in front of it)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    assigned = []
    while argv and (assignment := ASSIGNMENT.match(argv[0])):
        argv.pop(0)
        assigned.append(assignment.group(1))
    return argv, assigned


def _assert_project_process(argv: list[str], where: str) -> None:
    assert argv, f"{where}: empty command"
    if argv[:2] == ["sh", "-c"] and len(argv) == 3:
        # A shell that prepares a file, then `exec`s the real process: judge that process.
        script = argv[2]
        assert " exec " in f" {script}", f"{where}: a shell wrapper must `exec` the process it runs: {script}"
        return _assert_project_process(shlex.split(script.rsplit("exec ", 1)[1]), where)
    program = argv[0]
    if program == "cosmos-sms":
        assert len(argv) > 1 and argv[1] in PROJECT_COMMANDS, f"{where}: {argv} is not a cosmos-sms command"
    elif program == "celery":
        assert argv[1:3] == ["-A", "worker"], f"{where}: celery must run the project's app: {argv}"
    else:
        assert program in ("redis-server", "postgres"), f"{where}: {program} is not a process of the project"


def _deployment() -> tuple[list[tuple[str, list[str]]], set[str]]:
    """Every process docker-compose.yml and Procfile run, and every variable name they use."""
    compose_text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(compose_text)
    processes, names = [], set(VAR_REFERENCE.findall(compose_text.replace("$$", "")))
    for name, service in compose["services"].items():
        argv, assigned = _process_of(service["command"])
        processes.append((f"docker-compose service {name}", argv))
        names.update(assigned)
        environment = service.get("environment") or {}
        names.update(environment if isinstance(environment, dict) else (e.split("=", 1)[0] for e in environment))
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            argv, assigned = _process_of(command)
            processes.append((f"Procfile {name}", argv))
            names.update(assigned)
            names.update(VAR_REFERENCE.findall(command))
    return processes, names


def test_deployment_files_run_only_project_commands_and_documented_variables():
    processes, names = _deployment()
    assert {where.split()[-1] for where, _ in processes} >= {"redis", "worker", "webhook", "flower", "sandbox"}
    for where, argv in processes:
        _assert_project_process(argv, where)

    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in names:
        assert re.search(rf"\b{name}\b", readme), f"{name} is used by the deployment files but not in README.md"
        # A setting has its own line; a name passed on to a tool (FLOWER_BASIC_AUTH) is explained in a comment.
        assert name in _example_names() or re.search(rf"\b{name}\b", example), (
            f"{name} is used by the deployment files but not in .env.example"
        )


def _example_names() -> set[str]:
    """Variables .env.example sets or shows commented out (`NAME=...` or `# NAME=...`)."""
    return set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))


def test_env_example_and_readme_list_every_setting():
    example_names = _example_names()
    readme = (ROOT / "README.md").read_text()
    assert SETTING_NAMES <= example_names, sorted(SETTING_NAMES - example_names)
    assert not {n for n in SETTING_NAMES if f"`{n}`" not in readme}, "settings missing from the README table"
    assert example_names <= SETTING_NAMES, sorted(example_names - SETTING_NAMES)


# --- a demo killed outright ----------------------------------------------------------------


DEMO_CHILDREN = ("cli.main sandbox", "cli.main webhook", "cli.main worker", "-m celery")
"""What a running demo has started (by command line): the sandbox, the receiver, the worker command and
its Celery processes."""


def _running_demo(proc: subprocess.Popen, marker: str, demo_err: Path, tmp_path: Path) -> bool:
    """Whether the demo runs with every child; fails the test at once, with the demo's own words, if it ended."""
    if proc.poll() is not None:
        logs = {log.name: log.read_text(errors="replace")[-1000:] for log in tmp_path.glob("cosmos-demo-*/*.log")}
        pytest.fail(
            f"the demo exited (code {proc.returncode}) before it was killed: "
            f"{demo_err.read_text(errors='replace')[-2000:]}; its children's logs: {logs}"
        )
    children = [p for p in _survivors(-1, marker) if not p.startswith(f"{proc.pid}: ")]
    return all(any(role in child for child in children) for role in DEMO_CHILDREN)


def test_a_sigkilled_demo_leaves_no_process_and_the_next_run_drops_its_keys(redis_server, tmp_path):
    from demo.leftovers import RUNS_KEY, STALE_AFTER_S, drop_stale

    client = redis_server.client()
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    # TMPDIR: the log directory a killed demo cannot remove stays under the test's tmp_path.
    env.update(REDIS_URL=redis_server.url, DEMO_TEST_MARKER=marker, TMPDIR=str(tmp_path))
    cosmos_sms = Path(sys.executable).parent / "cosmos-sms"
    demo_err = tmp_path / "demo.err"
    with demo_err.open("wb") as err:
        proc = subprocess.Popen(
            [str(cosmos_sms), "demo", "--count", "3000", "--json", "--redis-url", redis_server.url],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        # Running for real: registered on the shared Redis, and jobs written under its prefix.
        prefix = wait_for(
            lambda: (runs := client.zrange(RUNS_KEY, 0, -1)) and runs[0],
            timeout=DEMO_TIMEOUT_S,
            interval=0.1,
            what="the demo to register its prefix",
        )
        wait_for(
            lambda: any(True for _ in client.scan_iter(f"{prefix}:job:*", count=1000)),
            timeout=DEMO_TIMEOUT_S,
            interval=0.2,
            what="the demo to send",
        )
        # Every child up, and the demo itself still running: a demo that failed on its own stops its
        # children while its jobs are still in Redis, and would prove nothing about a SIGKILL.
        wait_for(
            lambda: _running_demo(proc, marker, demo_err, tmp_path),
            timeout=60,
            interval=0.2,
            what="the sandbox, receiver, worker command and its Celery processes",
        )

        proc.kill()  # SIGKILL: no handler, no finally
        proc.wait(30)

        wait_for(lambda: not _survivors(-1, marker), timeout=60, interval=0.2, what="every child to die with the demo")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert any(True for _ in client.scan_iter(f"{prefix}:*", count=1000))  # nothing ran its clean-up

    # The next demo on this Redis finds the dead run's heartbeat stale and drops its keys.
    assert drop_stale(client, now=time.time() + STALE_AFTER_S + 1) == [prefix]
    assert not any(True for _ in client.scan_iter(f"{prefix}:*", count=1000))
    assert client.zscore(RUNS_KEY, prefix) is None


def test_the_next_demo_drops_only_dead_demos_keys(redis_server):
    from demo.leftovers import RUNS_KEY, STALE_AFTER_S, Heartbeat, drop_stale

    client = redis_server.client()
    dead, alive = f"demo{uuid.uuid4().hex[:10]}", f"demo{uuid.uuid4().hex[:10]}"
    client.zadd(RUNS_KEY, {dead: time.time() - STALE_AFTER_S - 1})
    heartbeat = Heartbeat(client, alive, interval_s=0.05)
    heartbeat.start()
    try:
        for prefix in (dead, alive):
            client.set(f"{prefix}:job:1", "x")
            client.hset(f"{prefix}:celery:unacked", "m", "x")
        assert drop_stale(client) == [dead]
        assert client.keys(f"{dead}:*") == [] and client.zscore(RUNS_KEY, dead) is None
        assert len(client.keys(f"{alive}:*")) == 2
    finally:
        heartbeat.stop()
        for key in client.keys(f"{alive}:*"):
            client.delete(key)
        client.zrem(RUNS_KEY, alive)


def test_procfile_redis_listens_on_loopback_at_the_port_of_redis_url(tmp_path):
    [command] = [
        line.split(":", 1)[1] for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("redis:")
    ]
    port = free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    proc = subprocess.Popen(
        ["sh", "-c", f"exec {command}"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def listening():
            return [c for c in psutil.Process(proc.pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]

        sockets = wait_for(listening, timeout=30, interval=0.1, what="the Procfile's redis-server to listen")
        assert {(s.laddr.ip, s.laddr.port) for s in sockets} == {("127.0.0.1", port)}
    finally:
        proc.terminate()
        proc.wait(15)


# --- the demo with its console ---------------------------------------------------------------


def _login_line(proc: subprocess.Popen, out: Path) -> re.Match[str] | None:
    """The console's login line, once printed; a demo that exited instead fails at once."""
    found = re.search(r"console: (\S+)\s+user: (\S+)\s+password: (\S+)", out.read_text())
    if found is None and proc.poll() is not None:
        raise AssertionError(f"the demo exited {proc.returncode} before printing its login:\n{out.read_text()}")
    return found


def test_demo_with_console_keeps_running_prints_a_login_that_works_and_stops_on_sigterm(redis_server, tmp_path):
    import requests
    from bs4 import BeautifulSoup

    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    env.update(REDIS_URL=redis_server.url, DEMO_TEST_MARKER=marker, TMPDIR=str(tmp_path))
    out = tmp_path / "demo.out"
    with open(out, "w") as sink:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "cosmos-sms"),
                "demo",
                "--count",
                str(MIN_COUNT),
                "--console",
                "--redis-url",
                redis_server.url,
            ],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        line = wait_for(
            lambda: _login_line(proc, out),
            timeout=DEMO_TIMEOUT_S,
            interval=0.5,
            what="the demo to print its console login",
        )
        assert line is not None
        url, user, password = line.groups()
        assert "delivered" in out.read_text()  # the summary came first
        session = requests.Session()
        form = BeautifulSoup(session.get(f"{url}/login", timeout=10).text, "html.parser")
        field = form.find("input", attrs={"name": "csrf_token"})
        assert field is not None
        token = field["value"]
        answer = session.post(
            f"{url}/login", data={"csrf_token": token, "next": "/", "name": user, "password": password}, timeout=30
        )
        assert answer.status_code == 200 and "delivered" in answer.text  # the overview, logged in
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    wait_for(lambda: not _survivors(proc.pid, marker), timeout=30, what="every demo process to stop")


def test_demo_over_smpp_takes_every_path_through_a_bind(redis_server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
    env.update(REDIS_URL=redis_server.url)
    cosmos_sms = Path(sys.executable).parent / "cosmos-sms"
    done = subprocess.run(
        [
            str(cosmos_sms),
            "demo",
            "--transport",
            "smpp",
            "--redis-url",
            redis_server.url,
            "--count",
            str(MIN_COUNT + 10),
            "--json",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=DEMO_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    summary = json.loads(done.stdout)
    assert summary["final"] is True, summary
    assert summary["states"]["delivered"] > 0 and summary["states"]["not_delivered"] > 0
    assert {"failed", "spam", "blacklist", "suppressed"} <= set(summary["dead_reasons"]), summary
    # A refused bind: sending paused and resumed by itself, nothing dead for it.
    assert summary["account_pause"]["paused_seen"] is True
    assert "unauthorized" not in summary["dead_reasons"]
