"""binance-pipeline's shared code (the bottom layer), under one distinctive name so the wheel adds no
generic top-level package.

- ``binance_pipeline.common``: settings, events, Kafka/DB configuration, health, clock, backoff, bounds.

Every other package may import it; it imports none of them (an import-linter contract in pyproject.toml,
run by ``make lint``). The launcher, which starts every stage, is the top layer and lives apart in
``binance_launcher``; the stages keep their own top-level packages: ``ingestion``, ``consumer``, ``db``
(and ``exchange_sim``, ``dashboard``). ARCHITECTURE.md draws the layers.
"""
