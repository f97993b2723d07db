"""Waiting on a condition, never on a fixed sleep: the suite must hold on a loaded machine."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Polls ``condition`` until it holds or ``timeout`` seconds pass; returns whether it held (checked once
    more at the deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """:func:`eventually`, raising AssertionError when the condition never held."""
    if not eventually(condition, timeout):
        raise AssertionError("condition not met in time")
