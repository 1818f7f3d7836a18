"""Binance daily archive files: paths, checksums and CSV rows -> event messages (pure).

Rules:
  1. Paths: ``/data/spot/daily/{trades|aggTrades}/SYM/SYM-{kind}-YYYY-MM-DD.zip`` and the
     same with ``.CHECKSUM`` (``<sha256 hex>  <zip name>``).
  2. A zip is used only if its SHA-256 equals the checksum file's hex (``verify``).
  3. Rows: trades ``id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch``; aggTrades
     ``a,price,qty,f,l,time,isBuyerMaker,isBestMatch``. A header row is sniffed and skipped.
     The time unit is told by digits: 13 or fewer ms (archives before 2025), 16 µs.
  4. Every line is either a ``TradeMessage`` with source "archive" or a ``RowError`` naming the
     field; prices and quantities stay the file's text (validated, never converted).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date

from binance_pipeline.common.events import CONTRACT_VERSION, TradeMessage
from ingestion.history.errors import ArchiveError, RowError

KINDS = {"trade": "trades", "aggTrade": "aggTrades"}
COLUMNS = {"trade": 7, "aggTrade": 8}
_DECIMAL = re.compile(r"[0-9]{1,30}(?:\.[0-9]{1,30})?")
_HEX = re.compile(r"[0-9a-f]{64}")
_BOOL = {"True": True, "False": False, "true": True, "false": False}


def file_name(stream: str, symbol: str, day: date) -> str:
    """``BTCUSDT-aggTrades-2026-01-01.zip``."""
    return f"{symbol}-{KINDS[stream]}-{day.isoformat()}.zip"


def zip_path(stream: str, symbol: str, day: date) -> str:
    """The URL path of a day's zip under BINANCE_ARCHIVE_URL (Rule 1)."""
    return f"/data/spot/daily/{KINDS[stream]}/{symbol}/{file_name(stream, symbol, day)}"


def expected_sha256(checksum_file: bytes, zip_name: str) -> str:
    """The hex digest a ``.CHECKSUM`` file states for ``zip_name``; ArchiveError if unreadable."""
    parts = checksum_file.decode("ascii", "replace").split()
    if len(parts) != 2 or not _HEX.fullmatch(parts[0].lower()) or parts[1].lstrip("*") != zip_name:
        raise ArchiveError(f"{zip_name}.CHECKSUM", f"not '<sha256>  {zip_name}': {checksum_file[:120]!r}")
    return parts[0].lower()


def verify(zip_bytes: bytes, sha256_hex: str) -> bool:
    """Rule 2."""
    return hashlib.sha256(zip_bytes).hexdigest() == sha256_hex


def csv_lines(zip_bytes: bytes, zip_name: str) -> tuple[int, Iterator[bytes]]:
    """(uncompressed size, lines) of the one CSV inside a verified zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
        member = archive.infolist()[0]
        handle = archive.open(member)
    except (zipfile.BadZipFile, IndexError, OSError) as exc:
        raise ArchiveError(zip_name, f"not a readable zip: {exc}") from exc
    return member.file_size, iter(handle)


def time_us(text: str) -> int:
    """An archive time in microseconds (Rule 3: the unit is told by the number of digits)."""
    if not text.isdigit() or not 10 <= len(text) <= 17:
        raise RowError(f"time {text!r} is not epoch milliseconds or microseconds")
    return int(text) * 1000 if len(text) <= 13 else int(text)


def _decimal(text: str, name: str) -> str:
    if _DECIMAL.fullmatch(text):
        return text
    raise RowError(f"{name} {text[:40]!r} is not a decimal")


def _flag(text: str, name: str) -> bool:
    try:
        return _BOOL[text]
    except KeyError:
        raise RowError(f"{name} {text[:10]!r} is not True/False") from None


def _int(text: str, name: str) -> int:
    if text.isdigit() or (text.startswith("-") and text[1:].isdigit()):
        return int(text)
    raise RowError(f"{name} {text[:30]!r} is not an integer")


def is_header(line: str) -> bool:
    """True for a header row (its first field is not a number)."""
    first = line.split(",", 1)[0].strip()
    return bool(first) and not first.lstrip("-").isdigit()


def parse_row(stream: str, symbol: str, line: str, received_at: int) -> TradeMessage:
    """One CSV line -> a trades-topic message with source "archive" (Rule 4)."""
    f = line.rstrip("\r\n").split(",")
    if len(f) != COLUMNS[stream]:
        raise RowError(f"expected {COLUMNS[stream]} columns, got {len(f)}")
    agg = stream == "aggTrade"
    return {
        "v": CONTRACT_VERSION, "type": "aggTrade" if agg else "trade", "symbol": symbol,
        "id": _int(f[0], "id"), "price": _decimal(f[1], "price"), "qty": _decimal(f[2], "qty"),
        "first_id": _int(f[3], "first id") if agg else None,
        "last_id": _int(f[4], "last id") if agg else None,
        "trade_time": time_us(f[5] if agg else f[4]), "event_time": None,
        "buyer_maker": _flag(f[6] if agg else f[5], "isBuyerMaker"),
        "best_match": _flag(f[7] if agg else f[6], "isBestMatch"),
        "received_at": received_at, "source": "archive",
    }  # fmt: skip
