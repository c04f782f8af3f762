"""Answers of the mart routes, kept for API_MARTS_CACHE_S: the marts change once a night, and
a wallet's category PnL values its open positions when read (tens of milliseconds in the
engine's one reader), so repeated requests for the same wallet must not queue behind it."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

MAX_ENTRIES = 10_000  # bounds the memory: the least recently stored answer goes first


class AnswerCache:
    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> tuple[bool, Any]:
        """(True, answer) when a young enough answer is kept, else (False, None)."""
        entry = self._entries.get(key)
        if entry is None or time.monotonic() >= entry[0]:
            return False, None
        return True, entry[1]

    def put(self, key: Any, answer: Any) -> None:
        if self._ttl_s <= 0:
            return
        self._entries[key] = (time.monotonic() + self._ttl_s, answer)
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
