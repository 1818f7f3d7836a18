"""The worker validates only its own settings: another stage's bad value does not stop it, its own does."""

from __future__ import annotations

from collections.abc import Callable

from binance_pipeline.testing.events import trade
from binance_pipeline.testing.helpers import Topics, count, produce, producer, wait_for
from binance_pipeline.testing.stages import WorkerProcess

OTHER_STAGES_BAD = {  # each would stop ingestion, the query API or the launcher at start
    "BINANCE_WS_URL": "garbage", "STREAM_TYPES": "bogus", "SYMBOLS": "btc usdt",
    "TOPIC_FRONTIER": "binance.trades", "QUERY_API_KEY": "", "REPLAY_SCHEMA": "Not An Identifier",
}


def test_bad_settings_of_other_stages_do_not_stop_the_worker(
    kafka_bootstrap: str, db_url: str, topics: Topics, start_worker: Callable[..., WorkerProcess]
) -> None:
    """With ingestion's, the query API's and the launcher's settings all bad, the worker starts and stores."""
    worker = start_worker(**OTHER_STAGES_BAD)
    worker.wait_ready()
    produce(producer(kafka_bootstrap), topics.trades, [trade(i) for i in range(20)])
    wait_for(lambda: count(db_url, "trades") == 20, 30, f"20 rows stored ({worker.log_tail()})")


def test_a_bad_worker_setting_still_stops_the_worker_naming_it(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """A bad WORKER_NAME (the topic-name rule) stops the worker at start: exit 2, one line naming it."""
    worker = start_worker(WORKER_NAME="two words", BINANCE_WS_URL="garbage")
    assert worker.wait(30) == 2
    lines = worker.log_tail().splitlines()
    assert lines == ["consumer.worker: invalid setting WORKER_NAME: expected empty, or 1-249 characters of "
                     "[A-Za-z0-9._-]"], lines

