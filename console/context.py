"""What every console request needs, built once per app: settings, users, Redis, ledger, helpers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fastapi.templating import Jinja2Templates
from redis import Redis

from archive.opening import open_archive
from archive.store import Archive
from config.keys import Keys
from config.numbers import NUMBER_IN_TEXT
from config.redis_client import redis_client
from config.settings import Settings
from console.activity import ActivityCounter
from console.auth import LoginThrottle
from console.search import Searcher
from console.tasks import Tasks
from console.users import User
from ledger.controls import Controls
from ledger.explanations import explain_reason, explain_state
from ledger.record import iso, timeline_detail
from ledger.store import Ledger

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def mask(number: str | None, user: User | None) -> str:
    """Numbers in full for operators; a viewer sees the first four and last three digits."""
    if not number:
        return ""
    if user is not None and user.can_act:
        return number
    return number[:4] + "•" * max(len(number) - 7, 0) + number[-3:] if len(number) > 7 else "•" * len(number)


def mask_numbers(text: str | None, user: User | None) -> str:
    """Free text (audit targets and details) with every phone number masked for a viewer."""
    if not text:
        return ""
    return NUMBER_IN_TEXT.sub(lambda m: mask(m.group(0), user), text)


def without_query(url: str | None) -> str:
    """A callback URL without its query string: it carries the per-message token."""
    if not url:
        return ""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass
class Console:
    settings: Settings
    users: dict[str, User]
    redis: Redis  # the field shadows the module inside the class body: annotate with the class
    ledger: Ledger
    controls: Controls
    searcher: Searcher
    tasks: Tasks
    activity: ActivityCounter
    throttle: LoginThrottle
    templates: Jinja2Templates

    @classmethod
    def build(cls, settings: Settings, users: dict[str, User], client: Redis | None = None) -> Console:
        client = client or redis_client(settings, "console")
        keys = Keys(settings.redis_prefix)
        ledger = Ledger(client, settings)
        controls = Controls(client, keys)
        templates = Jinja2Templates(directory=str(TEMPLATES))
        templates.env.globals.update(
            mask=mask,
            mask_numbers=mask_numbers,
            iso=iso,
            without_query=without_query,
            timeline_detail=timeline_detail,
            explain_reason=explain_reason,
            explain_state=explain_state,
        )
        return cls(
            settings,
            users,
            client,
            ledger,
            controls,
            Searcher(client, settings),
            Tasks(ledger, controls),
            ActivityCounter(client, keys),
            LoginThrottle(client, keys),
            templates,
        )

    @property
    def keys(self) -> Keys:
        return self.ledger.keys

    @cached_property
    def archive(self) -> Archive | None:
        """The archive (None with COSMOS_ARCHIVE_URL=none), opened on first use; ArchiveRefused says why not."""
        return open_archive(self.settings, self.ledger)
