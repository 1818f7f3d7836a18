"""Daily archive files as data.binance.vision serves them, built from the market's history (pure).

Owns the archive paths, the CSV lines, the zip and ``.CHECKSUM`` bytes, and the archive faults.
Never does I/O and never reads the clock: the routes in archive_routes.py pass ``now`` in.

Rule 1: paths are Binance's: ``/data/spot/daily/{trades|aggTrades}/SYM/SYM-{kind}-YYYY-MM-DD.zip``
        and the same with ``.CHECKSUM``; the zip holds one header-less CSV of the same base name.
Rule 2: columns and value formats are Binance's spot ones: trades ``id,price,qty,quoteQty,time,
        isBuyerMaker,isBestMatch``; aggTrades ``a,price,qty,f,l,time,isBuyerMaker,isBestMatch``;
        booleans ``True``/``False``; times in milliseconds before 2025-01-01, microseconds after.
Rule 3: a day is served only once it is complete: it was seeded (``--archive-days``), or the
        symbol's generation finished, or history already holds a trade at or after the day's end.
        A complete day's zip is built once and cached, so every download gets the same bytes.
Rule 4: the checksum file is ``<sha256 hex>  <zip name>\\n``; the faults corrupt that hex or cut
        the zip short for the next ``count`` downloads of one file, then the file is served whole.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from exchange_sim.history import IdSeries, Row
from exchange_sim.units import quote_qty

KINDS = {"trade": "trades", "aggTrade": "aggTrades"}
MICRO_FROM = date(2025, 1, 1)  # Binance's spot archives switched to microseconds on this day
DAY_US = 86_400_000_000
PATH_RE = re.compile(
    r"^/data/spot/daily/(trades|aggTrades)/([A-Z0-9]{2,20})/\2-\1-(\d{4}-\d{2}-\d{2})\.zip(\.CHECKSUM)?$"
)
FAULTS = ("corrupt_checksum", "truncate_zip")


def day_start_us(day: date) -> int:
    """Microseconds since the epoch at 00:00 UTC of ``day``."""
    return calendar.timegm(day.timetuple()) * 1_000_000


def base_name(kind: str, symbol: str, day: date) -> str:
    """``BTCUSDT-aggTrades-2026-01-01`` (``kind`` is trade or aggTrade)."""
    return f"{symbol}-{KINDS[kind]}-{day.isoformat()}"


def zip_path(kind: str, symbol: str, day: date) -> str:
    """The URL path of a day's zip (Rule 1)."""
    return f"/data/spot/daily/{KINDS[kind]}/{symbol}/{base_name(kind, symbol, day)}.zip"


def _flag(value: bool | None) -> str:
    return "False" if value is False else "True"


def csv_line(kind: str, row: Row, micro: bool) -> str:
    """One archive CSV line of a history row (Rule 2)."""
    if kind == "trade":
        tid, price, qty, quote, time_us, maker, best = row
        when = time_us if micro else time_us // 1000
        return f"{tid},{price},{qty},{quote or quote_qty(price, qty)},{when},{_flag(maker)},{_flag(best)}\n"
    a, price, qty, first, last, time_us, maker, best = row
    when = time_us if micro else time_us // 1000
    return f"{a},{price},{qty},{first},{last},{when},{_flag(maker)},{_flag(best)}\n"


