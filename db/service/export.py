"""Export a range of the tape in Binance's daily-archive CSV format, or as Parquet.

Used by ``python -m db.query export`` and ``GET /v1/export`` (db/service/export_http.py); its spec is
in db/service/specs.py.

Rules:
  1. CSV has exactly the columns and value formats of Binance's spot daily archive of the
     stream, no header: trades ``id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch``;
     aggTrades ``a,price,qty,f,l,time,isBuyerMaker,isBestMatch``; prices and quantities are the
     stored decimal text; quoteQty is price x qty truncated to 8 decimals; booleans
     ``True``/``False``; time in microseconds from 2025-01-01, milliseconds before (as Binance).
  2. Parquet keeps prices and quantities as their exact decimal text (strings: no float, no
     fixed scale imposed) and ``time`` as ``timestamp[us, tz=UTC]``.
  3. Memory is bounded whatever the range: CSV is produced by the server (``COPY ... TO STDOUT``
     streamed in chunks); Parquet reads a server-side (named) cursor ``BATCH_ROWS`` at a time
     and writes one row group per batch.
  4. Rows are those of one symbol and stream with trade time in ``[start, end)``, in id order,
     as in Binance's files: an index-only walk of the unique key (symbol, type, id, time) per
     chunk, merged across chunks; no sort of the whole range.
  5. Parameterised SQL only; the session is read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Protocol, Self

import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from pydantic import BeforeValidator, Field, model_validator

from db.service.errors import InvalidArgument, classify
from db.service.params import TRADE_TYPES, Doc, Params, parse_time, parse_type

FORMATS = ("csv", "parquet")


def _format(text: str) -> str:
    if not text:
        return "csv"
    if text not in FORMATS:
        raise InvalidArgument("format", f"{text!r}: expected csv or parquet")
    return text

BATCH_ROWS = 50_000
OnRows = Callable[[int], None]


class Writable(Protocol):
    """Where CSV chunks go: a binary file, stdout's buffer, or the HTTP queue writer."""

    def write(self, data: bytes, /) -> int: ...

_TIME_US = "(extract(epoch FROM time) * 1000000)::bigint"
_CSV_TIME = f"CASE WHEN time < '2025-01-01T00:00:00Z' THEN {_TIME_US} / 1000 ELSE {_TIME_US} END"
_FLAGS = (
    "CASE WHEN buyer_maker THEN 'True' ELSE 'False' END, "
    "CASE WHEN best_match IS FALSE THEN 'False' ELSE 'True' END"
)
_COLUMNS = {
    "trade": f"id, price::text, qty::text, trunc(price * qty, 8)::text, {_CSV_TIME}, {_FLAGS}",
    "aggTrade": f"id, price::text, qty::text, first_id, last_id, {_CSV_TIME}, {_FLAGS}",
}
_WHERE = "FROM trades WHERE symbol = %(symbol)s AND type = %(type)s AND time >= %(start)s AND time < %(end)s"
_PARQUET_COLUMNS = {
    "trade": f"id, price::text, qty::text, trunc(price * qty, 8)::text, {_TIME_US}, buyer_maker, best_match",
    "aggTrade": f"id, price::text, qty::text, first_id, last_id, {_TIME_US}, buyer_maker, best_match",
}
PARQUET_NAMES = {
    "trade": ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    "aggTrade": ("agg_id", "price", "qty", "first_trade_id", "last_trade_id", "time", "is_buyer_maker",
                 "is_best_match"),
}


@dataclass(frozen=True)
class ExportRequest:
    symbol: str
    stream: str
    start: datetime
    end: datetime
    fmt: str

    def params(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "type": self.stream, "start": self.start, "end": self.end}

    def file_name(self) -> str:
        kind = "trades" if self.stream == "trade" else "aggTrades"
        span = f"{self.start:%Y-%m-%dT%H%M%S}_{self.end:%Y-%m-%dT%H%M%S}"
        return f"{self.symbol}-{kind}-{span}.{self.fmt}"


