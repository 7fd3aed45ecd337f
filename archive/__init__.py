"""The archive: every outcome record in a SQL database (PostgreSQL, or a SQLite file), for months."""

SPEND_GROUPS = ("day", "month", "batch", "sender", "route")
"""How `spend` groups the daily figures (here, so the command line offers them without loading SQLAlchemy)."""
