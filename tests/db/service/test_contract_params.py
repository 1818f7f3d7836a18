"""db.service.params: each query parameter is parsed exactly or refused with InvalidArgument naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from db.service.errors import InvalidArgument
from db.service.params import (
    BUCKET_ORIGIN,
    DEFAULT_WHALE_THRESHOLD,
    MAX_BUCKET,
    MAX_LAST,
    MAX_WINDOW,
    MIN_BUCKET,
    bucket_count,
    check_row_budget,
    parse_bool,
    parse_bucket,
    parse_duration,
    parse_int,
    parse_symbol,
    parse_threshold,
    parse_time,
    parse_type,
    resolve_range,
)
from db.service.specs import SPECS, parse_request

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def refused(param: str, text: str = "") -> Any:
    """Expect InvalidArgument for ``param`` whose message contains ``text``."""
    return pytest.raises(InvalidArgument, match=f"^{param}: .*{text}")


def test_the_bounds_are_what_the_docs_say() -> None:
    """Buckets 1 s to 1 day, SMA windows up to 1000, last up to 3660 days, whales from 100000."""
    assert (MIN_BUCKET, MAX_BUCKET) == (timedelta(seconds=1), timedelta(days=1))
    assert MAX_WINDOW == 1000 and MAX_LAST == timedelta(days=3660)
    assert DEFAULT_WHALE_THRESHOLD == Decimal(100000)
    assert BUCKET_ORIGIN == datetime(2000, 1, 3, tzinfo=UTC)


def test_symbols_are_trimmed_and_upper_cased() -> None:
    """' btcusdt ' is BTCUSDT; 2 and 20 characters are the limits."""
    assert parse_symbol(" btcusdt ") == "BTCUSDT"
    assert parse_symbol("ab") == "AB" and parse_symbol("A" * 20) == "A" * 20


@pytest.mark.parametrize("text", ["A", "A" * 21, "BTC-USDT", "", "BTC USDT"])
def test_bad_symbols_are_refused(text: str) -> None:
    """A symbol outside [A-Z0-9]{2,20} names the symbol parameter."""
    with refused("symbol", "not a symbol"):
        parse_symbol(text)


def test_types_are_trade_or_agg_trade_exactly() -> None:
    """trade and aggTrade pass; anything else, even a different case, is refused."""
    assert parse_type("trade") == "trade" and parse_type("aggTrade") == "aggTrade"
    with refused("type", "expected trade or aggTrade"):
        parse_type("aggtrade")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        ("1714564800123", datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)),
        (" 1714564800000 ", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_times_are_epoch_ms_or_iso_and_always_utc(text: str, expected: datetime) -> None:
    """Digits are epoch ms; ISO without an offset is UTC; an offset is converted to UTC."""
    parsed = parse_time(text, "at")
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "", "-5", "٣", "99999999999999999999", "2024-13-01"])
def test_bad_times_name_their_parameter(text: str) -> None:
    """Unparseable or out-of-range times are refused naming the parameter they came in."""
    with refused("from", "is not a time"):
        parse_time(text, "from")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), (" 7s ", 7), ("999999999s", 999999999)],
)
def test_durations_have_one_unit(text: str, seconds: int) -> None:
    """A duration is 1-9 digits and one of s, m, h, d."""
    assert parse_duration(text, "last") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0s", "1000000000s", "5", "5w", "1.5h", "m", "-1m", "5m5s"])
def test_bad_durations_are_refused(text: str) -> None:
    """Zero, too many digits, no unit or an unknown unit is refused naming the parameter."""
    with refused("window", "is not a duration"):
        parse_duration(text, "window")


def test_buckets_run_from_one_second_to_one_day() -> None:
    """1s and 1d (and 86400s) are accepted; 86401s and 2d are out of range."""
    assert parse_bucket("1s") == MIN_BUCKET and parse_bucket("1d") == parse_bucket("86400s") == MAX_BUCKET
    for text in ("86401s", "2d", "25h"):
        with refused("bucket", "out of range: expected 1s to 1d"):
            parse_bucket(text)


def test_whole_numbers_are_checked_against_their_bounds() -> None:
    """The bounds are inclusive; outside them the message gives the range."""
    assert parse_int(" 1 ", "limit", 1, 5) == 1 and parse_int("5", "limit", 1, 5) == 5
    with refused("limit", "0 is out of range: expected 1 to 5"):
        parse_int("0", "limit", 1, 5)
    with refused("window", "6 is out of range: expected 1 to 5"):
        parse_int("6", "window", 1, 5)


@pytest.mark.parametrize("text", ["", "1.0", "-1", "1e3", "٣", "1" * 13])
def test_non_numbers_and_overlong_numbers_are_refused(text: str) -> None:
    """Only up to 12 ASCII digits make a whole number."""
    with refused("limit", "is not a whole number"):
        parse_int(text, "limit", 0, 10**15)


def test_twelve_digits_are_still_a_number() -> None:
    """The longest accepted whole number has 12 digits."""
    assert parse_int("9" * 12, "limit", 0, 10**12) == 10**12 - 1


def test_thresholds_are_exact_decimals() -> None:
    """A threshold keeps its digits; zero is allowed; just below 1e40 is allowed."""
    assert parse_threshold(" 0.1 ") == Decimal("0.1") and str(parse_threshold("250000.50")) == "250000.50"
    assert parse_threshold("0") == 0 and parse_threshold("9.99e39") == Decimal("9.99e39")


@pytest.mark.parametrize("text", ["-0.01", "1e40", "NaN", "Infinity", "abc", ""])
def test_bad_thresholds_are_refused(text: str) -> None:
    """Negative, 1e40 and above, NaN, infinite and non-numbers are refused."""
    with refused("threshold", "non-negative decimal"):
        parse_threshold(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        (" ON ", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("Off", False),
        ("0", False),
        ("no", False),
    ],
)
def test_booleans_accept_the_usual_words(text: str, value: bool) -> None:
    """true/1/yes/on and false/0/no/off, any case, surrounding blanks ignored."""
    assert parse_bool(text, "fill") is value


def test_other_words_are_not_booleans() -> None:
    """A word that is neither true nor false is refused naming the parameter."""
    with refused("fill", "expected true or false"):
        parse_bool("maybe", "fill")


def test_a_range_from_last() -> None:
    """last D is [now - D, now); without from, to or last the command's default applies."""
    assert resolve_range({"last": "2h"}, NOW, timedelta(hours=1)) == (NOW - timedelta(hours=2), NOW)
    assert resolve_range({}, NOW, timedelta(days=1)) == (NOW - timedelta(days=1), NOW)
    assert resolve_range({"last": "3660d"}, NOW, timedelta(hours=1))[0] == NOW - MAX_LAST
    with refused("last", "longer than 3660 days"):
        resolve_range({"last": "3661d"}, NOW, timedelta(hours=1))


