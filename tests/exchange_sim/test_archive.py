"""The simulator's daily archives (pure builders): formats, checksums, faults, seeded and replayed days."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date
from pathlib import Path

import pytest

from exchange_sim.archive import Archive, csv_line, day_start_us, is_complete, seed_days, zip_path
from exchange_sim.history import IdSeries
from exchange_sim.market import spec_for
from exchange_sim.replay import read_file
from exchange_sim.synthetic import SyntheticSymbol
from tests.utils import shared_data_or_skip

EXTRACT_NAME = "BTCUSDT-aggTrades-2026-01-01.csv"


@pytest.fixture
def extract() -> Path:
    """The real BTCUSDT aggTrades extract of 2026-01-01 (../shared/data), or skip."""
    return shared_data_or_skip(EXTRACT_NAME)


def _csv(data: bytes) -> str:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return archive.read(archive.namelist()[0]).decode()


def test_lines_use_milliseconds_before_2025_and_microseconds_after() -> None:
    """Binance's unit switch: the same row in ms before 2025-01-01, in µs after."""
    row = (7, "1.50000000", "2.00000000", None, 1_704_067_200_004_123, True, True)
    want = "7,1.50000000,2.00000000,3.00000000,1704067200004,True,True\n"
    assert csv_line("trade", row, micro=False) == want
    assert csv_line("trade", row, micro=True).split(",")[4] == "1704067200004123"


def test_a_replayed_day_is_served_as_the_original_file(extract: Path) -> None:
    """Replaying the real extract and building its day gives back the same CSV, byte for byte."""
    series = IdSeries(10_000)
    for record in read_file(extract):
        event = record.event
        series.append(event.ident, event.time_us, _agg_row(event.body, event.time_us))
    day = date(2026, 1, 1)
    assert is_complete(series, day, generation_done=True)
    assert not is_complete(series, day, generation_done=False)
    built = Archive().cache_day("aggTrade", "BTCUSDT", day, series)
    assert _csv(built) == extract.read_text()


def _agg_row(b: dict[str, object], time_us: int) -> tuple[object, ...]:
    return (b["a"], b["p"], b["q"], b["f"], b["l"], time_us, b["m"], b["M"])


def test_checksum_faults_spoil_the_next_downloads_then_stop() -> None:
    """corrupt_checksum changes the digest for `count` downloads; truncate_zip cuts the zip; all counted."""
    archive, day = Archive(), date(2026, 11, 30)
    archive.add("aggTrade", "BTCUSDT", day, ["1,1.0,1.0,1,1,1764460800000000,True,True\n"])
    path = zip_path("aggTrade", "BTCUSDT", day)
    data = archive.zips[path]
    good = f"{hashlib.sha256(data).hexdigest()}  BTCUSDT-aggTrades-2026-11-30.zip\n".encode()
    archive.set_fault("corrupt_checksum", "aggTrade", "BTCUSDT", day, 2)
    assert archive.serve(path + ".CHECKSUM", data) != good
    assert archive.serve(path + ".CHECKSUM", data) != good
    assert archive.serve(path + ".CHECKSUM", data) == good
    archive.set_fault("truncate_zip", "aggTrade", "BTCUSDT", day, 1)
    assert len(archive.serve(path, data)) < len(data)
    assert archive.serve(path, data) == data
    assert archive.downloads[path + ".CHECKSUM"] == 3 and archive.downloads[path] == 2


def test_seeded_days_are_contiguous_and_live_ids_continue_them() -> None:
    """Seeded days cover consecutive ids within their day, and the generator goes on after them."""
    gen, archive = SyntheticSymbol(spec_for("ETHUSDT"), 0, None), Archive()
    days = [date(2024, 12, 31), date(2025, 1, 1)]
    seed_days(archive, "ETHUSDT", gen, days, 50)
    ids: list[int] = []
    for day in days:
        lines = _csv(archive.zips[zip_path("trade", "ETHUSDT", day)]).splitlines()
        times = [int(line.split(",")[4]) for line in lines]
        scale = 1000 if day.year < 2025 else 1
        assert all(day_start_us(day) <= t * scale < day_start_us(day) + 86_400_000_000 for t in times)
        ids += [int(line.split(",")[0]) for line in lines]
        aggs = _csv(archive.zips[zip_path("aggTrade", "ETHUSDT", day)]).splitlines()
        assert len(aggs) == 50
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert gen.next_t == ids[-1] + 1
