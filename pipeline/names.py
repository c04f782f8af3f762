"""Names shared across packages: warehouse tables, reference files, and the constants the
dbt project shares with Python.

A leaf module (it imports nothing of the project) so every package can name a table or a
file without importing the package that writes it. The constants at the end also exist as
dbt vars in `dbt_project/dbt_project.yml`; tests/test_names.py fails when the two disagree.
"""

from __future__ import annotations

# --- warehouse databases and tables ----------------------------------------------------------
RAW, ANALYTICS, OPS = "raw", "analytics", "ops"
DATABASES = (RAW, ANALYTICS, OPS)

ORDER_FILLED = f"{RAW}.order_filled"
# One narrow row per stored fill id, keyed by its hash: how a load knows an id is stored.
ORDER_FILLED_IDS = f"{RAW}.order_filled_ids"
RESOLUTIONS = f"{RAW}.resolutions"
MARKETS_TABLE = f"{RAW}.markets"
CATEGORY_MAP = f"{RAW}.category_map"
MARKET_ID_LOOKUPS = f"{RAW}.market_id_lookups"
TOKEN_MAP = f"{RAW}.token_map"
RAW_TABLES = (ORDER_FILLED, RESOLUTIONS, MARKETS_TABLE, CATEGORY_MAP, MARKET_ID_LOOKUPS, TOKEN_MAP)

# The marts analysts, the API and the health report read (dbt_project/models/marts).
FCT_WALLET_POSITIONS = "fct_wallet_positions"
FCT_RESOLUTION_OUTCOMES = "fct_resolution_outcomes"
FCT_WALLET_CATEGORY_PNL = "fct_wallet_category_pnl"
DIM_MARKETS = "dim_markets"
# Realized PnL per wallet and UTC day, and its 1/7/30-day and all-time rankings (the API's
# leaderboard route and the health report read fct_leaderboard).
FCT_WALLET_DAILY_PNL = "fct_wallet_daily_pnl"
FCT_LEADERBOARD = "fct_leaderboard"
# Intermediate models Python reads: the traded tokens (one mark each) and their conditions.
INT_TOKEN_MARKS = "int_token_marks"
INT_TOKEN_CONDITIONS = "int_token_conditions"
MARTS = (
    FCT_WALLET_POSITIONS,
    FCT_RESOLUTION_OUTCOMES,
    FCT_WALLET_CATEGORY_PNL,
    DIM_MARKETS,
    FCT_WALLET_DAILY_PNL,
    FCT_LEADERBOARD,
)

# --- reference files in DATA_DIR (data/README.md, docs/schemas.md) ----------------------------
RESOLUTION_MAP = "expanded_resolution_map.json"
MARKETS = "markets.jsonl"
CATEGORY_DEFINITIONS = "category_definitions.json"
LOOKUPS = "market_id_lookup_results.jsonl"
BACKFILL = "backfilled_market_ids.json"
MARKETS_SEED = "markets_dim_seed.json"
# What the marts are built from, in load order.
REFERENCE_FILES = (CATEGORY_DEFINITIONS, MARKETS, RESOLUTION_MAP)
# Loaded when present; nothing downstream needs them yet.
OPTIONAL_REFERENCE_FILES = (LOOKUPS, BACKFILL)

# --- constants shared with the dbt project (vars in dbt_project.yml) --------------------------
# The bucket of markets that no category or tag rule maps (var `uncategorized`).
UNCATEGORIZED = "Uncategorized"
