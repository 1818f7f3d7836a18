"""Hand-built tapes for the audit tests: trades, the aggTrades over them, holes and gap records.

``Tape.rows`` are (time, type, id, first_id, last_id, price, qty) tuples in the exchange's
terms; ``insert`` writes them, ``hole`` deletes a run of ids, ``gap`` adds a gap record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg2

from db.store.migrate import apply

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
Row = tuple[datetime, str, int, int | None, int | None, str, str]


def synthetic(trades: int, first_trade: int = 1000, first_agg: int = 500, step_ms: int = 10) -> list[Row]:
    """``trades`` trades from ``first_trade``, two per aggTrade (same time, summed quantity)."""
    rows: list[Row] = []
    for k in range(trades // 2):
        t = T0 + timedelta(milliseconds=2 * k * step_ms)
        a, b = first_trade + 2 * k, first_trade + 2 * k + 1
        qa, qb = Decimal(f"0.{k % 90 + 10:02d}000000"), Decimal(f"1.{k % 7}0000000")
        rows += [(t, "trade", a, None, None, "100.00000000", str(qa)),
                 (t, "trade", b, None, None, "100.00000000", str(qb)),
                 (t, "aggTrade", first_agg + k, a, b, "100.00000000", str(qa + qb))]
    return rows


@dataclass
class Tape:
    url: str
    symbol: str = "BTCUSDT"
    rows: list[Row] = field(default_factory=list)

    def insert(self, rows: Iterable[Row]) -> None:
        apply(self.url)
        with psycopg2.connect(self.url) as conn, conn.cursor() as cur:
            for t, typ, ident, first, last, price, qty in rows:
                cur.execute(
                    "INSERT INTO trades (time, symbol, type, id, first_id, last_id, price, qty, buyer_maker,"
                    " received_at) VALUES (%s, %s, %s, %s, %s, %s, %s::numeric, %s::numeric, false, %s)",
                    (t, self.symbol, typ, ident, first, last, price, qty, t),
                )
        conn.close()

    def sql(self, statement: str, *params: object) -> None:
        with psycopg2.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
        conn.close()

    def hole(self, stream: str, first: int, last: int) -> None:
        self.sql("DELETE FROM trades WHERE symbol = %s AND type = %s AND id BETWEEN %s AND %s",
                 self.symbol, stream, first, last)

    def gap(self, stream: str, first: int, last: int, status: str, reason: str = "stream",
            detected: datetime = T0) -> str:
        gap_id = f"{self.symbol}/{stream}/ids/{first}-{last}"
        self.sql(
            "INSERT INTO gaps (gap_id, symbol, stream, kind, first_id, last_id, missing, reason, status,"
            " detected_at) VALUES (%s, %s, %s, 'ids', %s, %s, %s, %s, %s, %s)",
            gap_id, self.symbol, stream, first, last, last - first + 1, reason, status, detected,
        )
        return gap_id
