"""The archive: every outcome record in a SQL database (PostgreSQL, or a SQLite file), for months."""
