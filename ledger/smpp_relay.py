"""Submits handed to the process that holds a bind, through Redis.

The fleet holds at most COSMOS_SMPP_MAX_BINDS binds, often fewer than it has worker processes (and
`cosmos-sms worker` runs each lane in processes of its own). A process without a bind hands its
submit to a holder: it pushes the request on the slot's list and waits for the answer on a list of
its own. A request still on the list when the wait ends is withdrawn (certainly not sent); one the
holder took and never answered may have gone out (ambiguous).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, cast

import redis

from config.keys import Keys

REQUEST_TTL_S = 300
"""A relay list or answer nobody reads expires: a vanished process leaves nothing behind for long."""
BLOCK_S = 2.0
"""One blocking read's wait; below every Redis client's socket timeout."""


class SmppRelay:
    def __init__(self, client: redis.Redis, keys: Keys, max_binds: int):
        self.redis = client
        self.keys = keys
        self.max_binds = max_binds

    def held_slots(self) -> list[int]:
        """Bind slots held now (their lease key exists)."""
        pipe = self.redis.pipeline(transaction=False)
        for slot in range(self.max_binds):
            pipe.exists(self.keys.smpp_bind(slot))
        return [slot for slot, held in enumerate(pipe.execute()) if held]

    # --- the process without a bind -------------------------------------------------------------
    def request(self, slot: int, message: dict[str, Any], wait_s: float) -> dict[str, Any] | None:
        """Hand `message` to the holder of `slot`; its answer, or None if it was withdrawn unsent.

        Raises TimeoutError when the holder took it and did not answer in time (it may have gone out).
        """
        rid = uuid.uuid4().hex
        payload = json.dumps({**message, "rid": rid})
        queue, answer_key = self.keys.smpp_relay(slot), self.keys.smpp_relay_answer(rid)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(queue, payload)
        pipe.expire(queue, REQUEST_TTL_S)
        pipe.execute()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            got = cast("list[str] | None", self.redis.blpop([answer_key], timeout=min(BLOCK_S, wait_s)))
            if got:
                answer: dict[str, Any] = json.loads(got[1])
                return answer
        if self.redis.lrem(queue, 1, payload):
            return None  # never taken: certainly not sent
        raise TimeoutError("the bind holder took the submit and did not answer in time")

    # --- the holder ---------------------------------------------------------------------------
    def take(self, slot: int) -> dict[str, Any] | None:
        """The next request for `slot`, waiting up to BLOCK_S."""
        got = cast("list[str] | None", self.redis.blpop([self.keys.smpp_relay(slot)], timeout=BLOCK_S))
        return json.loads(got[1]) if got else None

    def answer(self, rid: str, outcome: dict[str, Any]) -> None:
        key = self.keys.smpp_relay_answer(rid)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(outcome))
        pipe.expire(key, REQUEST_TTL_S)
        pipe.execute()
