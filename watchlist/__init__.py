"""The platform side of the pipeline: the app database (PostgreSQL) and its watchlists.

- `watchlist.migrations`: versioned SQL migrations of the app database (`runner.py migrate`).
- `watchlist.signals`: what the ClickHouse marts say (signal wallets, their new positions,
  the fallback markets, the market metadata copied to Postgres).
- `watchlist.publish`: the pipeline step that fills the watchlists.
- `watchlist.app_models`: the dbt-postgres project `dbt_app/` the API reads.
"""