class ExportParams(Params):
    """The export's parameters (its spec is db.service.specs'): symbol, stream, [from, to), format."""

    required: ClassVar[tuple[str, ...]] = ("symbol", "stream", "from", "to")
    stream: Annotated[str, BeforeValidator(lambda t: parse_type(t, "stream")),
                      Doc({"type": "string", "enum": list(TRADE_TYPES)}),
                      Field(description="trade or aggTrade")]
    from_: Annotated[datetime, BeforeValidator(lambda t: parse_time(t, "from")),
                     Doc({"type": "string"}, {"metavar": "FROM"}),
                     Field(alias="from", description="Interval start (inclusive), ISO 8601 or epoch ms")]
    to: Annotated[datetime, BeforeValidator(lambda t: parse_time(t, "to")), Doc({"type": "string"}),
                  Field(description="Interval end (exclusive), ISO 8601 or epoch ms")]
    format: Annotated[str, BeforeValidator(_format), Doc({"type": "string", "enum": list(FORMATS)}),
                      Field(description="csv (default) or parquet")] = "csv"

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.to <= self.from_:
            raise InvalidArgument("to", "must be after from")
        return self

    def request(self) -> ExportRequest:
        return ExportRequest(self.symbol, self.stream, self.from_, self.to, self.format)


def parse_export(raw: Mapping[str, str]) -> ExportRequest:
    """Validate export parameters (symbol, stream, from, to, format); InvalidArgument names one."""
    return ExportParams.parse("export", raw, datetime.now(UTC), 0).request()


class _CountingWriter:
    """Passes COPY chunks to ``out`` and reports rows (newlines) as they go."""

    def __init__(self, out: Writable, on_rows: OnRows) -> None:
        self.out, self.on_rows, self.rows = out, on_rows, 0

    def write(self, chunk: bytes | memoryview) -> int:
        data = bytes(chunk)
        count = data.count(b"\n")
        self.rows += count
        self.out.write(data)
        self.on_rows(count)
        return len(data)


CSV_SQL = {stream: f"SELECT {columns} {_WHERE} ORDER BY id" for stream, columns in _COLUMNS.items()}


def write_csv(
    conn: psycopg2.extensions.connection, req: ExportRequest, out: Writable, on_rows: OnRows
) -> int:
    """Rule 1 and 3: COPY the rows as archive CSV into ``out``; returns the row count."""
    query = sql.SQL(CSV_SQL[req.stream])  # constants only (Rule 5)
    writer = _CountingWriter(out, on_rows)
    try:
        with conn.cursor() as cur:
            inner = cur.mogrify(query, req.params()).decode()
            cur.copy_expert(f"COPY ({inner}) TO STDOUT WITH (FORMAT csv)", writer, size=1 << 20)
    except psycopg2.Error as exc:
        raise classify(exc) from exc
    return writer.rows


def write_parquet(
    conn: psycopg2.extensions.connection, req: ExportRequest, out: Any, on_rows: OnRows
) -> int:
    """Rule 2 and 3: stream the rows into a Parquet file ``out`` (path or file object)."""
    import pyarrow as pa  # optional dependency (extra "parquet")
    import pyarrow.parquet as pq

    schema = parquet_schema(req.stream)
    query = sql.SQL(f"SELECT {_PARQUET_COLUMNS[req.stream]} {_WHERE} ORDER BY id")
    total, autocommit = 0, conn.autocommit
    conn.autocommit = False  # a server-side cursor lives in a transaction
    try:
        with pq.ParquetWriter(out, schema) as writer, conn.cursor(name="export") as cur:
            cur.itersize = BATCH_ROWS
            cur.execute(query, req.params())
            while rows := cur.fetchmany(BATCH_ROWS):
                writer.write_table(_batch(pa, schema, rows))
                total += len(rows)
                on_rows(len(rows))
    except psycopg2.Error as exc:
        raise classify(exc) from exc
    finally:
        if not conn.closed:
            conn.rollback()
            conn.autocommit = autocommit
    return total


def parquet_schema(stream: str) -> Any:
    import pyarrow as pa

    names = PARQUET_NAMES[stream]
    types = [pa.int64(), pa.string(), pa.string()]
    types += [pa.string()] if stream == "trade" else [pa.int64(), pa.int64()]
    types += [pa.timestamp("us", tz="UTC"), pa.bool_(), pa.bool_()]
    return pa.schema(list(zip(names, types, strict=True)))


def _batch(pa: Any, schema: Any, rows: list[tuple[Any, ...]]) -> Any:
    columns = list(zip(*rows, strict=True))
    arrays = []
    for index, field in enumerate(schema):
        if field.name == "time":
            arrays.append(pa.array(columns[index], pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(columns[index], field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
