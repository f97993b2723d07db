"""A sliding-window limit on failed API-key attempts per client address, kept in memory.

An address may fail ``per_window`` times within any ``window_s`` seconds; after that every attempt it makes is
refused (``LockedOut``, with the seconds to wait) until its oldest counted failure leaves the window. Keys are
256-bit random tokens, so this is not what keeps them safe; it keeps a guesser from hammering the database and
filling the log, and makes a leaked-in-part key no quicker to complete.

An attempt is admitted only while the address's failures plus its attempts in flight (admitted, not yet judged)
stay under the limit, so a burst of simultaneous guesses cannot slip past it between the check and the key lookup.
An attempt beyond that waits (up to ``wait_s``) for those in flight to be judged, rather than being refused: the
dashboard asks a dozen things at once with one good key, and every user behind one proxy shares an address (a
refusal there locked good keys out, though successes are not limited). Only a failure stays counted.

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
    """An admitted attempt; hand it to ``failed`` when its key proves wrong, else to ``take_back``."""

    client: str
    at: float


class LockedOut(Exception):
    detail = "too many failed API-key attempts from this address"  # what the client is told, before when to retry

    def __init__(self, client: str, retry_after: int):
        super().__init__(f"{client} is locked out for {retry_after} s")
        self.client = client
        self.retry_after = retry_after


class TooManyInFlight(LockedOut):
    """An attempt waited ``wait_s`` and the address still had as many attempts in flight as the limit allows."""

    detail = "too many API-key checks in flight from this address"


class FailedAuthLimiter:
    """``per_window`` failed attempts per address within ``window_s`` seconds; 0 turns the limit off."""

    def __init__(
        self,
        per_window: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wait_s: float = 10.0,
    ):
        if per_window < 0:
            raise ValueError(f"per_window must be 0 (no limit) or more, not {per_window}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, not {window_s}")
        self.per_window = per_window
        self.window_s = window_s
        self.wait_s = wait_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}  # per address: its failure times, oldest first
        self._in_flight: dict[str, int] = {}  # per address: attempts admitted and not yet judged
        self._judged = threading.Condition(threading.Lock())  # sync dependencies run in a thread pool
        self._next_sweep = clock() + window_s

    def attempt(self, client: str) -> Attempt:
        """Admits an attempt from ``client``, waiting while its attempts in flight fill what the limit leaves; raises
        ``LockedOut`` where its failures reach the limit, ``TooManyInFlight`` where the wait runs out."""
        now = self.clock()
        if not self.per_window:
            return Attempt(client, now)
        deadline = time.monotonic() + self.wait_s
        with self._judged:
            while True:
                now = self.clock()
                self._sweep(now)
                failures = self._recent(client, now)
                if len(failures) >= self.per_window:
                    raise LockedOut(client, self._wait(failures, now))
                in_flight = self._in_flight.get(client, 0)
                if len(failures) + in_flight < self.per_window:
                    self._in_flight[client] = in_flight + 1
                    return Attempt(client, now)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TooManyInFlight(client, 1)
                self._judged.wait(left)

    def take_back(self, attempt: Attempt) -> None:
        """Ends an admitted attempt whose key was good, or never judged (a database fault): nothing stays counted."""
        if not self.per_window:
            return
        with self._judged:
            self._end(attempt.client)

    def failed(self, attempt: Attempt) -> bool:
        """Counts an admitted attempt whose key was wrong; True where that failure locks its address out."""
        if not self.per_window:
            return False
        with self._judged:
            self._end(attempt.client)
            now = self.clock()
            failures = self._recent(attempt.client, now)
            failures.append(now)
            self._failures[attempt.client] = failures
            return len(failures) == self.per_window

    def _end(self, client: str) -> None:
        left = self._in_flight.get(client, 0) - 1
        if left > 0:
            self._in_flight[client] = left
        else:
            self._in_flight.pop(client, None)
        self._judged.notify_all()

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` may try again; 0 when it may now."""
        if not self.per_window:
            return 0
        with self._judged:
            now = self.clock()
            failures = self._recent(client, now)
            return self._wait(failures, now) if len(failures) >= self.per_window else 0

    def tracked(self) -> int:
        """How many addresses are held in memory."""
        with self._judged:
            return len(self._failures.keys() | self._in_flight.keys())

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
