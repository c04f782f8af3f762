"""Test helpers, shared by the test modules; fixtures are registered in tests/conftest.py
through `pytest_plugins`.

- `settings`: `make_settings` (every path under a temp folder) and the sample's fixed clock.
- `engine`: fixtures around the embedded engine (a directory another process holds; the
  sample run shared by read-only tests).
- `pg_fixtures`: throw-away Postgres databases.
- `watchlist_world`: a warehouse and app database with strategies, for the API and publish.
- `factories`: small builders of ids, fills and reference files.
- `goldsky_fake`: a local GraphQL server speaking the part of Goldsky's API we use, with faults.
- `pnl_reference`: an independent Python statement of the PnL rules.
- `api_helpers`: the API served on a free local port.
"""
