"""binance-pipeline's shared code, under one distinctive name so the wheel adds no generic top-level package.

- ``binance_pipeline.common``: settings, events, Kafka/DB configuration, health, clock, backoff, bounds.
- ``binance_pipeline.launcher``: ``make run`` / ``make demo``
  (``python -m binance_pipeline.launcher``, console script ``bp-launch``).

The stages keep their own top-level packages: ``ingestion``, ``consumer``, ``db`` (and ``exchange_sim``,
``dashboard``).
"""
