"""Console users from COSMOS_CONSOLE_USERS and their argon2 password hashes.

The variable holds `name:role:hash` entries separated by spaces. An argon2 PHC string has `$`, `,`
and `=` in it, which shells, `.env` files and compose files mangle or interpolate, so the hash is
stored as the base64url (unpadded) encoding of the PHC string: only `A-Z a-z 0-9 - _`.
`cosmos-sms hash-password` prints exactly that form.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("viewer", "operator")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against for unknown names, so they cost the same time as a wrong password."""
    return _HASHER.hash("not a password of anyone")


class UsersError(ValueError):
    """COSMOS_CONSOLE_USERS is missing or malformed; the message says which entry."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    phc: str

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def encode_hash(password: str) -> str:
    """The argon2id hash of a password in the form COSMOS_CONSOLE_USERS takes."""
    return base64.urlsafe_b64encode(_HASHER.hash(password).encode()).decode().rstrip("=")


def decode_hash(encoded: str) -> str:
    """The PHC string back from its base64url form; UsersError when it is not one."""
    try:
        phc = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise UsersError("hash: not the form `cosmos-sms hash-password` prints") from None
    if not phc.startswith("$argon2"):
        raise UsersError("hash: not an argon2 hash (use `cosmos-sms hash-password`)")
    return phc


def parse_users(value: str | None) -> dict[str, User]:
    """Users by name; UsersError naming the bad entry (never showing a hash)."""
    if not value or not value.strip():
        raise UsersError("COSMOS_CONSOLE_USERS is not set: the console refuses to start without users")
    users: dict[str, User] = {}
    for position, entry in enumerate(value.split(), start=1):
        parts = entry.split(":")
        if len(parts) != 3:
            raise UsersError(f"COSMOS_CONSOLE_USERS entry {position}: must be name:role:hash")
        name, role, encoded = parts
        if not _NAME.match(name):
            raise UsersError(f"COSMOS_CONSOLE_USERS entry {position}: name must be 1-64 of A-Z a-z 0-9 _ . @ -")
        if role not in ROLES:
            raise UsersError(f"COSMOS_CONSOLE_USERS entry {position} ({name}): role must be viewer or operator")
        if name in users:
            raise UsersError(f"COSMOS_CONSOLE_USERS entry {position}: user {name} appears twice")
        try:
            phc = decode_hash(encoded)
        except UsersError as exc:
            raise UsersError(f"COSMOS_CONSOLE_USERS entry {position} ({name}): {exc}") from None
        users[name] = User(name, role, phc)
    return users


def check_password(users: dict[str, User], name: str, password: str) -> User | None:
    """The user when name and password match; None otherwise, in the same time either way."""
    user = users.get(name)
    try:
        _HASHER.verify(user.phc if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    return user
