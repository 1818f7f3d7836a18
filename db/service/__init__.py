"""The query service: the read side of the tape, one spec per query (db.service.specs), and the CLI,
the HTTP API and its OpenAPI document generated from those specs.

Layer rule (import-linter, pyproject.toml): it reads the store's tables and imports only the store
and ``binance_pipeline.common``; never ``ingestion``, ``consumer`` or ``db.repair``. Writing is the
worker's business, repairing is ``db.repair``'s.
"""
