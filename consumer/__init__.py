"""Stage 2: Kafka -> TimescaleDB (``python -m consumer.worker``).

Pure core: ``decode`` (message -> row), ``batcher`` (per-partition buffers, size/time caps).
I/O shell: ``sink`` (PostgreSQL writes), ``checkpoint`` (write, dead-letter, then commit),
``worker`` (the Kafka poll loop, health server, signals).
"""
