"""A TCP proxy in front of a Redis that cuts a connection after a chosen command ran, before its reply.

The client sees the connection close with its command sent: the reply is lost, as when Redis restarts
or a failover demotes the primary mid-call. redis-py's own retry then sends the command again.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

REPLY_WAIT_S = 2.0
"""How long the proxy waits for the command's reply (which it swallows) before cutting."""


class ReplyCutter:
    """Forwards 127.0.0.1:`port` to the Redis at `target_port`; `cuts` times, a command whose bytes hold
    one of `markers` runs and its connection closes before the reply reaches the client."""

    def __init__(self, target_port: int, markers: tuple[bytes, ...], cuts: int):
        self.target_port, self.markers, self.cuts = target_port, markers, cuts
        self.cut = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _take_cut(self, data: bytes) -> bool:
        with self._lock:
            if self.cut < self.cuts and any(m in data for m in self.markers):
                self.cut += 1
                return True
        return False

    def _pump(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.target_port))
        try:
            while not self._stopped.is_set():
                readable, _, _ = select.select([client, server], [], [], 0.5)
                for side in readable:
                    data = side.recv(65536)
                    if not data:
                        return
                    if side is client:
                        server.sendall(data)
                        if self._take_cut(data):
                            server.settimeout(REPLY_WAIT_S)
                            server.recv(65536)  # the command ran; its reply goes nowhere
                            return
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self._stopped.set()
        self._server.close()


@contextmanager
def reply_cutter(target_port: int, markers: tuple[bytes, ...], cuts: int) -> Iterator[ReplyCutter]:
    proxy = ReplyCutter(target_port, markers, cuts)
    try:
        yield proxy
    finally:
        proxy.close()
