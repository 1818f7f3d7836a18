"""End-to-end behaviour of ``python -m ingestion.ws_consumer`` against the exchange simulator
and a real Kafka-protocol broker: counts, exactness, gaps and repair, rollovers, dead letters,
broker outages, CLI."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from binance_pipeline.common.events import HDR_REASON, HDR_RECEIVED_AT, HDR_STAGE
from binance_pipeline.testing.brokers import PrivateKafka
from binance_pipeline.testing.helpers import Record, Topics, read_all, wait_for
from binance_pipeline.testing.stages import Ingestion
from exchange_sim.testing import SimProcess
from ingestion.ws_consumer import load_settings
from tests.ingestion.helpers import assert_complete

ALL = ("trade", "aggTrade", "bookTicker")
TRADES = ("trade", "aggTrade")


def expected_events(stats: dict[str, Any], types: tuple[str, ...] = ALL) -> int:
    total = 0
    for per_type in stats["symbols"].values():
        for kind in types:
            s = per_type[kind]
            total += s["sent"] if kind == "bookTicker" else s["last_id"] - s["first_id"] + 1
    return total


def wait_published(
    ing: Ingestion, sim: SimProcess, timeout: float = 60.0, types: tuple[str, ...] = ALL
) -> Any:
    """Wait until the simulator is done and ingestion has every event acknowledged by Kafka."""
    wait_for(lambda: sim.stats()["done"], timeout, "the simulator to finish")
    stats = sim.stats()
    want = expected_events(stats, types)

    def published() -> bool:
        return sum(ing.metric("ingestion_events_published", type=t) for t in types) >= want

    wait_for(published, timeout, f"{want} events acknowledged")
    return stats


def gaps(records: list[Record]) -> dict[str, list[dict[str, Any]]]:
    """Gap records grouped by gap_id, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        v = r.json()
        out.setdefault(v["gap_id"], []).append(v)
    return out


