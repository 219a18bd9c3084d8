"""The shared input and output checks on their own (no I/O)."""

from __future__ import annotations

import pytest

from shared.db import BIGINT_MAX, BIGINT_MIN
from shared.sanitize import csv_cell, json_errors, valid_correlation_id


@pytest.mark.parametrize(("value", "written"), [
    ("=SUM(A1:A2)", "'=SUM(A1:A2)"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("Nguyễn Văn An", "Nguyễn Văn An"), ("a=b", "a=b"),
    ("", ""), (-5, -5), (1.5, 1.5), (None, None),
])
def test_csv_cells_that_would_run_as_formulas_are_prefixed(value, written):
    assert csv_cell(value) == written


def test_json_errors_name_each_nul_and_each_integer_past_a_bigint():
    body = {"members": [{"full_name": "ok"}, {"full_name": "a\x00b"}],
            "facts": {"k\x00": 1, "big": BIGINT_MAX + 1, "small": BIGINT_MIN - 1,
                      "fits": BIGINT_MAX, "flag": True}}
    assert [(e["field"], e["type"]) for e in json_errors(body)] == [
        ("facts.big", "int_out_of_range"), ("facts.k\\u0000", "string_nul"),
        ("facts.small", "int_out_of_range"), ("members.1.full_name", "string_nul")]


def test_json_errors_walk_deep_bodies_without_recursion():
    deep: list = ["\x00"]
    for _ in range(5000):
        deep = [deep]
    assert len(json_errors(deep)) == 1


@pytest.mark.parametrize(("value", "ok"), [
    ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", True), ("job-42:retry.1", True),
    ("x" * 128, True), ("x" * 129, False), ("", False), ("a b", False), ("a\x00", False),
    ("<script>", False), ("a\nb", False),
])
def test_correlation_ids_are_plain_tokens(value, ok):
    assert valid_correlation_id(value) is ok
