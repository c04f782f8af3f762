"""Comparing what the warehouse holds with what the reference computes, key by key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def assert_same_rows(got: Mapping[Any, Any], want: Mapping[Any, Any]) -> None:
    """`got` and `want` hold the same keys with equal values; a failure names up to five
    differing keys with (got, want), and the keys only one side has."""
    mismatches = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    extra = set(got) - set(want)
    assert not mismatches and not extra, (list(mismatches.items())[:5], sorted(extra, key=str)[:5])


def keyed_ints(
    rows: Iterable[Sequence[Any]], key_len: int, values: slice | None = None
) -> dict[tuple, tuple]:
    """A query's rows as {key columns: value columns}, the shape the reference computes:
    the first `key_len` columns are the key, the `values` slice (default: the rest) the
    values, as Python ints (a boolean column such as is_resolved compares as 0 or 1)."""
    values = values or slice(key_len, None)
    return {tuple(r[:key_len]): tuple(int(v) for v in r[values]) for r in rows}
