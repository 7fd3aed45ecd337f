"""Alembic's environment for the archive: migrations run on the connection `archive.schema` hands over."""

from alembic import context

from archive.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
