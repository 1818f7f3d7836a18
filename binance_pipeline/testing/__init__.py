"""The test kit: builders, helpers and pytest plugins for this project's tests, its benchmarks and a
user's own tests of a pipeline built on it (issue #25, item 5; bytewax's ``testing`` module is the model).

What it owns:

- ``events``: valid pipeline messages (trade, aggTrade, bookTicker, gap) and raw Binance frames, pure;
- ``helpers``: waits, free ports, process stops, Prometheus sums, a topic reader and producer, SQL reads;
- ``stages``: ingestion, the worker and a whole pipeline as subprocesses, stopped by PID;
- ``services``, ``brokers``, ``databases``: where the real broker and database come from, and private
  ones a test may kill;
- ``plugins``: the pytest fixtures over all of the above (``pytest -p binance_pipeline.testing.plugins``
  loads them all, or name one plugin: ``broker``, ``database``, ``simulator``, ``stages``).

Rule 1: production code never imports the kit (import-linter's ``layers`` and ``no-kit-in-product``
        contracts); the kit sits above every stage and starts the stages by module name, never by import.
Rule 2: every process or service it starts is stopped by its own PID or handle, never by name.
"""
