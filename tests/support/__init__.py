"""Helpers shared by the stack test (tests/stack) and the browser test (tests/e2e).

Imported as `tests.support` (tests/ is a package; pytest puts the repository root on sys.path).
"""
