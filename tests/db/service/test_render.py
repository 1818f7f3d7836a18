"""The query answers' renderings (db.service.render): JSON values, text tables, CSV; no database."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from db.service.render import Answer, Section, format_section, iso, jsonable, record, to_csv, to_json, to_text


@dataclass(frozen=True)
class Row:
    price: Decimal
    at: datetime
    tags: tuple[str, ...]


AT = datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=UTC)


def test_iso_is_utc_with_microseconds_and_z() -> None:
    """Rule 2: any offset is converted to UTC, microseconds always written, Z for +00:00."""
    assert iso(AT) == "2026-03-04T05:06:07.000008Z"
    assert (
        iso(datetime(2026, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2))))
        == "2026-03-04T05:06:07.000000Z"
    )


def test_jsonable_converts_decimals_datetimes_dataclasses_dicts_and_sequences() -> None:
    """Rule 1 and 2 applied at any depth; other values pass unchanged."""
    value = {1: [Row(Decimal("8.764821E+4"), AT, ("a",))], "n": None, "b": True, "k": 3}
    assert jsonable(value) == {
        "1": [{"price": "87648.21", "at": "2026-03-04T05:06:07.000008Z", "tags": ["a"]}],
        "n": None, "b": True, "k": 3,
    }  # fmt: skip
    assert jsonable(Decimal("87648.21000000")) == "87648.21000000"
    assert jsonable(Decimal("1E+3")) == "1000"  # positional, never an exponent
    assert jsonable(Row) is Row  # a dataclass type is not an instance


def test_record_picks_the_columns_and_none_gives_empty_cells() -> None:
    """Cells in the columns' order, JSON-converted; a missing record is all None."""
    row = Row(Decimal("1.50"), AT, ())
    assert record(row, ["at", "price"]) == ("2026-03-04T05:06:07.000008Z", "1.50")
    assert record({"a": 1}, ["a", "b"]) == (1, None)
    assert record(None, ["a", "b"]) == (None, None)


def test_to_json_is_the_document_indented() -> None:
    """Rule 3: the document, two-space indented."""
    got = to_json(Answer({"a": [1], "b": "x"}))
    assert orjson.loads(got) == {"a": [1], "b": "x"}
    assert got == b'{\n  "a": [\n    1\n  ],\n  "b": "x"\n}'


def test_a_table_is_fixed_width_with_dashes_for_none_and_words_for_booleans() -> None:
    """Columns padded to the widest cell, two spaces apart, trailing spaces stripped."""
    section = Section(("name", "n", "ok"), [("a", 10, True), ("long name", None, False)], title="T")
    assert format_section(section) == "T\nname       n   ok\na          10  true\nlong name  -   false"


def test_a_table_without_title_starts_with_its_header() -> None:
    """No title line when the title is None or empty."""
    assert format_section(Section(("x",), [("1",)])) == "x\n1"
    assert format_section(Section(("x",), [("1",)], title="")) == "x\n1"


def test_a_vertical_single_record_is_name_value_lines() -> None:
    """Names padded to the longest, then two spaces and the value."""
    section = Section(("a", "longer"), [(1, None)], title="R", vertical=True)
    assert format_section(section) == "R\na       1\nlonger  -"


def test_a_vertical_section_of_several_rows_is_a_table() -> None:
    """vertical applies to exactly one row only."""
    section = Section(("a", "b"), [(1, 2), (3, 4)], vertical=True)
    assert format_section(section) == "a  b\n1  2\n3  4"
    assert format_section(Section(("a",), [], vertical=True)) == "a"


def test_to_text_joins_sections_and_notes_with_blank_lines() -> None:
    """Sections then notes, one blank line between, a final newline."""
    answer = Answer({}, [Section(("a",), [(1,)]), Section(("b",), [(2,)])], ["note 1", "note 2"])
    assert to_text(answer) == "a\n1\n\nb\n2\n\nnote 1\n\nnote 2\n"
    assert to_text(Answer({})) == "\n"


def test_to_csv_writes_headers_rows_and_a_blank_line_between_sections() -> None:
    """None is an empty field, booleans lower-case, fields quoted when needed."""
    answer = Answer({}, [Section(("a", "b"), [(None, True), ("x,Y", 3)]), Section(("c",), [(False,)])])
    assert to_csv(answer) == 'a,b\r\n,true\r\n"x,Y",3\r\n\r\nc\r\nfalse\r\n'
    assert to_csv(Answer({})) == ""


def test_iso_ignores_the_machine_s_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 2 holds when the process runs in another zone."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert iso(AT) == "2026-03-04T05:06:07.000008Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_row_of_another_width_than_the_columns_is_refused() -> None:
    """A row with more cells than columns raises instead of losing cells, in both layouts."""
    with pytest.raises(ValueError, match="zip"):
        format_section(Section(("a", "b"), [(1, 2), (1, 2, 3)]))
    with pytest.raises(ValueError, match="zip"):
        format_section(Section(("a", "b"), [(1, 2, 3)], vertical=True))
