"""A private PostgreSQL for the test session, from Debian's server binaries, on a free port.

`initdb` and `postgres` refuse to run as root (and CI runs as root): then every server command runs as
the unprivileged `postgres` user through `runuser`, in a temp directory that user owns. Never the
machine's own PostgreSQL: the cluster is ours, in our directory, on our port, stopped at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.polling import wait_for
from tests.support.ports import free_port

PG_USER = "postgres"


def server_binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb, installing Debian's package if none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=False, capture_output=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    return Path(found[-1]).parent if found else None


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresServer:
    bin_dir: Path
    dir: Path
    port: int
    fsync: bool = False

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            _as_server_user([str(self.bin_dir / args[0]), *args[1:]]), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def init(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        return self

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.fsync:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options, "-w", "start")
        wait_for(self._answers, timeout=30, what=f"PostgreSQL on port {self.port}")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """A fresh database `name` (dropped first if a previous run left it); returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def start_private_postgres(fsync: bool = False) -> PostgresServer | None:
    """A new cluster in a temp directory the server user owns, started; None without server binaries."""
    bin_dir = server_binaries()
    if bin_dir is None:
        return None
    # Not under pytest's tmp dirs: their parents are private to root, and the server user must reach this one.
    directory = Path(tempfile.mkdtemp(prefix="cosmos-pg-"))
    directory.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(directory, PG_USER, PG_USER)
    return PostgresServer(bin_dir, directory, free_port(), fsync).init().start()
