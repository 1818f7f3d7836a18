"""The launcher's self-audit: the recent window of each symbol audited, its verdict in the view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from binance_launcher.selfaudit import SETTLE, SelfAudit
from binance_launcher.status import Snapshot, render
from tests.db.store.audit_tape import T0, Tape, synthetic


def test_self_audit_shows_complete_and_incomplete_symbols(db_url: str) -> None:
    """A symbol with a hole in the window is INCOMPLETE with its counts; a whole one is complete."""
    btc, eth = Tape(db_url, "BTCUSDT"), Tape(db_url, "ETHUSDT")
    btc.insert(synthetic(100))
    eth.insert(synthetic(100))
    btc.hole("trade", 1010, 1014)
    audit = SelfAudit(db_url, ("BTCUSDT", "ETHUSDT", "XRPUSDT"), interval_s=60, window_s=600)
    audit.run(T0 + SETTLE + timedelta(minutes=5))
    assert audit.verdicts == {
        "BTCUSDT": "INCOMPLETE: 1 holes, 5 ids missing (5 unexplained), 3 trade/aggTrade disagreements",
        "ETHUSDT": "complete (150 rows)",
        "XRPUSDT": "no data",
    }
    lines = render("demo", None, Snapshot(0.0), [], {}, [], audit.lines())
    assert any(line.startswith("self-audit (last 10 min") for line in lines)
    assert "  ETHUSDT      complete (150 rows)" in lines


def test_self_audit_is_off_at_interval_zero_and_says_when_the_database_is_down() -> None:
    """Interval 0 shows nothing; an unreachable database is a verdict, not a crash."""
    assert SelfAudit("postgresql://127.0.0.1:1/x", ("BTCUSDT",), 0, 600).lines() == []
    audit = SelfAudit("postgresql://127.0.0.1:1/x?connect_timeout=2", ("BTCUSDT",), 60, 600)
    audit.poll(0.0)
    assert audit.verdicts["BTCUSDT"].startswith("not checked:")
    assert datetime.now(UTC) > T0


def test_self_audit_rotates_over_a_whole_market_and_follows_the_captured_symbols(db_url: str) -> None:
    """Beyond 10 symbols, a round audits them in batches within half the interval; the view counts them."""
    Tape(db_url, "BTCUSDT").insert(synthetic(100))
    names = ["BTCUSDT"] + [f"X{n:03d}USDT" for n in range(23)]
    audit = SelfAudit(db_url, (), interval_s=8, window_s=600)
    audit.poll(0.0)
    assert audit.lines()[0].endswith("first check pending")  # nothing captured yet: nothing audited
    audit.follow(names)
    polls = 0
    while len(audit.verdicts) < len(names):
        audit.poll(float(polls))
        polls += 1
    assert polls == 4  # 24 symbols, batches of ceil(24 / 4) = 6
    audit.poll(5.0)  # the round is over and the next is not due: nothing more is audited
    head = audit.lines()[0]
    assert "24 of 24 captured symbols checked" in head, head
    assert audit.verdicts["X000USDT"] == "no data"
    audit.follow(names[1:])
    assert "BTCUSDT" not in audit.verdicts and "23 of 23 captured symbols checked" in audit.lines()[0]
