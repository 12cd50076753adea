"""Shared test helpers (plain modules imported by tests; fixtures live in tests/conftest.py)."""
