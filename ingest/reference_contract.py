"""The one rule the reference files share: when a condition is resolved.

A leaf module (it imports nothing of the project) so that the loader
(ingest/reference_files.py), the validator (ingest/validation.py), the subgraph refresh
(ingest/refresh.py) and the sample generator read the same rule instead of importing each
other or re-stating it. The files' names are in pipeline/names.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

CONDITION_ID = re.compile(r"^0x[0-9a-f]{64}$")

# The resolution rule, stated once: a resolved outcome and the payout numerators
# (payout_yes, payout_no) that must come with it. YES: outcome index 0 won; NO: index 1 won;
# 50-50: UMA's "unknown" answer, each outcome token redeems at half (numerators [1, 1]).
# Any other combination is an error in the map; null outcome and null payouts is unresolved.
# dbt's var `resolution_payouts` states the same pairs for the models.
RESOLUTION_PAYOUTS: Mapping[str, tuple[int, int]] = {"YES": (1, 0), "NO": (0, 1), "50-50": (1, 1)}


def is_resolved(entry: Mapping[str, Any]) -> bool:
    """Resolved means an outcome of RESOLUTION_PAYOUTS with exactly its payout pair; a null
    payout is never 0 and never means NO."""
    expected = RESOLUTION_PAYOUTS.get(entry.get("resolved_outcome"))  # type: ignore[arg-type]
    return expected is not None and (entry.get("payout_yes"), entry.get("payout_no")) == expected


def outcome_of_payouts(numerators: list[int], denominator: int) -> str | None:
    """The map's outcome for a binary condition's payout vector at any common scale
    ([1, 0], [1000, 0], [5, 5] ...), or None when it is unresolved or not one of
    RESOLUTION_PAYOUTS (three outcomes, an uneven split, a vector that does not add up)."""
    if len(numerators) != 2 or denominator <= 0 or sum(numerators) != denominator:
        return None
    if any(n < 0 for n in numerators):
        return None
    scale = max(numerators)
    if scale == 0 or any(n not in (0, scale) for n in numerators):
        return None
    pair = (numerators[0] // scale, numerators[1] // scale)
    return next((outcome for outcome, payouts in RESOLUTION_PAYOUTS.items() if payouts == pair), None)
