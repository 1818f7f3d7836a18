"""Answers of the query front ends and their three renderings: JSON, text tables, CSV (no I/O).

Rules:
  1. Decimals become strings written in plain positional notation with every digit the
     database returned (``format(d, "f")``: "87648.21000000", never "8.764821E+4" or a float).
  2. Datetimes become ISO 8601 UTC with microseconds and a ``Z``.
  3. The JSON document is the same for ``python -m db.query --json`` and the HTTP API.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

Cell = str | int | bool | None


@dataclass(frozen=True)
class Section:
    """One table of an answer; ``vertical`` shows a single record as name/value lines."""

    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    title: str | None = None
    vertical: bool = False


@dataclass(frozen=True)
class Answer:
    """What a command answers: the JSON document, its tables, notes for humans,
    ``no_data`` (a message) when the symbol has no data at all for the question, and the CLI's
    exit status for a printed answer (``audit``: 1 when the range is not complete)."""

    document: dict[str, Any]
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    no_data: str | None = None
    exit_status: int = 0


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """``value`` with Decimals, datetimes and dataclasses turned into JSON types (rules 1-2)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return iso(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def record(value: Any, columns: Sequence[str]) -> tuple[Cell, ...]:
    """The cells of a dataclass (or dict) for ``columns``, JSON-converted; None gives empty cells."""
    data = jsonable(value) if value is not None else {}
    return tuple(data.get(c) for c in columns)


def to_json(answer: Answer) -> bytes:
    return orjson.dumps(answer.document, option=orjson.OPT_INDENT_2)


def _text(cell: Cell) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, bool):
        return "true" if cell else "false"
    return str(cell)


def format_section(section: Section) -> str:
    """A fixed-width text table (or name/value lines for a vertical section)."""
    if section.vertical and len(section.rows) == 1:
        width = max(len(c) for c in section.columns)
        lines = [f"{c:<{width}}  {_text(v)}" for c, v in zip(section.columns, section.rows[0], strict=True)]
    else:
        cells = [list(section.columns)] + [[_text(v) for v in row] for row in section.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(section.columns))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(([section.title] if section.title else []) + lines)


def to_text(answer: Answer) -> str:
    parts = [format_section(s) for s in answer.sections] + list(answer.notes)
    return "\n\n".join(parts) + "\n"


def to_csv(answer: Answer) -> str:
    """Each section as CSV with a header row; sections are separated by one empty line."""
    out = io.StringIO()
    for i, section in enumerate(answer.sections):
        if i:
            out.write("\r\n")
        writer = csv.writer(out)
        writer.writerow(section.columns)
        for row in section.rows:
            writer.writerow(["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in row])
    return out.getvalue()
