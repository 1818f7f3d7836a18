"""The store: the schema, what the worker needs of the database, and the one audit of a range.

- ``migrate`` and ``migrations/``: the schema, versioned (``python -m db.migrate``);
- ``rollups``: the SQL that keeps the 1-minute and 1-hour rollups equal to the raw rows (run by the
  worker's sink inside its write transaction);
- ``retention``: RETENTION_DAYS (``python -m db.maintenance``; the worker runs it too);
- ``audit`` and ``audit_scan``: the audit of a range (id continuity, trade/aggTrade consistency), its
  rules and its SQL; read only. The query service (``db.query audit``) and the history import's
  closing verdict both judge a range with it;
- ``errors``: ``MigrationError``.

Layer rule (import-linter, pyproject.toml): the store imports only ``binance_pipeline.common``; the
stages and the query service sit above it.
"""
