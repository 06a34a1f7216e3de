"""Live tests: the real Function App under `func start`, over HTTP (opt-in, see conftest.py)."""