def test_a_range_from_from_and_to() -> None:
    """from without to runs to now; from == to is an empty range; to before from is refused."""
    start = datetime(2024, 5, 1, 11, tzinfo=UTC)
    assert resolve_range({"from": "2024-05-01T11:00:00"}, NOW, timedelta(hours=1)) == (start, NOW)
    assert resolve_range({"from": "0", "to": "0"}, NOW, timedelta(hours=1))[1] == datetime(
        1970, 1, 1, tzinfo=UTC
    )
    with refused("to", r"ends \(2024-05-01T10:00:00Z\) before it starts \(2024-05-01T11:00:00Z\)"):
        resolve_range(
            {"from": "2024-05-01T11:00:00", "to": "2024-05-01T12:00:00+02:00"}, NOW, timedelta(hours=1)
        )


def test_last_excludes_from_and_to_needs_from() -> None:
    """last with from or to is refused (naming last); to alone is refused (naming from)."""
    with refused("last", "either last or from/to"):
        resolve_range({"last": "1h", "to": "0"}, NOW, timedelta(hours=1))
    with refused("last", "either last or from/to"):
        resolve_range({"last": "1h", "from": "0"}, NOW, timedelta(hours=1))
    with refused("from", "is required when to is given"):
        resolve_range({"to": "0"}, NOW, timedelta(hours=1))


def test_bucket_count_follows_time_bucket_alignment() -> None:
    """Buckets are aligned to 2000-01-03; a half-open range counts the buckets it touches."""
    hour = timedelta(hours=1)
    t0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert bucket_count(t0, t0 + hour, hour) == 1
    assert bucket_count(t0, t0 + hour + timedelta(microseconds=1), hour) == 2
    assert bucket_count(t0 + timedelta(minutes=30), t0 + hour + timedelta(minutes=1), hour) == 2
    assert bucket_count(t0, t0, hour) == 0
    assert bucket_count(BUCKET_ORIGIN - timedelta(days=1), BUCKET_ORIGIN, timedelta(days=1)) == 1
    week = timedelta(days=7)
    assert bucket_count(BUCKET_ORIGIN + timedelta(days=6), BUCKET_ORIGIN + timedelta(days=8), week) == 2


