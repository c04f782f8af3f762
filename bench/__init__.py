"""Scale generator and benchmark harness (issue 8): `python -m bench.generate`, `python -m bench.run`."""
