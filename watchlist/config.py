"""The watchlist settings, read from the environment and validated before any work.

| variable | default | meaning |
|---|---|---|
| DEFAULT_MARKET_ID | unset | a market (decimal id) every strategy watches when signals fail |
| DEFAULT_CONDITION_IDS | unset | comma-separated conditions (`0x` + 64 lower-case hex), same use |
| WATCHLIST_FALLBACK_SIZE | 10 | most active unresolved markets per strategy when signals fail and no defaults are set |
| WATCHLIST_TOP_WALLETS | 20 | signal wallets: the best N by realized PnL among qualified wallets |
| WATCHLIST_MIN_RESOLVED_MARKETS | 3 | a qualified wallet traded at least this many resolved markets |
| WATCHLIST_MIN_COVERAGE | 0.10 | ... and at least this share of its traded markets resolved |
| WATCHLIST_LOOKBACK_HOURS | 72 | first publish only: positions opened this long before the newest fill |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.config import ConfigError, env_number

CONDITION_ID = re.compile(r"^0x[0-9a-f]{64}$")
MARKET_ID = re.compile(r"^[0-9]{1,78}$")


@dataclass(frozen=True)
class WatchlistConfig:
    default_market_id: str | None = None
    default_condition_ids: tuple[str, ...] = ()
    fallback_size: int = 10
    top_wallets: int = 20
    min_resolved_markets: int = 3
    min_coverage: float = 0.10
    lookback_hours: float = 72.0

    @property
    def has_defaults(self) -> bool:
        return bool(self.default_market_id or self.default_condition_ids)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WatchlistConfig:
        env = os.environ if env is None else env
        market = env.get("DEFAULT_MARKET_ID", "").strip() or None
        if market is not None and not MARKET_ID.match(market):
            raise ConfigError(
                f"DEFAULT_MARKET_ID={market!r} is not a market id (a decimal string such as '512345')"
            )
        conditions: list[str] = []
        raw = env.get("DEFAULT_CONDITION_IDS", "")
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            if not CONDITION_ID.match(part):
                raise ConfigError(
                    f"DEFAULT_CONDITION_IDS contains {part!r}, which is not a "
                    "condition id ('0x' + 64 lower-case hex characters)"
                )
            if part not in conditions:
                conditions.append(part)
        return cls(
            default_market_id=market,
            default_condition_ids=tuple(conditions),
            fallback_size=int(env_number(env, "WATCHLIST_FALLBACK_SIZE", 10, 1, 1000, kind=int)),
            top_wallets=int(env_number(env, "WATCHLIST_TOP_WALLETS", 20, 1, 100_000, kind=int)),
            min_resolved_markets=int(
                env_number(env, "WATCHLIST_MIN_RESOLVED_MARKETS", 3, 0, 1_000_000, kind=int)
            ),
            min_coverage=env_number(env, "WATCHLIST_MIN_COVERAGE", 0.10, 0.0, 1.0),
            lookback_hours=env_number(env, "WATCHLIST_LOOKBACK_HOURS", 72.0, 0.0, 24 * 3650),
        )
