"""Stage 1 of binance-pipeline: Binance WebSocket streams into Kafka, complete and exact.

Entry point: ``python -m ingestion.ws_consumer``. Pure core: ``parse``, ``models``,
``sequencer``, ``limits``, ``records``; I/O shell: ``connection``, ``supervisor``,
``publisher``, ``backfill``, ``flow`` (the glue between them), ``ws_consumer`` (main).
"""
