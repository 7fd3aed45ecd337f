"""A test bed of "hosts": network namespaces on one bridge, addresses in 198.18.0.0/15 only.

Each host is a namespace with one veth into a bridge in the root namespace; the bridge has its own
address there, so the test process reaches every host (and nothing else is ever addressed). Cutting
a host off is its bridge-side veth going down. Processes run inside a host with `ip netns exec`.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import spawn

SUBNET_BASE = "198.18"
"""RFC 2544's benchmarking range: never routed anywhere, so nothing leaves the bed."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def netns_unavailable() -> str | None:
    """Why this machine cannot build the bed, or None."""
    if os.geteuid() != 0:
        return "the multi-host bed needs root (network namespaces)"
    probe = f"cmhprobe{os.getpid()}"
    try:
        ip("netns", "add", probe)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns` is unavailable here: {exc}"
    ip("netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    name: str
    netns: str
    address: str
    link: str
    """The veth end on the bridge: down cuts the host off."""

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]

    def pids(self) -> list[int]:
        out = ip("netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split()]

    def kill_everything(self) -> int:
        """SIGKILL every process in the host; returns how many there were."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)


@dataclass
class NetBed:
    """The bridge and its hosts; `close()` always removes every namespace and link it made."""

    subnet: int
    logs: Path
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"cmhbr{self.subnet}"

    @property
    def gateway(self) -> str:
        """The test process's own address on the bridge."""
        return f"{SUBNET_BASE}.{self.subnet}.254"

    def open(self) -> NetBed:
        self._remove_leftovers()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, name: str, index: int) -> Host:
        netns, link = f"cmh{self.subnet}-{name}", f"cm{self.subnet}-{name}"
        address = f"{SUBNET_BASE}.{self.subnet}.{index}"
        ip("netns", "add", netns)
        ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("link", "set", link, "master", self.bridge, "up")
        ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        host = Host(name, netns, address, link)
        self.hosts[name] = host
        return host

    def cut(self, name: str) -> None:
        ip("link", "set", self.hosts[name].link, "down")

    def restore(self, name: str) -> None:
        ip("link", "set", self.hosts[name].link, "up")

    def run(self, host: str, cmd: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen:
        proc = spawn([*self.hosts[host].exec_prefix(), *cmd], env, self.logs / f"{log_name}.log")
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill_everything()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for host in self.hosts.values():
            ip("netns", "del", host.netns, check=False)
            ip("link", "del", host.link, check=False)
        ip("link", "del", self.bridge, check=False)

    def _remove_leftovers(self) -> None:
        """A crashed earlier run with the same subnet number leaves namespaces behind: remove them."""
        for line in ip("netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(f"cmh{self.subnet}-"):
                for pid in ip("netns", "pids", name, check=False).stdout.split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                ip("netns", "del", name, check=False)
        ip("link", "del", self.bridge, check=False)
