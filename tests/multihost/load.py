"""The producer host's load: `send_sms` at a steady rate, each answer written to a file as it comes.

`python -m tests.multihost.load OUT SECONDS RATE TAG` (settings from the environment) writes one line per
call: `ok <job id> <text>`, or `failed <job ids that may stand, comma-separated or -> <text>`, and
`done` at the end. Several threads, so a call that waits out a failover does not stop the others.
"""

from __future__ import annotations

import sys
import threading
import time

from config.errors import EnqueueFailed
from config.settings import load_settings
from producers.producer import SmsProducer

TO = "033334445566770"
THREADS = 4


def main(out: str, seconds: float, rate: float, tag: str) -> None:
    producer = SmsProducer(load_settings())
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))
    with open(out, "a", buffering=1) as file:

        def write(line: str) -> None:
            with lock:
                file.write(line + "\n")

        def sender() -> None:
            interval = THREADS / rate
            next_at = time.monotonic()
            while time.monotonic() < deadline:
                with lock:
                    text = f"{tag} {next(counter)}"
                try:
                    write(f"ok {producer.send_sms(TO, 'multihost', text)} {text}")
                except EnqueueFailed as exc:
                    standing = ",".join(getattr(exc, "job_ids", None) or []) or "-"
                    write(f"failed {standing} {text}")
                next_at = max(next_at + interval, time.monotonic() - interval)
                time.sleep(max(0.0, next_at - time.monotonic()))  # pacing, not synchronisation

        threads = [threading.Thread(target=sender) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        write("done")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
