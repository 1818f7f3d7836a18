"""Which ingestion instance owns which symbol when several split SYMBOLS (pure, no I/O).

``INGESTION_SHARD=I/N`` makes an instance the I-th of N that together capture SYMBOLS: each
resolves the patterns against exchangeInfo as usual, then keeps only the symbols it owns.

Rules:
  1. Instance I of N owns a symbol when ``crc32(symbol) mod N == I - 1``: crc32 of the symbol's
     ASCII bytes, the same on every host, Python version and run (never ``hash()``, which Python
     salts per process).
  2. Every symbol has exactly one owner among the N instances, whatever the others know: a
     listing is subscribed by its owner at its next refresh and by no other instance.
  3. The rule applies to every captured symbol, patterns' matches and exact names alike; ``1/1``
     (the default) owns every symbol, so one instance behaves as it always did.
  4. Ownership depends on the symbol and N only. Changing N moves about (N-1)/N of the symbols
     to another instance; their frontier entries are keyed by symbol and stream, not by shard,
     so the new owner picks them up when it starts (``ingestion.unfinished`` Rule 0). Stop every
     instance of the old N before starting the new ones: two owners of a symbol would both
     publish it and both write its frontier entries.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Instance ``index`` (from 1) of ``count``."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"a shard is I/N with 1 <= I <= N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> Shard(2, 3); raises ValueError on anything else."""
        index, sep, count = text.strip().partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValueError(f"a shard is I/N, e.g. 2/3, got {text!r}")
        return cls(int(index), int(count))

    @property
    def whole(self) -> bool:
        """True for 1/1: this instance owns every symbol (Rule 3)."""
        return self.count == 1

    def owns(self, symbol: str) -> bool:
        """Rule 1."""
        return zlib.crc32(symbol.encode("ascii")) % self.count == self.index - 1

    def select(self, symbols: Iterable[str]) -> list[str]:
        """The symbols this instance owns, in their order."""
        return [s for s in symbols if self.owns(s)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
