"""Comparing what the warehouse holds with what the reference computes, key by key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def assert_same_rows(got: Mapping[Any, Any], want: Mapping[Any, Any]) -> None:
    """`got` and `want` hold the same keys with equal values; a failure names up to five
    differing keys with (got, want), and the keys only one side has."""
    mismatches = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    extra = set(got) - set(want)
    assert not mismatches and not extra, (list(mismatches.items())[:5], sorted(extra, key=str)[:5])
