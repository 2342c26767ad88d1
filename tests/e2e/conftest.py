"""The browser test drives the same local stack as tests/stack (fixtures from tests/support)."""

from tests.support.fixtures import *  # noqa: F401,F403
