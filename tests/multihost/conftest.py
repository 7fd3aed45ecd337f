"""The multi-host bed as a fixture: six "hosts" in network namespaces, Redis with a replica and three
sentinels, the sandbox, two worker hosts and a producer host. Built once per module, always torn down.

    r1: Redis primary, sentinel      r2: Redis replica, sentinel      r3: Redis replica, sentinel, sandbox
    w1: worker                       w2: worker                       p:  producer (tests/multihost/load.py)
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import redis

from cli.worker_command import celery_worker_argv
from config.settings import Settings
from producers.producer import SmsProducer
from sandbox.control import SandboxControl
from tests.conftest import TEST_API_KEY, TEST_API_SECRET
from tests.multihost.netbed import NetBed, netns_unavailable
from tests.support.polling import wait_for
from tests.support.processes import ROOT, cosmos_cmd
from tests.support.redis_server import redis_binary
from tests.support.sentinel import MASTER_NAME, start_sentinel

REDIS_PORT = 6379
SENTINEL_PORT = 26379
SANDBOX_PORT = 8900
SANDBOX_LATENCY_MS = 300
RESTART_MARK = "multihost: worker exited, restarting"
RESTART_DELAY_S = 1
"""A supervisor's pause before restarting a worker that exited (systemd's RestartSec)."""

# Time-scaled settings: a short lease (so a dead host's jobs come back in seconds) and a quick reconciler.
FAST = {
    "COSMOS_CONNECT_TIMEOUT_S": "0.5",
    "COSMOS_READ_TIMEOUT_S": "1.0",
    "COSMOS_BURST_ATTEMPTS": "2",
    "COSMOS_REQUEUE_GRACE_S": "2",
    "COSMOS_RECONCILER_INTERVAL_S": "0.2",
    "COSMOS_MAX_ATTEMPTS": "40",
    "COSMOS_RETRY_BACKOFF_BASE_S": "0.05",
    "COSMOS_RETRY_BACKOFF_MAX_S": "0.5",
}


FIGURES: dict[str, dict] = {}
"""Each scenario's figures, printed at the end of the run (and written beside the bed's logs)."""


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("multi-host figures")
        for tag, figures in FIGURES.items():
            terminalreporter.line(f"{tag}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "multihost: network-namespace test bed (root, iproute2): failover, partitions, a host killed"
    )


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/multihost/" in str(item.fspath):
            item.add_marker(pytest.mark.multihost)


@dataclass
class Cluster:
    bed: NetBed
    env: dict[str, str]
    sandbox: SandboxControl
    redis_procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def sentinel_url(self) -> str:
        return ";".join(f"sentinel://{self.bed.hosts[h].address}:{SENTINEL_PORT}" for h in ("r1", "r2", "r3"))

    def settings(self, **overrides: str) -> Settings:
        # Any: Settings parses each setting from its string, whatever the field's type.
        values: dict[str, Any] = {
            k: v for k, v in {**self.env, **overrides}.items() if k.startswith("COSMOS_") or k == "REDIS_URL"
        }
        return Settings(_env_file=None, **values)

    def producer(self, **overrides: str) -> SmsProducer:
        return SmsProducer(self.settings(**overrides))

    # --- Redis nodes -------------------------------------------------------------------------------------
    def start_redis(self, host: str, replica_of: str | None = None):
        address = self.bed.hosts[host].address
        data = self.bed.logs / f"redis-{host}"
        data.mkdir(exist_ok=True)
        cmd = [
            redis_binary(),
            "--bind",
            address,
            "--port",
            str(REDIS_PORT),
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
            # Reached from the other namespaces; nothing outside the bed can reach it.
            "--protected-mode",
            "no",
            # The shipped HA profile's settings (deploy/redis/ha.conf).
            "--min-replicas-to-write",
            "1",
            "--min-replicas-max-lag",
            "10",
            "--repl-diskless-sync-delay",
            "0",
        ]
        if replica_of:
            cmd += ["--replicaof", self.bed.hosts[replica_of].address, str(REDIS_PORT)]
        self.redis_procs[host] = self.bed.run(host, cmd, self.env, f"redis-{host}")
        client = self.node(host)
        wait_for(lambda: _pings(client), timeout=15, what=f"redis on {host}")

    def node(self, host: str) -> redis.Redis:
        return redis.Redis(
            host=self.bed.hosts[host].address,
            port=REDIS_PORT,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=1,
        )

    def primary_host(self) -> str:
        """The host the sentinels currently name as primary."""
        for name in ("r1", "r2", "r3"):
            try:
                # (host, port), or None when the sentinel knows no primary: the unpacking's TypeError below.
                address, _ = cast(
                    tuple[str, int],
                    redis.Redis(
                        host=self.bed.hosts[name].address,
                        port=SENTINEL_PORT,
                        socket_timeout=1,
                        socket_connect_timeout=1,
                        decode_responses=True,
                    ).sentinel_get_master_addr_by_name(MASTER_NAME),
                )
                return next(h.name for h in self.bed.hosts.values() if h.address == address)
            except (redis.RedisError, TypeError, StopIteration):
                continue
        raise AssertionError("no sentinel names a primary")

    def replicas_in_sync(self, primary: str, count: int) -> bool:
        try:
            return self.node(primary).wait(count, 200) >= count
        except redis.RedisError:
            return False

    # --- workers -------------------------------------------------------------------------------------------
    def start_worker(self, host: str) -> None:
        """A worker under a supervisor that restarts it, as systemd or compose's restart policy would:
        kombu 5.7 can exit the worker on a failover (AttributeError in restore_unacked, see docs/scaling.md)."""
        celery = shlex.join(celery_worker_argv(f"{host}@%h", 8, "INFO", None))
        cmd = ["sh", "-c", f"while :; do {celery}; echo {RESTART_MARK}; sleep {RESTART_DELAY_S}; done"]
        self.workers[host] = self.bed.run(host, cmd, self.env, f"worker-{host}")
        wait_for(
            lambda: "ready" in self.worker_log(host) or self.workers[host].poll() is not None,
            timeout=60,
            what=f"worker on {host} to be ready",
        )
        assert self.workers[host].poll() is None, self.worker_log(host)[-3000:]

    def worker_log(self, host: str) -> str:
        return (self.bed.logs / f"worker-{host}.log").read_text(errors="replace")

    def worker_restarts(self) -> int:
        return sum(self.worker_log(host).count(RESTART_MARK) for host in self.workers)

    def run_load(self, seconds: float, rate: float, tag: str, **overrides: str):
        out = self.bed.logs / f"load-{tag}.txt"
        cmd = [sys.executable, "-m", "tests.multihost.load", str(out), str(seconds), str(rate), tag]
        return self.bed.run("p", cmd, {**self.env, **overrides}, f"load-{tag}"), out


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    logs = tmp_path_factory.mktemp("multihost")
    bed = NetBed(subnet=os.getpid() % 250 + 1, logs=logs).open()
    # A SIGTERMed test run still tears the bed down (pytest runs finalizers on SystemExit).
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        for name, index in (("r1", 1), ("r2", 2), ("r3", 3), ("w1", 11), ("w2", 12), ("p", 21)):
            bed.add_host(name, index)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_") and k != "REDIS_URL"}
        env.update(
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            COSMOS_LOG_FORMAT="json",
            COSMOS_API_KEY=TEST_API_KEY,
            COSMOS_API_SECRET=TEST_API_SECRET,
            COSMOS_REDIS_PREFIX=f"mh{os.getpid()}",
            COSMOS_REDIS_SENTINEL_MASTER=MASTER_NAME,
            COSMOS_REDIS_MIN_REPLICAS="1",
            **FAST,
        )
        sandbox_url = f"http://{bed.hosts['r3'].address}:{SANDBOX_PORT}"
        cluster = Cluster(bed, env, SandboxControl(sandbox_url))
        cluster.env["REDIS_URL"] = cluster.sentinel_url
        cluster.env["COSMOS_API_URL"] = cluster.sandbox.api_url
        cluster.start_redis("r1")
        # Two replicas: with min-replicas-to-write 1 and only one, the promoted replica would refuse every
        # write until the dead primary returns (and kombu treats NOREPLICAS as fatal: workers exit).
        cluster.start_redis("r2", replica_of="r1")
        cluster.start_redis("r3", replica_of="r1")
        wait_for(lambda: cluster.replicas_in_sync("r1", 2), timeout=20, what="both replicas to sync")
        for name in ("r1", "r2", "r3"):
            host = bed.hosts[name]
            sentinel = start_sentinel(
                logs / f"sentinel-{name}",
                SENTINEL_PORT,
                bed.hosts["r1"].address,
                REDIS_PORT,
                quorum=2,
                bind=host.address,
                prefix=tuple(host.exec_prefix()),
            )
            bed.procs.append(sentinel.proc)
        # 300 ms per send: jobs are in flight (leased, HTTP under way) when a host fails.
        bed.run(
            "r3",
            cosmos_cmd(
                "sandbox",
                "--host",
                bed.hosts["r3"].address,
                "--port",
                str(SANDBOX_PORT),
                "--latency-ms",
                str(SANDBOX_LATENCY_MS),
            ),
            env,
            "sandbox",
        )
        wait_for(cluster.sandbox.answers, timeout=30, what="the sandbox on r3")
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        started = time.monotonic()
        yield cluster
        print(f"\n[multihost] bed up for {time.monotonic() - started:.0f} s; logs in {logs}")
    finally:
        bed.close()
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)
