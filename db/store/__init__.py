"""The store: what the worker needs of the database, and nothing that reads the tape for users.

- ``migrate`` and ``migrations/``: the schema, versioned (``python -m db.migrate``);
- ``rollups``: the SQL that keeps the 1-minute and 1-hour rollups equal to the raw rows (run by the
  worker's sink inside its write transaction);
- ``retention``: RETENTION_DAYS (``python -m db.maintenance``; the worker runs it too);
- ``errors``: ``MigrationError``.

Layer rule (import-linter, pyproject.toml): the store imports only ``binance_pipeline.common``; the
stages and the query service sit above it.
"""