def build_zip(name: str, lines: Iterable[str]) -> bytes:
    """A deflated zip holding ``name``.csv made of ``lines`` (written in chunks)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(f"{name}.csv", "w") as member:
            chunk: list[str] = []
            for line in lines:
                chunk.append(line)
                if len(chunk) >= 10_000:
                    member.write("".join(chunk).encode())
                    chunk.clear()
            member.write("".join(chunk).encode())
    return out.getvalue()


def checksum_text(zip_bytes: bytes, zip_name: str) -> bytes:
    """The ``.CHECKSUM`` file of a zip, in ``sha256sum`` format (Rule 4)."""
    return f"{hashlib.sha256(zip_bytes).hexdigest()}  {zip_name}\n".encode()


def day_rows(series: IdSeries, day: date) -> list[Row]:
    """The history rows whose trade time falls in ``day`` (UTC), in id order."""
    start = day_start_us(day)
    return series.time_range(start, start + DAY_US - 1, len(series))


@dataclass
class ArchiveFault:
    """Spoil the next ``remaining`` downloads of one file."""

    kind: str
    remaining: int


@dataclass
class Archive:
    """Complete days' zips (cached), the archive faults and download counts."""

    zips: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, ArchiveFault] = field(default_factory=dict)
    downloads: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, symbol: str, day: date, lines: Iterable[str]) -> None:
        """Store a seeded day (Rule 3: always complete)."""
        self.zips[zip_path(kind, symbol, day)] = build_zip(base_name(kind, symbol, day), lines)

    def cache_day(self, kind: str, symbol: str, day: date, series: IdSeries) -> bytes:
        """Build a complete day from history once; later calls return the same bytes."""
        path = zip_path(kind, symbol, day)
        if path not in self.zips:
            micro = day >= MICRO_FROM
            lines = (csv_line(kind, row, micro) for row in day_rows(series, day))
            self.zips[path] = build_zip(base_name(kind, symbol, day), lines)
        return self.zips[path]

    def serve(self, path: str, zip_bytes: bytes) -> bytes:
        """The bytes of ``path`` (the zip or its checksum), with any fault applied; counted."""
        self.downloads[path] += 1
        zip_name = path.removesuffix(".CHECKSUM").rsplit("/", 1)[1]
        body = checksum_text(zip_bytes, zip_name) if path.endswith(".CHECKSUM") else zip_bytes
        fault = self.faults.get(path)
        if fault is None:
            return body
        fault.remaining -= 1
        if fault.remaining <= 0:
            del self.faults[path]
        if fault.kind == "corrupt_checksum":
            return hashlib.sha256(body).hexdigest().encode() + body[64:]
        return body[: len(body) // 2]

    def set_fault(self, fault: str, kind: str, symbol: str, day: date, count: int) -> str:
        """Arm ``fault`` on one file (the checksum file or the zip); returns its path."""
        path = zip_path(kind, symbol, day) + (".CHECKSUM" if fault == "corrupt_checksum" else "")
        self.faults[path] = ArchiveFault(fault, count)
        return path


def is_complete(series: IdSeries, day: date, generation_done: bool) -> bool:
    """Rule 3 for a day built from history (seeded days are complete by construction)."""
    if generation_done:
        return True
    return bool(series.times) and series.times[-1] >= day_start_us(day) + DAY_US


class PastFiller(Protocol):
    """A generator of back-dated fills (``SyntheticSymbol.past_fill``)."""

    def past_fill(self) -> tuple[int, bool, list[int], int, int]: ...


def _fmt8(units: int, cache: dict[int, str]) -> str:
    text = cache.get(units)
    if text is None:
        text = cache[units] = f"{units // 100_000_000}.{units % 100_000_000:08d}"
        if len(cache) > 100_000:
            cache.clear()
    return text


class _DayZips:
    """Two zips (trades, aggTrades) of one symbol and day, written in chunks side by side."""

    def __init__(self, symbol: str, day: date) -> None:
        self.names = {k: base_name(k, symbol, day) for k in KINDS}
        self.buffers = {k: io.BytesIO() for k in KINDS}
        self.zips = {  # level 1: seeding speed matters more than the size of an in-memory zip
            k: zipfile.ZipFile(self.buffers[k], "w", zipfile.ZIP_DEFLATED, compresslevel=1) for k in KINDS
        }
        self.members = {k: self.zips[k].open(f"{self.names[k]}.csv", "w") for k in KINDS}
        self.pending: dict[str, list[str]] = {k: [] for k in KINDS}

    def add(self, kind: str, line: str) -> None:
        chunk = self.pending[kind]
        chunk.append(line)
        if len(chunk) >= 10_000:
            self.members[kind].write("".join(chunk).encode())
            chunk.clear()

    def close(self) -> dict[str, bytes]:
        for kind in KINDS:
            self.members[kind].write("".join(self.pending[kind]).encode())
            self.members[kind].close()
            self.zips[kind].close()
        return {k: self.buffers[k].getvalue() for k in KINDS}


def seed_days(archive: Archive, symbol: str, gen: PastFiller, days: list[date], per_day: int) -> None:
    """Generate ``per_day`` aggTrades (and their trades) spread over each day, oldest day first.

    Lines are formatted from integers here (prices and quantities in 1e-8 units, quoteQty
    truncated to 8 decimals, as csv_line does for history rows): seeding a million aggTrades
    must take seconds, not minutes.
    """
    cache: dict[int, str] = {}
    for day in days:
        start, micro, out = day_start_us(day), day >= MICRO_FROM, _DayZips(symbol, day)
        for i in range(per_day):
            price, maker, qtys, first, agg = gen.past_fill()
            when = start + i * DAY_US // per_day
            when = when if micro else when // 1000
            ptxt, flags = _fmt8(price, cache), ("True,True\n" if maker else "False,True\n")
            for n, qty in enumerate(qtys):
                quote = price * qty // 100_000_000
                out.add("trade", f"{first + n},{ptxt},{_fmt8(qty, cache)},"
                                 f"{quote // 100_000_000}.{quote % 100_000_000:08d},{when},{flags}")
            last = first + len(qtys) - 1
            out.add("aggTrade", f"{agg},{ptxt},{_fmt8(sum(qtys), cache)},{first},{last},{when},{flags}")
        for kind, data in out.close().items():
            archive.zips[zip_path(kind, symbol, day)] = data
