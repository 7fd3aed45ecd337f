"""Sandbox process fixture (filled by the sandbox work)."""
