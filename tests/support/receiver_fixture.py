"""Receiver process fixture (filled by the receipts work)."""
