"""The mart routes' answer cache: young answers are kept, old ones expire, memory is bounded."""

from __future__ import annotations

from api import answer_cache
from api.answer_cache import AnswerCache


def test_an_answer_is_kept_until_it_is_too_old(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(answer_cache.time, "monotonic", lambda: clock[0])
    cache = AnswerCache(60)
    assert cache.get("w") == (False, None)
    cache.put("w", [{"category": "Sports"}])
    clock[0] += 59.9
    assert cache.get("w") == (True, [{"category": "Sports"}])
    clock[0] += 0.1
    assert cache.get("w") == (False, None)


def test_a_zero_ttl_keeps_nothing_and_the_size_is_bounded(monkeypatch):
    off = AnswerCache(0)
    off.put("w", [])
    assert off.get("w") == (False, None)
    monkeypatch.setattr(answer_cache, "MAX_ENTRIES", 3)
    cache = AnswerCache(60)
    for key in "abcd":
        cache.put(key, key)
    assert cache.get("a") == (False, None) and cache.get("d") == (True, "d")
