"""Scale generator and benchmark harness (issues 8 and 12): `python -m bench.generate`,
`python -m bench.run`, and `python -m bench.reads` (the marts' reads on a run's base warehouse)."""
