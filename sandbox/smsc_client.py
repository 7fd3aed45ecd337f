"""Control of the sandbox's SMSC (`/_sandbox/smpp/`), with the HTTP sandbox's verbs where they differ.

`SmscControl` answers `script` and `unauthorized` as `SandboxControl` does, in SMPP terms, so the
demo's scenario runs unchanged over either route.
"""

from __future__ import annotations

from typing import Any

from sandbox.control import SandboxControl
from sandbox.smsc import STATUS_OF


class SmscControl(SandboxControl):
    def _smpp(self, name: str, payload: dict[str, Any] | None = None) -> Any:
        return self._post(f"smpp/{name}", payload or {}) if payload is not None else self._get(f"smpp/{name}")

    def script(self, to: str, *outcomes: str) -> dict:
        """HTTP verbs as SMPP answers: a COSMOS status as its command_status, `ok` and `drop` as they are."""
        verbs = [hex(STATUS_OF[o]) if o in STATUS_OF else o for o in outcomes]
        return self._smpp("script", {"to": to, "outcomes": verbs})

    def unauthorized(self, seconds: float) -> dict:
        """Refuse binds for `seconds`; closing the sessions makes the fleet bind again, into the refusal."""
        answer = self._smpp("refuse", {"seconds": seconds})
        if seconds > 0:
            self._smpp("drop", {})
        return answer

    def smsc_state(self) -> dict:
        return self._smpp("state")
