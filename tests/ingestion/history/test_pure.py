"""The history import's pure parts: archive rows and checksums, the plan, progress, the shared budget."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import zipfile
from datetime import date
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from binance_pipeline.common.utc import day_start_us
from ingestion.history.archive import (
    csv_lines,
    expected_sha256,
    file_name,
    is_header,
    parse_row,
    time_us,
    verify,
    zip_path,
)
from ingestion.history.display import Display, Progress
from ingestion.history.errors import ArchiveError, RowError
from ingestion.history.plan import RestTask, archive_days, decode_progress, rest_task
from ingestion.limits import WindowBudget
from tests.utils import shared_data_or_skip

EXTRACT_NAME = "BTCUSDT-aggTrades-2026-01-01.csv"


@pytest.fixture
def extract() -> Path:
    """The real BTCUSDT aggTrades extract of 2026-01-01 (../shared/data), or skip."""
    return shared_data_or_skip(EXTRACT_NAME)


def test_microsecond_aggtrade_row_keeps_the_file_text() -> None:
    """A 2026 aggTrades line (µs) becomes a message with the exact text and source archive."""
    line = "3800397496,87648.22000000,0.00013000,5723703862,5723703862,1767225600272386,False,True"
    msg = parse_row("aggTrade", "BTCUSDT", line, 7)
    assert (msg["id"], msg["price"], msg["qty"]) == (3800397496, "87648.22000000", "0.00013000")
    assert (msg["first_id"], msg["last_id"], msg["trade_time"]) == (5723703862, 5723703862, 1767225600272386)
    assert (msg["buyer_maker"], msg["best_match"], msg["source"]) == (False, True, "archive")


def test_millisecond_rows_before_2025_are_scaled_to_microseconds() -> None:
    """Archives before 2025 carry milliseconds: the unit is told by the digits."""
    line = "3350000000,42283.58000000,0.00100000,42.28358000,1704067200004,True,True"
    msg = parse_row("trade", "BTCUSDT", line, 0)
    assert msg["trade_time"] == 1704067200004000
    assert msg["first_id"] is None and msg["type"] == "trade"


def test_the_real_extract_parses_whole_with_consecutive_ids(extract: Path) -> None:
    """Every line of the real 2026-01-01 extract parses, ids consecutive, f follows l."""
    rows = [parse_row("aggTrade", "BTCUSDT", line, 0) for line in extract.read_text().splitlines()]
    assert len(rows) == 5000
    for prev, row in itertools.pairwise(rows):
        assert row["id"] == prev["id"] + 1
        assert row["first_id"] == (prev["last_id"] or 0) + 1


def test_header_rows_are_sniffed() -> None:
    """A header line is recognised; a data line is not."""
    assert is_header("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker")
    assert not is_header("3800397495,87648.21000000,0.08185000")


@pytest.mark.parametrize("line", [
    "1,2,3", "x,1.0,1.0,1,1,1767225600039409,True,True", "1,1e5,1.0,1,1,1767225600039409,True,True",
    "1,1.0,-1.0,1,1,1767225600039409,True,True", "1,1.0,1.0,1,1,176722560003940912,True,True",
    "1,1.0,1.0,1,1,1767225600039409,yes,True",
])
def test_bad_rows_are_rejected_with_row_error(line: str) -> None:
    """Columns, decimals, times and flags are checked."""
    with pytest.raises(RowError):
        parse_row("aggTrade", "BTCUSDT", line, 0)


@given(st.text(max_size=120), st.sampled_from(["trade", "aggTrade"]))
def test_every_line_is_a_message_or_a_row_error(line: str, stream: str) -> None:
    """Property: parse_row accepts or raises RowError; nothing else escapes."""
    try:
        msg = parse_row(stream, "BTCUSDT", line, 0)
    except RowError:
        return
    assert msg["source"] == "archive"


def test_checksum_file_is_read_and_checked() -> None:
    """The sha256sum line names the zip; a zip verifies only against its own digest."""
    data = b"PK-not-really"
    digest = hashlib.sha256(data).hexdigest()
    name = file_name("aggTrade", "BTCUSDT", date(2026, 1, 1))
    assert name == "BTCUSDT-aggTrades-2026-01-01.zip"
    assert expected_sha256(f"{digest}  {name}\n".encode(), name) == digest
    assert verify(data, digest) and not verify(data[:-1], digest)
    with pytest.raises(ArchiveError, match="CHECKSUM"):
        expected_sha256(f"{digest}  other.zip\n".encode(), name)
    with pytest.raises(ArchiveError, match=name):
        csv_lines(data, name)


def test_plan_archives_days_before_today_and_resumes_rest_from_its_cursor() -> None:
    """Days before today come from the archive; the REST tail resumes after the cursor's last id."""
    today = date(2026, 12, 1)
    assert archive_days(date(2026, 11, 28), today, today) == [date(2026, 11, 28), date(2026, 11, 29),
                                                                date(2026, 11, 30)]
    assert archive_days(today, today, today) == []
    now = day_start_us(today) + 3_600_000_000
    task = rest_task("BTCUSDT", "trade", today, today, now, 99, {"from_id": 100, "last_id": 250})
    assert task is not None and task.from_id == 251 and task.end_us == now
    fresh = rest_task("BTCUSDT", "trade", today, today, now, 99, {"from_id": 500, "last_id": 600})
    assert fresh is not None and fresh.from_id == 100
    assert rest_task("BTCUSDT", "trade", today, date(2026, 11, 30), now, 99, None) is None