def rest_trades(sim: SimProcess, symbol: str, from_id: int) -> list[dict[str, Any]]:
    url = f"{sim.rest_url}/api/v3/historicalTrades?symbol={symbol}&fromId={from_id}&limit=1000"
    request = urllib.request.Request(url, headers={"X-MBX-TIME-UNIT": "MICROSECOND"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return list(json.loads(answer.read()))


def test_counts_and_values_exact(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics
) -> None:
    """Every event the simulator sent is in the topics once, with the exchange's exact values."""
    s = sim("--max-trades", "1500", "--rate", "1500", "--start-delay", "1")
    ing = ingestion(s, WS_STALL_TIMEOUT_S="60")  # an idle feed after the last trade is no stall here
    wait_for(lambda: ing.get("/readyz")[0] == 200, 20, "readiness")
    stats = wait_published(ing, s)
    records = read_all(kafka_bootstrap, [topics.trades, topics.book_ticker])
    assert len(records) == expected_events(stats) > 10_000
    assert_complete(stats, records, ALL)
    trades = {(v["symbol"], v["id"]): v for v in (r.json() for r in records) if v["type"] == "trade"}
    first = stats["symbols"]["BTCUSDT"]["trade"]["first_id"]
    for row in rest_trades(s, "BTCUSDT", first):
        got = trades[("BTCUSDT", row["id"])]
        assert (got["price"], got["qty"], got["trade_time"], got["buyer_maker"]) == (
            row["price"], row["qty"], row["time"], row["isBuyerMaker"],
        )  # fmt: skip
    for r in records[:500]:
        v = r.json()
        assert r.key == v["symbol"] and r.timestamp_ms == v["received_at"] // 1000
        assert v["source"] == "stream" and v["received_at"] > 10**15
    assert ing.get("/healthz") == (200, {"alive": True})
    assert read_all(kafka_bootstrap, [topics.gaps, topics.dead_letter], idle_s=1) == []
    assert ing.metric("ingestion_connection_age_seconds") > 0
    assert ing.stop() == 0


def test_drop_and_disconnect_are_detected_and_repaired(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics
) -> None:
    """Dropped events and a forced disconnect leave no hole and no duplicate after backfill."""
    s = sim("--max-trades", "2500", "--rate", "1200", "--start-delay", "1")
    ing = ingestion(s)
    wait_for(lambda: ing.metric("ingestion_events_received") > 1000, 20, "events flowing")
    s.control("drop", {"symbol": "BTCUSDT", "share": 1.0, "count": 60})
    wait_for(lambda: sum(t["dropped"] for t in s.stats()["symbols"]["BTCUSDT"].values()) >= 60, 10, "drop")
    s.control("disconnect", {})
    stats = wait_published(ing, s, types=TRADES)
    wait_for(lambda: ing.metric("ingestion_gaps_resolved") >= ing.metric("ingestion_gaps_detected"), 30,
             "every gap resolved")  # fmt: skip
    records = read_all(kafka_bootstrap, [topics.trades, topics.gaps])
    assert_complete(stats, [r for r in records if r.topic == topics.trades], TRADES)
    by_id = gaps([r for r in records if r.topic == topics.gaps])
    id_gaps = {k: v for k, v in by_id.items() if v[0]["kind"] == "ids"}
    assert any(v[0]["symbol"] == "BTCUSDT" for v in id_gaps.values())
    for gap_id, history in id_gaps.items():
        assert [h["status"] for h in history] == ["open", "repaired"], gap_id
        assert history[0]["reason"] in ("stream", "reconnect")
    time_gaps = [v for v in by_id.values() if v[0]["kind"] == "time"]
    assert {v[0]["symbol"] for v in time_gaps} == {"BTCUSDT", "ETHUSDT", "BNBUSDT"}
    assert all([h["status"] for h in v] == ["open", "unrepairable"] for v in time_gaps)
    assert all(v[1]["end_time"] >= v[1]["start_time"] for v in time_gaps)
    rest = [r.json() for r in records if r.topic == topics.trades and r.json()["source"] == "rest"]
    assert rest and all(v["event_time"] is None for v in rest)
    assert ing.metric("ingestion_backfilled_events") > 0 and ing.metric("ingestion_reconnects") >= 1
    assert ing.stop() == 0


@pytest.mark.parametrize(
    ("sim_args", "env", "reason"),
    [
        (("--max-lifetime", "30"), {"WS_ROLLOVER_AFTER_S": "1.2"}, "age"),
        (("--max-lifetime", "2", "--shutdown-notice", "1"), {}, "serverShutdown"),
    ],
)
def test_rollovers_lose_and_duplicate_nothing(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics,
    sim_args: tuple[str, ...], env: dict[str, str], reason: str,
) -> None:  # fmt: skip
    """Repeated make-before-break rollovers keep every event exactly once, with no gap."""
    s = sim("--max-trades", "2000", "--rate", "1000", "--start-delay", "1", *sim_args)
    ing = ingestion(s, WS_STALL_TIMEOUT_S="60", **env)
    stats = wait_published(ing, s)
    assert ing.metric("ingestion_rollovers", reason=reason) >= 3
    records = read_all(kafka_bootstrap, [topics.trades, topics.book_ticker, topics.gaps])
    assert [r for r in records if r.topic == topics.gaps] == []
    assert_complete(stats, [r for r in records if r.topic != topics.gaps], ALL)
    assert ing.metric("ingestion_reconnects") == 0
    assert ing.metric("ingestion_handoffs", how="overlap") >= 1
    assert ing.stop() == 0


def test_malformed_frames_are_dead_lettered(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics
) -> None:
    """Every kind of malformed frame lands in the dead-letter topic with its reason; the rest flows."""
    kinds = ["invalid_json", "wrong_types", "missing_fields", "unknown_event", "oversized", "invalid_utf8"]
    s = sim("--max-trades", "1200", "--rate", "800", "--start-delay", "1")
    ing = ingestion(s)
    wait_for(lambda: ing.metric("ingestion_events_received") > 300, 20, "events flowing")
    for kind in kinds:
        s.control("malformed", {"kind": kind, "count": 2})
    stats = wait_published(ing, s)
    dead = read_all(kafka_bootstrap, [topics.dead_letter])
    assert len(dead) == 2 * len(kinds)
    for r in dead:
        assert r.headers[HDR_STAGE] == b"ingestion"
        assert r.headers[HDR_REASON]
        assert int(r.headers[HDR_RECEIVED_AT]) > 10**15
    reasons = [r.headers[HDR_REASON].decode() for r in dead]
    assert sum("oversized" in x for x in reasons) == 2
    assert sum(len(r.value) >= 2 * 1024 * 1024 for r in dead) == 2
    assert sum(b"\xff\xfe" in r.value for r in dead) == 2
    assert sum("invalid JSON" in x for x in reasons) >= 4  # invalid_json and invalid_utf8
    assert sum("unknown event type" in x for x in reasons) == 2
    assert ing.metric("ingestion_events_rejected") == 2 * len(kinds)
    assert_complete(stats, read_all(kafka_bootstrap, [topics.trades, topics.book_ticker]), ALL)
    assert ing.stop() == 0


def test_stalled_connection_is_replaced_and_gap_repaired(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics
) -> None:
    """A connection that goes silent is replaced; what it missed is backfilled."""
    # The feed is silent from the subscription until trading starts (--start-delay): that silence
    # must be well inside the stall timeout, or the first connection is replaced as stalled just
    # as the first trades go out on it, and the replacement's first ids become the baseline.
    s = sim("--max-trades", "2000", "--rate", "1000", "--start-delay", "0.3")
    ing = ingestion(s, WS_STALL_TIMEOUT_S="2")
    wait_for(lambda: ing.metric("ingestion_events_received") > 500, 20, "events flowing")
    s.control("stall", {"seconds": 4})
    stats = wait_published(ing, s, types=TRADES)
    wait_for(lambda: ing.metric("ingestion_gaps_resolved", status="repaired") >= 3, 30, "gaps repaired")
    assert_complete(stats, read_all(kafka_bootstrap, [topics.trades]), TRADES)
    assert "stalled" in ing.log()
    assert ing.stop() == 0


def test_stream_quiet_after_a_stall_still_reveals_its_gap(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics
) -> None:
    """The feed ends while the connection is stalled: REST's latest id reveals what it missed."""
    s = sim("--symbols", "BTCUSDT", "--max-trades", "2000", "--rate", "1500", "--start-delay", "0.3")
    ing = ingestion(s, SYMBOLS="BTCUSDT", WS_STALL_TIMEOUT_S="3", RESUME_PROBE_AFTER_S="1")
    trades = lambda: s.stats()["symbols"]["BTCUSDT"]["trade"]  # noqa: E731
    wait_for(lambda: trades()["generated"] > 1100, 20, "trading under way")
    # ~500 trades/s: the last ~1.8 s of trades never reach this connection, and the feed has
    # ended when the stall timeout replaces it, so no event on the new one reveals the gap
    s.control("stall", {"seconds": 10})
    stats = wait_published(ing, s, timeout=30, types=TRADES)
    assert ing.metric("ingestion_gaps_detected", reason="reconnect") >= 2  # trade and aggTrade
    assert_complete(stats, read_all(kafka_bootstrap, [topics.trades]), TRADES)
    assert ing.stop() == 0


def test_streams_spread_over_several_connections(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], kafka_bootstrap: str, topics: Topics
) -> None:
    """More streams than fit one connection are spread over several, still exactly once."""
    s = sim("--max-trades", "600", "--rate", "800", "--start-delay", "1", "--max-streams", "2")
    ing = ingestion(s, WS_MAX_STREAMS_PER_CONNECTION="2")
    wait_for(lambda: s.stats()["connections"] == 5, 20, "5 connections")
    stats = wait_published(ing, s)
    assert_complete(stats, read_all(kafka_bootstrap, [topics.trades, topics.book_ticker]), ALL)
    assert ing.stop() == 0


def _private_env(broker: PrivateKafka) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}


