"""Helpers shared by the stack test (tests/stack) and the browser test (tests/e2e).

Importable as `support` because pytest puts tests/ on sys.path for tests/conftest.py.
"""
