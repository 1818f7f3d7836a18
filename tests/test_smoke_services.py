"""Smoke test: the real broker and the real TimescaleDB answer as the pipeline needs them."""

from __future__ import annotations

from collections.abc import Callable

import psycopg2
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def test_broker_produce_consume_with_group_and_manual_commit(
    kafka_bootstrap: str, topic_factory: Callable[..., str], consumer_group: str
) -> None:
    """Keyed idempotent produce, group consume, manual commit, and resume from the commit."""
    topic = topic_factory("smoke", partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True, "compression.type": "lz4"})
    for i in range(10):
        producer.produce(topic, key=f"k{i % 2}", value=f"v{i}".encode())
    assert producer.flush(30) == 0

    conf = {"bootstrap.servers": kafka_bootstrap, "group.id": consumer_group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000}
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    seen: list[bytes] = []
    while len(seen) < 6:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            assert msg is None or msg.error().code() == KafkaError._PARTITION_EOF
            continue
        seen.append(msg.value())
        consumer.commit(message=msg, asynchronous=False)
    committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    consumer.close()
    assert sum(max(tp.offset, 0) for tp in committed) == len(seen) == 6

    resumed = Consumer(conf)
    resumed.subscribe([topic])
    rest: list[bytes] = []
    while len(seen) + len(rest) < 10:
        msg = resumed.poll(1.0)
        if msg is not None and not msg.error():
            rest.append(msg.value())
    resumed.close()
    assert sorted(seen + rest) == sorted(f"v{i}".encode() for i in range(10))


def test_database_hypertable_write_and_read(db_url: str) -> None:
    """A hypertable is created, written and read back exactly through psycopg2."""
    conn = psycopg2.connect(db_url)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE ticks (time timestamptz NOT NULL, price numeric NOT NULL)")
        cur.execute("SELECT create_hypertable('ticks', by_range('time', INTERVAL '1 day'))")
        cur.execute("INSERT INTO ticks VALUES ('2026-01-01T00:00:00.123456Z', '87648.21000000')")
        cur.execute("SELECT time, price::text FROM ticks")
        (time, price), = cur.fetchall()
        cur.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = %s", ("ticks",)
        )
        (count,) = cur.fetchone()
    conn.close()
    assert price == "87648.21000000"
    assert time.microsecond == 123456 and time.utcoffset() is not None
    assert count == 1