def test_broker_pause_turns_readiness_off_then_delivers_everything(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], private_kafka: PrivateKafka,
    topics: Topics,
) -> None:  # fmt: skip
    """With the broker paused readiness is 503; after it resumes every event is delivered."""
    s = sim("--max-trades", "1500", "--rate", "600", "--start-delay", "1")
    ing = ingestion(s, **_private_env(private_kafka))
    wait_for(lambda: ing.get("/readyz")[0] == 200, 20, "ready")
    private_kafka.pause()
    try:
        _, body = wait_for(lambda: (r := ing.get("/readyz"))[0] == 503 and r, 15, "readiness off")
        assert any(reason.startswith("kafka") for reason in body["reasons"])
        time.sleep(2)
    finally:
        private_kafka.resume()
    wait_for(lambda: ing.get("/readyz")[0] == 200, 30, "ready again")
    stats = wait_published(ing, s)
    records = read_all(private_kafka.bootstrap, [topics.trades, topics.book_ticker])
    assert_complete(stats, records, ALL)
    assert ing.metric("ingestion_producer_dropped") == 0
    assert ing.stop() == 0


def test_producer_overflow_is_recorded_and_repaired(
    sim: Callable[..., SimProcess], ingestion: Callable[..., Ingestion], private_kafka: PrivateKafka,
    topics: Topics,
) -> None:  # fmt: skip
    """Events refused by a full producer buffer become gaps: trades backfilled, bookTicker recorded."""
    s = sim("--max-trades", "1500", "--rate", "600", "--start-delay", "1")
    ing = ingestion(s, PRODUCER_BUFFER_MAX_MESSAGES="100", **_private_env(private_kafka))
    wait_for(lambda: ing.get("/readyz")[0] == 200, 20, "ready")
    private_kafka.pause()
    try:
        wait_for(lambda: ing.metric("ingestion_producer_dropped") > 200, 20, "overflow")
    finally:
        private_kafka.resume()
    # the refused events fall into 10-250 id gaps (one REST page each, 25 weight for trades): at
    # REST_WEIGHT_BUDGET_PER_MIN=3000 the repair can take two minutes of budget
    stats = wait_published(ing, s, timeout=200, types=TRADES)
    wait_for(lambda: ing.metric("ingestion_gaps_resolved", stream="trade") >= 1, 30, "trade gap repaired")
    records = read_all(private_kafka.bootstrap, [topics.trades, topics.book_ticker, topics.gaps])
    assert_complete(stats, [r for r in records if r.topic == topics.trades], TRADES)
    history = gaps([r for r in records if r.topic == topics.gaps])
    overflow = [v for v in history.values() if v[0]["reason"] == "producer_overflow"]
    assert {v[0]["stream"] for v in overflow} >= {"trade", "bookTicker"}
    for v in overflow:
        final = v[-1]["status"]
        assert final == ("unrepairable" if v[0]["kind"] == "time" else "repaired"), v
    books = [r for r in records if r.topic == topics.book_ticker]
    sent = sum(t["bookTicker"]["sent"] for t in stats["symbols"].values())
    assert len(books) == sent - ing.metric("ingestion_producer_dropped", type="bookTicker")
    assert ing.stop() == 0


def test_cli_help_and_bad_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--help documents the options and settings; a bad setting or option exits 2 naming it.

    The parser and the settings check run in-process (the same code as the command); the process's
    own exit 2 is tests/binance_pipeline/common/test_settings.py's."""
    with pytest.raises(SystemExit) as info:
        load_settings(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("--symbols", "--streams", "--bootstrap-servers", "WS_ROLLOVER_AFTER_S", "SYMBOLS"):
        assert word in out
    for var, value, argv, named in (("SYMBOLS", "btc usdt", [], "SYMBOLS"),
                                    ("KAFKA_BOOTSTRAP_SERVERS", "", [], "KAFKA_BOOTSTRAP_SERVERS"),
                                    (None, None, ["--streams", "depth"], "STREAM_TYPES")):
        with monkeypatch.context() as env:
            if var is not None:
                env.setenv(var, value)
            with pytest.raises(SystemExit) as info:
                load_settings(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and named in err and len(err.splitlines()) == 1, err
