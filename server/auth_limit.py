"""A sliding-window limit on failed API-key attempts per client address, kept in memory.

An address may fail ``per_window`` times within any ``window_s`` seconds; after that every attempt it makes is
refused (``LockedOut``, with the seconds to wait) until its oldest counted failure leaves the window. Keys are
256-bit random tokens, so this is not what keeps them safe; it keeps a guesser from hammering the database and
filling the log, and makes a leaked-in-part key no quicker to complete.

Each attempt counts as a failure from the moment it is admitted until ``take_back`` uncounts it, so a burst of
simultaneous guesses cannot slip past the limit between the check and the key lookup.

Counts live in this server process only: N replicas behind a balancer each allow ``per_window`` failures per
address, and a restart forgets them. Behind a reverse proxy every client has the proxy's address unless the ASGI
server is told to trust its X-Forwarded-For (uvicorn: ``FORWARDED_ALLOW_IPS``).

Why not the ``limits`` package: what is needed is the last ``per_window`` failure times per address and a way to
take one back, about fifty lines here; ``limits`` would add a dependency whose moving window reads the wall clock
itself (tests would have to patch its internals to move time) and has no "take back" for an attempt that succeeded.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    """An admitted attempt; hand it to ``take_back`` when the key proves good."""

    client: str
    at: float
    fills_window: bool  # if this attempt fails, its address is locked out


class LockedOut(Exception):
    def __init__(self, client: str, retry_after: int):
        super().__init__(f"{client} is locked out for {retry_after} s")
        self.client = client
        self.retry_after = retry_after


class FailedAuthLimiter:
    """``per_window`` failed attempts per address within ``window_s`` seconds; 0 turns the limit off."""

    def __init__(self, per_window: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        if per_window < 0:
            raise ValueError(f"per_window must be 0 (no limit) or more, not {per_window}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, not {window_s}")
        self.per_window = per_window
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}  # per address: its failure times, oldest first
        self._lock = threading.Lock()  # sync dependencies run in a thread pool
        self._next_sweep = clock() + window_s

    def attempt(self, client: str) -> Attempt:
        """Admits an attempt from ``client`` and counts it as failed, or raises ``LockedOut`` counting nothing."""
        now = self.clock()
        if not self.per_window:
            return Attempt(client, now, fills_window=False)
        with self._lock:
            self._sweep(now)
            failures = self._recent(client, now)
            if len(failures) >= self.per_window:
                raise LockedOut(client, self._wait(failures, now))
            failures.append(now)
            self._failures[client] = failures
            return Attempt(client, now, fills_window=len(failures) == self.per_window)

    def take_back(self, attempt: Attempt) -> None:
        """Uncounts an admitted attempt whose key was good, or never judged (a database fault)."""
        with self._lock:
            failures = self._failures.get(attempt.client)
            if failures is not None and attempt.at in failures:
                failures.remove(attempt.at)
                if not failures:
                    del self._failures[attempt.client]

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` may try again; 0 when it may now."""
        if not self.per_window:
            return 0
        with self._lock:
            now = self.clock()
            failures = self._recent(client, now)
            return self._wait(failures, now) if len(failures) >= self.per_window else 0

    def tracked(self) -> int:
        """How many addresses are held in memory."""
        with self._lock:
            return len(self._failures)

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def _wait(self, failures: deque[float], now: float) -> int:
        return max(1, math.ceil(failures[0] + self.window_s - now))

    def _sweep(self, now: float) -> None:
        """Once a window, forgets the addresses whose failures have all expired, so memory follows the guessers of
        the last minute or two rather than every address ever seen."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window_s
        cutoff = now - self.window_s
        for client in [c for c, failures in self._failures.items() if not failures or failures[-1] <= cutoff]:
            del self._failures[client]
