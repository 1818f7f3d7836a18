"""binance_pipeline/common/events.py: the gap record's contract, field by field (``gap_problem``)."""

from __future__ import annotations

import pytest

from binance_pipeline.common.events import GAP_FIELDS, gap_problem
from binance_pipeline.testing.events import gap


def test_a_record_of_the_contract_has_no_problem() -> None:
    assert gap_problem(gap()) is None
    assert gap_problem(gap(kind="time", first_id=None, last_id=None, start_time=1, end_time=2)) is None


@pytest.mark.parametrize("field", ["type", "stream", "kind", "status"])
@pytest.mark.parametrize("value", ["nope", "", 1, None, ["gap"]])
def test_an_enumerated_field_takes_only_its_names(field: str, value: object) -> None:
    assert gap_problem(gap(**{field: value})) == f"field {field} does not follow the contract"


@pytest.mark.parametrize(("field", "values"), [
    ("type", ["gap"]),
    ("stream", ["trade", "aggTrade", "bookTicker"]),
    ("kind", ["ids", "time"]),
    ("status", ["open", "repaired", "unrepairable"]),
])
def test_an_enumerated_field_takes_each_of_its_names(field: str, values: list[str]) -> None:
    for value in values:
        record = gap(**{field: value}, start_time=1, end_time=2)
        assert gap_problem(record) is None, value


class Text(str):
    """A str subclass: JSON never decodes one, and the contract wants the plain type."""


def test_a_field_wants_the_plain_type_not_a_subclass() -> None:
    assert gap_problem(gap(type=Text("gap"))) == "field type does not follow the contract"
    assert gap_problem(gap(detected_at=True)) == "field detected_at does not follow the contract"


def test_each_field_is_required_in_order() -> None:
    for name in GAP_FIELDS:
        record = gap()
        del record[name]
        assert gap_problem(record) == f"missing field {name}"


def test_an_id_gap_needs_both_ids() -> None:
    assert gap_problem(gap(first_id=None)) == "an id gap without first_id and last_id"
    assert gap_problem(gap(last_id=None)) == "an id gap without first_id and last_id"


def test_not_an_object() -> None:
    assert gap_problem(["gap"]) == "not a JSON object"
