"""The kit's pytest plugins; ``pytest -p binance_pipeline.testing.plugins`` loads all four.

- ``broker``: ``kafka_bootstrap`` (session), ``topic_factory``, ``topics``, ``consumer_group``,
  ``private_kafka``; marks every test that uses the broker ``kafka``;
- ``database``: ``database_url`` (session), ``schema_factory``, ``db_url``, ``private_pg``; marks
  ``database``;
- ``simulator``: ``sim``, a factory of exchange simulators;
- ``stages`` (loads the three above): ``ingestion``, ``start_worker``, ``pipeline`` (factories) and
  ``running_pipeline`` (simulator + ingestion + worker, already writing rows).

A project's own ``conftest.py`` may name them instead: ``pytest_plugins = ["binance_pipeline.testing.
plugins.stages"]``. Each plugin registers its markers, so ``--strict-markers`` needs no ini entry.
"""

from __future__ import annotations

pytest_plugins = [
    "binance_pipeline.testing.plugins.broker",
    "binance_pipeline.testing.plugins.database",
    "binance_pipeline.testing.plugins.simulator",
    "binance_pipeline.testing.plugins.stages",
]