def test_progress_gives_rate_and_eta_and_plain_lines_off_a_terminal() -> None:
    """Rows/s and ETA come from the clock passed in; off a terminal the output is plain lines."""
    progress = Progress(units=4, started=0.0, done=1, current=0.0, rows=1000)
    assert progress.rate(10.0) == 100.0
    assert progress.eta(10.0) == pytest.approx(30.0)
    out = io.StringIO()
    display = Display(out, tty=False)
    display.show(progress, 10.0)
    display.show(progress, 11.0)
    display.finish(progress, 12.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "rows/s" in lines[0] and "ETA 00:30" in lines[0] and "\r" not in out.getvalue()
    tty = io.StringIO()
    Display(tty, tty=True).show(progress, 10.0)
    assert tty.getvalue().startswith("\r") and "[#######" in tty.getvalue()


def test_weight_counted_by_the_exchange_is_shared_by_the_budget() -> None:
    """Weight the exchange reports beyond our own spend (another process) delays our next request."""
    budget = WindowBudget(3000, 60.0)
    budget.spend(100, 0.0)
    assert budget.delay(25, 1.0) == 0
    budget.observe_used(2990, 1.0)
    assert budget.used(1.0) == 2990
    assert budget.delay(25, 2.0) > 0
    budget.observe_used(10, 2.0)
    assert budget.used(2.0) == 2990


DAY_RECORD = {"v": 1, "symbol": "BTCUSDT", "stream": "aggTrade", "day": "2026-01-01", "source": "archive",
              "rows": 3, "first_id": 1, "last_id": 3, "done_at": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        (b"BTCUSDT/aggTrade/2026-01-01", b"not a gap record", "not a progress record"),
        (b"\xff\xfe", orjson.dumps(DAY_RECORD), "not a progress record"),
        (b"BTCUSDT/aggTrade/2026-01-01", b"[1]", "first_id, last_id, rows must be integers"),
        (b"BTCUSDT/aggTrade/2026-01-01", orjson.dumps({**DAY_RECORD, "rows": "3"}), "rows must be integers"),
        (b"BTCUSDT/aggTrade/rest", orjson.dumps({"from_id": 1}), "from_id, last_id must be integers"),
    ],
)
def test_a_progress_record_that_is_not_one_is_a_value_error(key: bytes, value: bytes, why: str) -> None:
    """Bad key bytes, bad JSON or a field of the wrong type: ValueError saying why."""
    with pytest.raises(ValueError, match=why):
        decode_progress(key, value)


