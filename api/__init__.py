"""The Cascadian read API: `api.app.create_app()`, served by `runner.py serve` (uvicorn)."""
