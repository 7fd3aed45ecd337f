"""Bad logins cost argon2's CPU on worker threads: the console's other pages keep answering.

A real `cosmos-sms console` process; 8 threads post wrong passwords (each a different name, so the
throttle lets every one through) while another reads the login page. With argon2 (~0.1 s of CPU) on
the event loop, every page waits behind the hashes queued before it.
"""

from __future__ import annotations

import statistics
import threading
import time

import httpx

from tests.console.helpers import csrf_of
from tests.support.polling import wait_for
from tests.support.ports import free_port, port_open
from tests.support.processes import cosmos_cmd, spawn, stop

ATTACKERS = 8
PAGE_READS = 30


def test_bad_logins_do_not_stall_other_pages(base_env, users_value, tmp_path):
    port = free_port()
    env = {**base_env, "COSMOS_CONSOLE_USERS": users_value}
    proc = spawn(cosmos_cmd("console", "--port", str(port)), env, tmp_path / "console.log")
    done = threading.Event()
    logins = [0]

    def attack(n: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            token = csrf_of(client.get("/login"))
            while not done.is_set():
                name = f"nobody-{n}-{logins[0]}"
                client.post("/login", data={"name": name, "password": "wrong", "csrf_token": token, "next": "/"})
                logins[0] += 1

    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=30, what="the console to listen")
        attackers = [threading.Thread(target=attack, args=(n,), daemon=True) for n in range(ATTACKERS)]
        for thread in attackers:
            thread.start()
        wait_for(lambda: logins[0] >= ATTACKERS, timeout=30, what="bad logins under way")
        waits = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as reader:
            for _ in range(PAGE_READS):
                started = time.monotonic()
                assert reader.get("/login").status_code == 200
                waits.append(time.monotonic() - started)
        done.set()
        for thread in attackers:
            thread.join(30)
    finally:
        done.set()
        stop(proc)
    # On the loop, a page waits for the ~8 hashes queued before it (~0.8 s); off it, a few ms plus CPU share.
    assert statistics.median(waits) < 0.25, f"median {statistics.median(waits):.3f} s, max {max(waits):.3f} s"
