"""The ledger: outcome records in Redis, their state machine (Lua), dead letters and suppression."""

from ledger.store import Ledger

__all__ = ["Ledger"]
