"""Ingestion test checks the kit does not hold: topic records grouped by stream, and completeness
against the simulator's own tally. Ingestion itself runs from binance_pipeline.testing.stages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from binance_pipeline.testing.helpers import Record


def events_by_type(records: list[Record]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Decoded event values grouped by (type, symbol)."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        v = r.json()
        grouped.setdefault((v["type"], v["symbol"]), []).append(v)
    return grouped


def id_of(event: dict[str, Any]) -> int:
    return int(event["update_id"] if event["type"] == "bookTicker" else event["id"])


def assert_complete(stats: dict[str, Any], records: list[Record], types: Iterable[str]) -> None:
    """The topics hold every id the simulator generated, once (no hole, no duplicate)."""
    grouped = events_by_type(records)
    for symbol, per_type in stats["symbols"].items():
        for kind in types:
            s = per_type[kind]
            ids = [id_of(e) for e in grouped.get((kind, symbol), [])]
            dupes = [i for i, n in Counter(ids).items() if n > 1]
            assert not dupes, f"{symbol} {kind}: duplicate ids {dupes[:10]}"
            if kind == "bookTicker":
                assert len(ids) == s["sent"], f"{symbol} {kind}: {len(ids)} published, {s['sent']} sent"
                continue
            expected = set(range(s["first_id"], s["last_id"] + 1))
            assert len(expected) == s["generated"]
            missing = sorted(expected - set(ids))
            extra = sorted(set(ids) - expected)
            assert not missing, f"{symbol} {kind}: {len(missing)} ids missing, e.g. {missing[:10]}"
            assert not extra, f"{symbol} {kind}: unexpected ids {extra[:10]}"