def test_row_budget_for_series_and_day_lists() -> None:
    """Candles/SMA count buckets, gaps count days + 2; exactly max_rows passes, one more is refused."""
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    check_row_budget("bucket", t0, t0 + timedelta(minutes=10), timedelta(minutes=1), 10)
    with refused("bucket", "spans 11 rows, more than the maximum 10: shorten it or widen the bucket"):
        check_row_budget("bucket", t0, t0 + timedelta(minutes=11), timedelta(minutes=1), 10)
    check_row_budget("day", t0, t0 + timedelta(days=8), timedelta(minutes=1), 10)
    with refused("from", "spans 11 rows, more than the maximum 10: shorten it$"):
        check_row_budget("day", t0, t0 + timedelta(days=9), timedelta(minutes=1), 10)
    check_row_budget("", t0, t0 + timedelta(days=900), timedelta(seconds=1), 1)
    assert {n: s.params.rows_per for n, s in SPECS.items() if hasattr(s.params, "rows_per")} == {
        "range": "", "candles": "bucket", "sma": "bucket", "whales": "", "gaps": "day", "audit": "",
        "markets": ""}


def test_a_request_takes_every_scalar_parameter() -> None:
    """Each parameter lands in its field, parsed."""
    req = parse_request(
        "candles",
        {"symbol": "ethusdt", "type": "aggTrade", "bucket": "5m", "fill": "yes", "last": "1h"},
        NOW,
        1000,
    )
    assert (req.symbol, req.type, req.bucket, req.fill, req.start, req.end) == (
        "ETHUSDT", "aggTrade", timedelta(minutes=5), True, NOW - timedelta(hours=1), NOW)
    whales = parse_request("whales", {"symbol": "BTCUSDT", "threshold": "5.5", "limit": "50"}, NOW, 50)
    assert (whales.threshold, whales.limit) == (Decimal("5.5"), 50)
    sma = parse_request("sma", {"symbol": "BTCUSDT", "window": "1000"}, NOW, 1000)
    assert sma.window == 1000 and sma.start == NOW - timedelta(hours=1)
    at = parse_request("price-at", {"symbol": "BTCUSDT", "at": "0"}, NOW, 10)
    assert at.at == datetime(1970, 1, 1, tzinfo=UTC) and at.start is None


def test_defaults_when_a_parameter_is_absent() -> None:
    """latest has no range; spread is at now; gaps cover the last day, other ranges the last hour."""
    latest = parse_request("latest", {"symbol": "BTCUSDT"}, NOW, 10)
    assert (latest.symbol, latest.type, latest.start) == ("BTCUSDT", "trade", None)
    assert parse_request("spread", {"symbol": "BTCUSDT"}, NOW, 10).at == NOW
    assert parse_request("gaps", {"symbol": "BTCUSDT"}, NOW, 10).start == NOW - timedelta(days=1)
    assert parse_request("range", {"symbol": "BTCUSDT"}, NOW, 10).start == NOW - timedelta(hours=1)
    spread_at = parse_request("spread", {"symbol": "BTCUSDT", "at": "1000"}, NOW, 10).at
    assert spread_at == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_unknown_and_missing_parameters_are_refused() -> None:
    """A parameter a command does not take names itself and lists the allowed ones; symbol is required."""
    with refused("at", "unknown parameter for latest; expected symbol, type"):
        parse_request("latest", {"symbol": "BTCUSDT", "at": "0"}, NOW, 10)
    with refused("symbol", "is required"):
        parse_request("latest", {"symbol": ""}, NOW, 10)
    with refused("at", "is required"):
        parse_request("price-at", {"symbol": "BTCUSDT"}, NOW, 10)
    with refused("limit", "out of range: expected 1 to 10"):
        parse_request("whales", {"symbol": "BTCUSDT", "limit": "11"}, NOW, 10)
    parse_request("candles", {"symbol": "BTCUSDT"}, NOW, 60)  # the last hour: 60 one-minute buckets
    with refused("bucket", "spans 60 rows, more than the maximum 59"):
        parse_request("candles", {"symbol": "BTCUSDT"}, NOW, 59)


def test_each_command_takes_its_parameters() -> None:
    """The commands and the parameters each accepts."""
    rng = ("from", "to", "last")
    assert {name: spec.params.names() for name, spec in SPECS.items()} == {
        "latest": ("symbol", "type"), "price-at": ("symbol", "at", "type"), "range": ("symbol", "type", *rng),
        "candles": ("symbol", "type", "bucket", "fill", *rng), "stats": ("symbol",),
        "spread": ("symbol", "at"),
        "sma": ("symbol", "type", "bucket", "window", *rng),
        "whales": ("symbol", "type", "threshold", "limit", *rng), "gaps": ("symbol", *rng),
        "audit": ("symbol", "stream", *rng), "export": ("symbol", "stream", "from", "to", "format"),
        "markets": rng,
    }  # fmt: skip


