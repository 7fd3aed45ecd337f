"""Delivery-status callbacks: one POST per accepted message with a callback, retried with backoff."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from yarl import URL

from sandbox.inspection import Inspection

RECEIPT_TIMEOUT_S = 10.0
"""How long one callback attempt may wait to connect, or for the receiver's next bytes, before it
counts as failed. Waiting for one of the sandbox's own connections does not count: a backlog of
receipts behind CONNECTIONS would otherwise spend its retries in the sandbox's queue (seen at
1,500 sends/s), which is not the receiver failing."""
CONNECTIONS = 100

FIRST_BACKOFF_S = 0.5
"""Wait before the first retry; each further retry waits twice as long (0.5 s, 1 s, 2 s...)."""


def receipt_body(status: str, message: dict) -> dict:
    """The spec's Delivery Status parameters; the timestamp is when the push starts (UTC)."""
    return {
        "status": status,
        "to": message["to"],
        "message_id": message["message_id"],
        "price": message["price"],
        "message_timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


class ReceiptSender:
    """Pushes receipts through one shared ClientSession; pending pushes are tasks it can cancel."""

    def __init__(self, inspection: Inspection, retries: int) -> None:
        self.inspection = inspection
        self.retries = retries
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=RECEIPT_TIMEOUT_S, sock_read=RECEIPT_TIMEOUT_S),
            connector=aiohttp.TCPConnector(limit=CONNECTIONS),
        )

    async def close(self) -> None:
        self.cancel_pending()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def cancel_pending(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def schedule(self, message: dict, status: str, delay_s: float) -> None:
        """Send `status` for `message` to its callback after `delay_s` seconds, in the background."""
        task = asyncio.get_running_loop().create_task(self._push(message, status, delay_s))
        # The set keeps a strong reference: the loop holds tasks only weakly.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, message: dict, status: str, delay_s: float) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        url = message["callback"]
        for attempt in range(1, self.retries + 2):
            body = receipt_body(status, message)
            http, error = await self._post(url, body)
            ok = http is not None and 200 <= http < 300
            self.inspection.log_receipt(
                {
                    "at": round(time.time(), 3),
                    "message_id": message["message_id"],
                    "to": message["to"],
                    "url": url,
                    "status": status,
                    "attempt": attempt,
                    "http": http,
                    "error": error,
                    "ok": ok,
                }
            )
            if ok:
                self.inspection.receipts_sent += 1
                return
            if attempt <= self.retries:
                await asyncio.sleep(FIRST_BACKOFF_S * 2 ** (attempt - 1))
        self.inspection.receipts_failed += 1

    async def _post(self, url: str, body: dict) -> tuple[int | None, str | None]:
        assert self._session is not None, "ReceiptSender.start() was not awaited"
        try:
            # yarl would re-quote the query string; encoded=True sends it byte for byte.
            async with self._session.post(URL(url, encoded=True), json=body) as response:
                await response.read()
                return response.status, None
        except asyncio.CancelledError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:200]
