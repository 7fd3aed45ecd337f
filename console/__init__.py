"""The operations console: a server-rendered web application about messages."""
