"""The stack and worker tests' fixtures live in tests/support (the browser test shares them)."""

from tests.support.fixtures import *  # noqa: F401,F403
