"""The database side of the pipeline, one subpackage per owner (ARCHITECTURE.md draws the layers):

- ``db.store``: schema, migrations, rollups, retention: what the worker needs;
- ``db.service``: the query service: one spec per query, the CLI, the HTTP API, OpenAPI, export;
- ``db.repair``: ``audit --repair``, which drives ingestion's executors, so it sits above both
  the stages and the query service.

The commands users know are the thin modules here: ``python -m db.query`` (the CLI with
``audit --repair``), ``db.api`` (HTTP), ``db.migrate`` and ``db.maintenance``.
"""