def test_an_offset_time_keeps_its_instant() -> None:
    """A time with a non-UTC offset is the same instant in UTC."""
    parsed = parse_time("2024-05-01T06:30:00-05:30", "at")
    assert parsed == datetime(2024, 5, 1, 6, 30, tzinfo=timezone(-timedelta(hours=5, minutes=30)))
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("command", "raw", "param"),
    [
        ("price-at", {"at": "soon"}, "at"),
        ("candles", {"fill": "maybe"}, "fill"),
        ("candles", {"bucket": "5x"}, "bucket"),
        ("sma", {"window": "0"}, "window"),
        ("sma", {"window": "1001"}, "window"),
        ("range", {"last": "5x"}, "last"),
        ("range", {"from": "soon"}, "from"),
        ("range", {"from": "0", "to": "soon"}, "to"),
    ],
)
def test_a_bad_value_names_the_parameter_it_came_in(command: str, raw: dict[str, str], param: str) -> None:
    """Through parse_request, every bad value is refused naming its own parameter."""
    with pytest.raises(InvalidArgument) as info:
        parse_request(command, {"symbol": "BTCUSDT", **raw}, NOW, 10_000)
    assert info.value.param == param


def test_the_smallest_sma_window_is_one() -> None:
    """window=1 is accepted."""
    assert parse_request("sma", {"symbol": "BTCUSDT", "window": "1"}, NOW, 1000).window == 1


@pytest.mark.parametrize(
    ("raw", "param", "message"),
    [
        ({"symbol": "BTCUSDT", "last": "1h", "from": "0"}, "last", "give either last or from/to, not both"),
        ({"symbol": "BTCUSDT", "to": "0"}, "from", "is required when to is given"),
        ({"symbol": " "}, "symbol", "' ' is not a symbol: expected 2-20 of A-Z 0-9, e.g. BTCUSDT"),
        ({}, "symbol", "is required"),
    ],
)
def test_whole_messages_of_range_and_required_errors(raw: dict[str, str], param: str, message: str) -> None:
    """These refusals carry exactly this message."""
    with pytest.raises(InvalidArgument) as info:
        parse_request("range", raw, NOW, 10)
    assert (info.value.param, info.value.message) == (param, message)


def test_now_is_a_time_where_the_request_has_a_clock() -> None:
    """'now' (any case) is the request's clock in at, from and to; parse_time without a clock refuses it."""
    assert parse_time(" NOW ", "at", NOW) == NOW
    with refused(
        "at", r"'now' is not a time: expected ISO 8601 \(e.g. 2024-05-01T12:00:00Z\), epoch ms or now$"
    ):
        parse_time("now", "at")
    assert parse_request("price-at", {"symbol": "BTCUSDT", "at": "now"}, NOW, 10).at == NOW
    req = parse_request("range", {"symbol": "BTCUSDT", "from": "now", "to": "Now"}, NOW, 10)
    assert (req.start, req.end) == (NOW, NOW)


def test_audit_takes_one_stream_or_both_and_lists_up_to_max_rows() -> None:
    """audit checks trade and aggTrade unless stream names one; its limit is max_rows."""
    both = parse_request("audit", {"symbol": "BTCUSDT"}, NOW, 77)
    assert (both.streams, both.limit) == (("trade", "aggTrade"), 77)
    assert parse_request("audit", {"symbol": "BTCUSDT", "stream": "aggTrade"}, NOW, 77).streams == (
        "aggTrade",
    )
    with refused("stream", "'bookTicker': expected trade or aggTrade$"):
        parse_request("audit", {"symbol": "BTCUSDT", "stream": "bookTicker"}, NOW, 77)
    with refused("type", "'x': expected trade or aggTrade$"):
        parse_request("range", {"symbol": "BTCUSDT", "type": "x"}, NOW, 77)


def test_a_too_long_series_names_what_the_caller_gave() -> None:
    """The range given with the default bucket names the range; a bucket given names the bucket."""
    twelve_hours_ago = (NOW - timedelta(hours=12)).isoformat()
    with refused("from", "spans 720 rows, more than the maximum 100: shorten it or widen the bucket"):
        parse_request("candles", {"symbol": "BTCUSDT", "from": twelve_hours_ago}, NOW, 100)
    with refused("last", "spans 120 rows"):
        parse_request("sma", {"symbol": "BTCUSDT", "last": "2h"}, NOW, 100)
    with refused("bucket", "spans 720 rows"):
        given = {"symbol": "BTCUSDT", "from": twelve_hours_ago, "bucket": "1m"}
        parse_request("candles", given, NOW, 100)
