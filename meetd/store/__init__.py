"""Tables, queries and migrations: one code path for SQLite and PostgreSQL.

Query functions are plain synchronous functions of a :class:`~meetd.store.database.Connection`;
:class:`~meetd.store.database.Database` decides where they run (see ``docs/architecture.md``).
"""

from meetd.store.database import Connection, Database, open_database

__all__ = ["Connection", "Database", "open_database"]