def test_progress_records_of_the_importer_decode() -> None:
    """A day record and a REST cursor as the importer writes them decode to (key, record)."""
    cursor = {"v": 1, "source": "rest", "from_id": 5, "last_id": 9}
    assert decode_progress(b"BTCUSDT/aggTrade/2026-01-01", orjson.dumps(DAY_RECORD)) == (
        "BTCUSDT/aggTrade/2026-01-01", DAY_RECORD)
    rest = b"BTCUSDT/aggTrade/rest"
    assert decode_progress(rest, orjson.dumps(cursor)) == (rest.decode(), cursor)


@given(st.binary(), st.binary())
def test_any_progress_bytes_decode_or_raise_value_error(key: bytes, value: bytes) -> None:
    """decode_progress on arbitrary bytes returns a record or raises ValueError, nothing else."""
    with contextlib.suppress(ValueError):
        decode_progress(key, value)


def test_no_archive_day_from_today_on() -> None:
    today = date(2026, 12, 1)
    assert archive_days(date(2026, 12, 5), date(2026, 12, 9), today) == []
    assert archive_days(date(2026, 11, 30), date(2026, 12, 9), today) == [date(2026, 11, 30)]


def test_a_day_starts_at_an_exact_integer_microsecond() -> None:
    start = day_start_us(date(2024, 8, 8))
    assert type(start) is int and start == 1_723_075_200_000_000


@pytest.mark.parametrize(("last_archived", "cursor", "from_id"), [
    (None, {"from_id": 100, "last_id": 250}, None),  # nothing archived: REST starts at start_us
    (249, {"from_id": 100, "last_id": 250}, 251),  # the cursor covers our next id (250)
    (250, {"from_id": 100, "last_id": 250}, 251),  # our next id is the cursor's next
    (251, {"from_id": 100, "last_id": 250}, 252),  # past the cursor: it does not apply
    (98, {"from_id": 100, "last_id": 250}, 99),  # before the cursor: it does not apply
])
def test_the_rest_task_resumes_from_the_cursor_only_when_it_covers_the_next_id(
        last_archived: int | None, cursor: dict[str, int], from_id: int | None) -> None:
    today = date(2026, 12, 1)
    now = day_start_us(today) + 3_600_000_000
    task = rest_task("BTCUSDT", "aggTrade", today, today, now, last_archived, cursor)
    assert task == RestTask("BTCUSDT", "aggTrade", from_id, day_start_us(today), now)


def test_a_progress_line_word_for_word() -> None:
    """Bar, percent, rows, rate, ETA (h:mm:ss past an hour) and label, from the clock passed in."""
    progress = Progress(units=4, started=100.0, done=1, current=0.5, rows=12_345, label="BTCUSDT trade")
    assert progress.line(110.0, width=8) == (
        "[###-----]  37.5%  12,345 rows  1,234 rows/s  ETA 00:16  BTCUSDT trade")
    slow = Progress(units=100, started=0.0, done=1, rows=5)
    assert slow.line(3725.0, width=0) == "  1.0%  5 rows  0 rows/s  ETA 102:26:15  "
    assert Progress(units=2, started=0.0).line(5.0, width=4) == "[----]   0.0%  0 rows  0 rows/s  ETA ?  "


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "00:00"), (59.9, "00:59"), (61.0, "01:01"), (3599.0, "59:59"), (3600.0, "1:00:00"),
    (3661.0, "1:01:01"), (120.0, "02:00"), (7322.0, "2:02:02"), (-5.0, "00:00"),
])
def test_durations_read_as_clock_times(seconds: float, text: str) -> None:
    progress = Progress(units=2, started=0.0, done=1)  # half done: ETA = elapsed
    assert progress.line(seconds, width=0).endswith(f"ETA {text}  ")


def test_fraction_rate_and_eta_at_their_edges() -> None:
    assert Progress(units=0, started=0.0).fraction() == 1.0
    assert Progress(units=1, started=0.0, done=1, current=0.5).fraction() == 1.0  # never past whole
    assert Progress(units=2, started=0.0, done=1, current=0.5).fraction() == 0.75
    assert Progress(units=1, started=0.0).eta(10.0) is None
    assert Progress(units=1, started=50.0, current=0.25).eta(60.0) == 30.0
    assert Progress(units=1, started=50.0, rows=100).rate(60.0) == 10.0
    assert Progress(units=1, started=50.0, rows=1).rate(50.0) == 1e6  # no time yet: a finite rate


