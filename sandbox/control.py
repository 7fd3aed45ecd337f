"""A small synchronous client of a running sandbox's /_sandbox/ endpoints, for tests, demos and users."""

from __future__ import annotations

import requests

CONTROL_TIMEOUT_S = 10.0
"""Seconds any control call may take; the sandbox answers them at once."""


class SandboxControl:
    """Script outcomes, change faults and read counters of the sandbox at `base_url` (http://host:port)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = requests.Session()

    @property
    def api_url(self) -> str:
        """The COSMOS_API_URL that points the worker at this sandbox."""
        return f"{self.base_url}/v1.0"

    def _get(self, name: str, **params) -> dict:
        response = self._http.get(f"{self.base_url}/_sandbox/{name}", params=params, timeout=CONTROL_TIMEOUT_S)
        response.raise_for_status()
        return response.json()

    def _post(self, name: str, payload: dict) -> dict:
        response = self._http.post(f"{self.base_url}/_sandbox/{name}", json=payload, timeout=CONTROL_TIMEOUT_S)
        response.raise_for_status()
        return response.json()

    def script(self, to: str, *outcomes: str) -> dict:
        """The next requests for `to` get these outcomes, in order ("ok", "timeout", "drop", "stall 2")."""
        return self._post("script", {"to": to, "outcomes": list(outcomes)})

    def set_faults(self, **settings) -> dict:
        """Change any of latency_ms, jitter_ms, fault_rate, price, receipt_delay_s,
        not_delivered_share, throughput_limit; returns all settings."""
        return self._post("faults", settings)

    def faults(self) -> dict:
        return self._get("faults")

    def outage(self, seconds: float) -> dict:
        """Answer every SMS request 500 internal_error for `seconds` (0 ends the outage)."""
        return self._post("outage", {"seconds": seconds})

    def unauthorized(self, seconds: float) -> dict:
        """Answer every SMS request 401 unauthorized for `seconds`, as COSMOS does for wrong
        credentials (an account-level fault; 0 ends it)."""
        return self._post("unauthorized", {"seconds": seconds})

    def stats(self) -> dict:
        return self._get("stats")

    def accepted(self) -> dict:
        return self._get("accepted")

    def count(self, to: str, text: str) -> int:
        """How many times the sandbox accepted this (to, text) pair."""
        rows = self._get("accepted", to=to, text=text)["counts"]
        return sum(row["count"] for row in rows)

    def requests(self, limit: int = 100) -> list[dict]:
        return self._get("requests", limit=limit)["requests"]

    def messages(self, limit: int = 100) -> list[dict]:
        return self._get("messages", limit=limit)["messages"]

    def receipts(self, limit: int = 1000) -> list[dict]:
        return self._get("receipts", limit=limit)["receipts"]

    def reset(self) -> dict:
        return self._post("reset", {})

    def answers(self) -> bool:
        """Whether the sandbox is up and answering its control endpoints."""
        try:
            return self._http.get(f"{self.base_url}/_sandbox/faults", timeout=0.5).ok
        except requests.RequestException:
            return False

    def close(self) -> None:
        self._http.close()
