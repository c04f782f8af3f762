"""The nightly job: the one place that assembles the feature packages into a night.

`nightly.steps` says which steps run, in what order, and what each needs; `nightly.run`
runs them under the run lock with the embedded engine held for the whole night and records
the run. The foundation (`pipeline/`) and the feature packages (`ingest/`, `health/`,
`watchlist/`, `api/`) never import this package.
"""