def test_the_terminal_bar_is_redrawn_at_most_five_times_a_second() -> None:
    out = io.StringIO()
    display = Display(out, tty=True)
    progress = Progress(units=1, started=0.0, current=0.5)
    display.show(progress, 0.0)
    display.show(progress, 0.1)  # too soon: nothing
    display.show(progress, 0.2)  # 0.2 s later: redrawn
    assert out.getvalue().count("\r\x1b[2K") == 2
    display.finish(progress, 0.25)  # forced, then the line ends
    assert out.getvalue().count("\r\x1b[2K") == 3 and out.getvalue().endswith("\n")
    assert out.getvalue().count("\n") == 1


def test_plain_lines_come_every_plain_every_seconds_without_a_bar() -> None:
    out = io.StringIO()
    display = Display(out, tty=False, plain_every=5.0)
    progress = Progress(units=1, started=0.0, current=0.5)
    display.show(progress, 10.0)
    display.show(progress, 14.9)
    display.show(progress, 15.0)
    display.finish(progress, 15.1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and not any(line.startswith("[") for line in lines)


AGG_LINE = "3800397496,87648.22000000,0.00013000,5723703862,5723703863,1767225600272386,False,True"


def test_an_aggtrade_row_is_the_whole_message() -> None:
    assert parse_row("aggTrade", "BTCUSDT", AGG_LINE + "\r\n", 7) == {
        "v": 1, "type": "aggTrade", "symbol": "BTCUSDT", "id": 3800397496, "price": "87648.22000000",
        "qty": "0.00013000", "first_id": 5723703862, "last_id": 5723703863, "trade_time": 1767225600272386,
        "event_time": None, "buyer_maker": False, "best_match": True, "received_at": 7, "source": "archive",
    }


def test_a_trade_row_is_the_whole_message() -> None:
    line = "3350000000,42283.58000000,0.00100000,42.28358000,1704067200004,true,false\n"
    assert parse_row("trade", "ETHUSDT", line, 9) == {
        "v": 1, "type": "trade", "symbol": "ETHUSDT", "id": 3350000000, "price": "42283.58000000",
        "qty": "0.00100000", "first_id": None, "last_id": None, "trade_time": 1704067200004000,
        "event_time": None, "buyer_maker": True, "best_match": False, "received_at": 9, "source": "archive",
    }


def test_a_negative_id_field_is_an_integer() -> None:
    """Binance writes -1 for ``first_trade_id`` of some old aggTrades rows; "-" alone, "--1" are not."""
    row = parse_row("aggTrade", "BTCUSDT", "5,1.0,1.0,-1,-1,1767225600272386,False,True", 0)
    assert (row["first_id"], row["last_id"]) == (-1, -1)
    for bad in ("-", "--1", "1-"):
        with pytest.raises(RowError, match=rf"^first id '{bad}' is not an integer$"):
            parse_row("aggTrade", "BTCUSDT", f"5,1.0,1.0,{bad},1,1767225600272386,False,True", 0)


@pytest.mark.parametrize(("fields", "message"), [
    (("x" * 50, "1.0", "1.0", "True", "True"), rf"^id '{'x' * 30}' is not an integer$"),
    (("1", "y" * 50, "1.0", "True", "True"), rf"^price '{'y' * 40}' is not a decimal$"),
    (("1", "1.0", "1e5", "True", "True"), r"^qty '1e5' is not a decimal$"),
    (("1", "1.0", "1.0", "z" * 20, "True"), rf"^isBuyerMaker '{'z' * 10}' is not True/False$"),
    (("1", "1.0", "1.0", "True", "TRUE"), r"^isBestMatch 'TRUE' is not True/False$"),
])
def test_a_bad_field_is_named_and_quoted_in_part(fields: tuple[str, ...], message: str) -> None:
    ident, price, qty, maker, best = fields
    line = f"{ident},{price},{qty},1,1704067200004,{maker},{best}"
    with pytest.raises(RowError, match=message):
        parse_row("trade", "BTCUSDT", line, 0)


def test_a_row_is_cut_at_its_line_end_only() -> None:
    for tail in (" ", "X", "\t"):
        with pytest.raises(RowError):
            parse_row("aggTrade", "BTCUSDT", AGG_LINE + tail + "\n", 0)


def test_a_bad_last_id_is_named() -> None:
    with pytest.raises(RowError, match=r"^last id 'x' is not an integer$"):
        parse_row("aggTrade", "BTCUSDT", "5,1.0,1.0,1,x,1767225600272386,False,True", 0)


@pytest.mark.parametrize(("text", "us"), [
    ("1704067200", 1_704_067_200_000), ("1704067200004", 1_704_067_200_004_000),
    ("17040672000040", 17_040_672_000_040), ("17040672000040000", 17_040_672_000_040_000),
])
def test_archive_times_of_10_to_13_digits_are_milliseconds_14_to_17_microseconds(text: str, us: int) -> None:
    assert time_us(text) == us


@pytest.mark.parametrize("text", ["170406720", "170406720004000001", "-1704067200004", ""])
def test_an_archive_time_of_another_length_is_a_row_error(text: str) -> None:
    with pytest.raises(RowError, match=rf"^time '{text}' is not epoch milliseconds or microseconds$"):
        time_us(text)


def test_a_row_with_the_wrong_column_count_says_so() -> None:
    with pytest.raises(RowError, match=r"^expected 8 columns, got 7$"):
        parse_row("aggTrade", "BTCUSDT", "1,1.0,1.0,1,1,1767225600272386,False", 0)


def test_header_sniffing_looks_at_the_first_field_only() -> None:
    assert not is_header("-1,price,qty")  # a negative number starts a data row
    assert not is_header(" 42 ,x")
    assert is_header("id-1,2,3")
    assert not is_header(",a,b")  # an empty first field is not a header
    assert is_header("X1,2") and is_header("-X,2")


def test_a_checksum_line_may_mark_binary_mode_and_must_be_hex() -> None:
    digest = "ab" * 32
    name = "XRPUSDT-trades-2026-01-01.zip"  # starts with X: only "*" is stripped, nothing else
    assert expected_sha256(f"{digest.upper()} *{name}\n".encode(), name) == digest
    for bad in (f"{digest}\n", f"{'zz' * 32}  {name}\n", f"{digest}  {name}*\n", f"{digest}  {name} x\n"):
        with pytest.raises(ArchiveError):
            expected_sha256(bad.encode(), name)
    garbage = b"\xff" * 200
    with pytest.raises(ArchiveError) as caught:
        expected_sha256(garbage, name)
    assert str(caught.value) == f"{name}.CHECKSUM: not '<sha256>  {name}': {garbage[:120]!r}"


def zip_of(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_the_csv_is_the_zip_s_first_member() -> None:
    data = zip_of(("a.csv", b"1,2\n3,4\n"), ("b.csv", b"no\n"))
    size, lines = csv_lines(data, "a.zip")
    assert (size, list(lines)) == (8, [b"1,2\n", b"3,4\n"])


def test_an_unreadable_zip_is_an_archive_error_naming_the_file() -> None:
    with pytest.raises(ArchiveError, match=r"^x\.zip: not a readable zip: "):
        csv_lines(b"PK-not-really", "x.zip")
    with pytest.raises(ArchiveError, match=r"^empty\.zip: not a readable zip: "):
        csv_lines(zip_of(), "empty.zip")


def test_an_archive_zip_is_found_under_its_kind_and_symbol() -> None:
    assert zip_path("aggTrade", "BTCUSDT", date(2026, 1, 1)) == (
        "/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2026-01-01.zip")
    assert zip_path("trade", "ETHBTC", date(2024, 8, 8)) == (
        "/data/spot/daily/trades/ETHBTC/ETHBTC-trades-2024-08-08.zip")


def test_the_terminal_bar_is_30_characters_wide() -> None:
    assert Progress(units=2, started=0.0, done=1).line(1.0).startswith("[" + "#" * 15 + "-" * 15 + "] ")
