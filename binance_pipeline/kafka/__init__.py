"""The Kafka kit: the one place every stage gets its Kafka plumbing from.

  - ``config``: client settings (bootstrap servers, security) and the durable producer's base.
  - ``codes``: what a librdkafka error code means to us, as one table.
  - ``topics``: topic specs and the one request that creates the missing ones.
  - ``topic_ids``: watching topic ids (KIP-516) without blocking.
  - ``compacted``: reading a compacted topic in full.
  - ``errors``: the kit's exception tree.

It imports nothing from the stages (ingestion, consumer) or the store (db): they import it.
"""
