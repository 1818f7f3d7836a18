"""ingestion.shard: INGESTION_SHARD I/N splits the symbols between N instances by crc32 (pure)."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestion.shard import Shard

SYMBOL = st.from_regex(r"[A-Z0-9]{2,20}", fullmatch=True)


@given(st.lists(SYMBOL, unique=True, max_size=60), st.integers(1, 12))
def test_every_symbol_has_exactly_one_owner(symbols: list[str], count: int) -> None:
    """Across shards 1/N..N/N each symbol is selected exactly once, in its original order."""
    picks = [Shard(i, count).select(symbols) for i in range(1, count + 1)]
    assert sorted(s for pick in picks for s in pick) == sorted(symbols)
    for pick in picks:
        assert pick == [s for s in symbols if s in pick]


def test_owner_is_crc32_of_the_symbol_mod_n() -> None:
    """The rule is crc32(symbol) mod N == I - 1: stable across processes and hosts (not hash())."""
    assert zlib.crc32(b"BTCUSDT") % 3 == 0  # a fixed fact: the rule cannot drift unnoticed
    assert Shard(1, 3).owns("BTCUSDT") and not Shard(2, 3).owns("BTCUSDT")
    assert not Shard(3, 3).owns("BTCUSDT")
    assert [Shard(i, 3).owns("ETHUSDT") for i in (1, 2, 3)].count(True) == 1
    for name in ("ETHUSDT", "BNBUSDT", "X123USDT"):
        owner = zlib.crc32(name.encode()) % 5 + 1
        assert [i for i in range(1, 6) if Shard(i, 5).owns(name)] == [owner]


def test_one_of_one_owns_everything_and_spreads_evenly_with_more() -> None:
    """1/1 (the default) owns every symbol; with 3 shards of 300 names each gets a fair share."""
    names = [f"X{n:03d}USDT" for n in range(300)]
    assert Shard().whole and Shard().select(names) == names
    sizes = [len(Shard(i, 3).select(names)) for i in (1, 2, 3)]
    assert sum(sizes) == 300 and min(sizes) >= 70, sizes


def test_parse_accepts_i_of_n_and_rejects_the_rest() -> None:
    """'2/3' parses (spaces allowed); 0/3, 4/3, 3, a/b and 1/0 raise ValueError naming the form."""
    assert Shard.parse(" 2 / 3 ") == Shard(2, 3) and str(Shard.parse("2/3")) == "2/3"
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "", "-1/2", "1/2/3"):
        with pytest.raises(ValueError, match="I/N"):
            Shard.parse(bad)
