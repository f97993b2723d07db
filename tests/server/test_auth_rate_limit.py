"""Failed API-key attempts are rate-limited per client address (issue: about 37 guesses/s went unanswered).

After ``FOOTFALL_AUTH_FAILURES_PER_MINUTE`` failures within a minute, every further request with a key from that
address gets 429 with Retry-After, without its key being looked at, until the oldest failure leaves the window.
The clock is injected: no test sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from footfall.server.auth_limit import FailedAuthLimiter, LockedOut, TooManyInFlight
from footfall.server.settings import Settings

from tests.server.conftest import Server, make_server
from tests.waiting import eventually

LIMIT = 10
WRONG = {"X-API-Key": "ffk_a-guess-that-is-not-a-key"}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def limited(sqlite_server: Server, clock: Clock) -> Server:
    """The app with a limiter of LIMIT failures per minute on the test's clock."""
    sqlite_server.client.app.state.context.auth_failures = FailedAuthLimiter(LIMIT, clock=clock)
    return sqlite_server


@pytest.fixture()
def elsewhere(limited: Server) -> Iterator[TestClient]:
    """A second client of the same app, from another address."""
    with TestClient(limited.client.app, client=("203.0.113.7", 50000)) as other:
        yield other


@pytest.fixture()
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every key the server looks up."""
    from footfall.server.api import deps

    seen: list[str] = []
    original = deps.authenticate

    def counting(session, key):  # type: ignore[no-untyped-def]
        seen.append(key)
        return original(session, key)

    monkeypatch.setattr(deps, "authenticate", counting)
    return seen


def hammer(client: TestClient, times: int, headers: dict[str, str] = WRONG) -> list[int]:
    return [client.get("/api/v1/sites", headers=headers).status_code for _ in range(times)]


def test_guessing_stops_after_the_limit_with_429_and_retry_after(limited: Server, lookups: list[str]) -> None:
    assert hammer(limited.client, LIMIT) == [401] * LIMIT
    assert len(lookups) == LIMIT

    for headers in (WRONG, {"Authorization": "Bearer ffk_another-guess"}):
        response = limited.client.get("/api/v1/sites", headers=headers)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "60"
        detail = response.json()["detail"]
        assert "too many failed API-key attempts" in detail and "60 s" in detail
    assert hammer(limited.client, 200) == [429] * 200
    assert len(lookups) == LIMIT, "a locked-out address must not get its keys checked"


def test_a_correct_key_from_the_locked_address_is_refused_too(limited: Server, lookups: list[str]) -> None:
    """Safer than letting it through: if a good key passed during the lock-out, the guesser could keep guessing
    and tell a hit (200) from a miss (429), so the limit would stop nothing. A legitimate client sharing the
    address waits out the minute."""
    hammer(limited.client, LIMIT)
    response = limited.get("/api/v1/sites", role="viewer")
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert limited.keys["viewer"] not in lookups


def test_another_address_is_not_affected(limited: Server, elsewhere: TestClient) -> None:
    hammer(limited.client, LIMIT + 5)
    assert elsewhere.get("/api/v1/sites", headers=limited.headers("viewer")).status_code == 200
    assert hammer(elsewhere, LIMIT) == [401] * LIMIT  # its own budget
    assert hammer(elsewhere, 1) == [429]


def test_the_window_slides_and_frees_without_sleeping(limited: Server, clock: Clock) -> None:
    assert hammer(limited.client, LIMIT // 2) == [401] * (LIMIT // 2)
    clock.advance(30)
    assert hammer(limited.client, LIMIT // 2) == [401] * (LIMIT // 2)
    response = limited.client.get("/api/v1/sites", headers=WRONG)
    assert response.status_code == 429 and response.headers["Retry-After"] == "30"  # when the first half expires

    clock.advance(29.5)
    assert limited.client.get("/api/v1/sites", headers=WRONG).headers["Retry-After"] == "1"  # rounded up
    clock.advance(0.5)
    assert limited.get("/api/v1/sites", role="viewer").status_code == 200
    assert hammer(limited.client, LIMIT // 2 + 1) == [401] * (LIMIT // 2) + [429]  # only the first half freed

    clock.advance(60)
    assert hammer(limited.client, LIMIT + 1) == [401] * LIMIT + [429]


def test_successes_are_not_limited_and_do_not_reset_the_count(limited: Server) -> None:
    assert hammer(limited.client, 100, limited.headers("viewer")) == [200] * 100
    hammer(limited.client, LIMIT - 1)
    assert limited.get("/api/v1/sites", role="viewer").status_code == 200
    # A success must not wipe the failures: a holder of one low key could otherwise guess others without end.
    assert hammer(limited.client, 2) == [401, 429]


def test_missing_keys_and_wrong_roles_are_not_failed_guesses(limited: Server) -> None:
    assert [limited.client.get("/api/v1/sites").status_code for _ in range(LIMIT * 2)] == [401] * (LIMIT * 2)
    assert hammer(limited.client, LIMIT * 2, limited.headers("agent")) == [403] * (LIMIT * 2)  # a good key
    assert limited.get("/api/v1/sites", role="viewer").status_code == 200


def test_a_database_fault_is_not_counted_as_a_guess(limited: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from footfall.server.api import deps

    def broken(session, key):  # type: ignore[no-untyped-def]
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(deps, "authenticate", broken)
    client = TestClient(limited.client.app, raise_server_exceptions=False)
    assert hammer(client, LIMIT * 2, limited.headers("viewer")) == [500] * (LIMIT * 2)
    monkeypatch.undo()
    assert limited.get("/api/v1/sites", role="viewer").status_code == 200


def test_each_lock_out_is_logged_once(limited: Server, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="footfall.server"):
        hammer(limited.client, LIMIT + 20)
        clock.advance(60)
        hammer(limited.client, LIMIT + 20)
    events = [r for r in caplog.records if r.getMessage() == "API key failures over the limit; address locked out"]
    assert len(events) == 2
    assert events[0].levelno == logging.WARNING
    assert events[0].fields == {"client": "testclient", "failures": LIMIT, "window_s": 60, "retry_after_s": 60}
    assert WRONG["X-API-Key"] not in caplog.text  # never log what was tried


def test_the_limit_comes_from_the_setting_and_zero_turns_it_off(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for server in make_server(f"sqlite:///{tmp_path / 'three.db'}", auth_failures_per_minute=3):
        assert hammer(server.client, 4) == [401, 401, 401, 429]
    for server in make_server(f"sqlite:///{tmp_path / 'off.db'}", auth_failures_per_minute=0):
        assert hammer(server.client, 50) == [401] * 50


def test_the_setting_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().auth_failures_per_minute == 10
    monkeypatch.setenv("FOOTFALL_AUTH_FAILURES_PER_MINUTE", "25")
    assert Settings.from_env().auth_failures_per_minute == 25
    monkeypatch.setenv("FOOTFALL_AUTH_FAILURES_PER_MINUTE", "-1")
    with pytest.raises(ValueError, match="auth_failures_per_minute"):
        Settings.from_env()


# The limiter itself.


def test_attempts_in_flight_wait_rather_than_slip_past_the_limit(clock: Clock) -> None:
    """A burst of simultaneous guesses cannot slip past the limit between the check and the lookup: while the
    address's failures and attempts in flight fill the limit, the next attempt waits for one to be judged (and gives
    up after wait_s), and only failures stay counted."""
    limiter = FailedAuthLimiter(3, clock=clock, wait_s=0.05)
    admitted = [limiter.attempt("198.51.100.1") for _ in range(3)]
    with pytest.raises(TooManyInFlight) as busy:
        limiter.attempt("198.51.100.1")
    assert busy.value.retry_after == 1 and limiter.retry_after("198.51.100.1") == 0
    limiter.take_back(admitted[1])  # a good key
    admitted[1] = limiter.attempt("198.51.100.1")
    assert [limiter.failed(attempt) for attempt in admitted] == [False, False, True]  # the third locks it out
    with pytest.raises(LockedOut) as locked:
        limiter.attempt("198.51.100.1")
    assert not isinstance(locked.value, TooManyInFlight) and locked.value.retry_after == 60


def test_good_keys_sent_at_once_all_pass_and_a_burst_of_guesses_gets_no_more_than_the_limit(clock: Clock) -> None:
    """Found by an adversarial review: 60 requests at once with one good key from one address got 14 refusals
    (429), as every user behind one proxy would; attempts in flight counted as failures until judged."""
    limiter = FailedAuthLimiter(10, clock=clock)
    start = threading.Barrier(60)

    def request(good: bool) -> str:
        start.wait()
        try:
            attempt = limiter.attempt("198.51.100.1")
        except LockedOut:
            return "refused"
        time.sleep(0.01)  # the key lookup
        if good:
            limiter.take_back(attempt)
            return "passed"
        limiter.failed(attempt)
        return "looked up"

    with ThreadPoolExecutor(60) as pool:
        assert Counter(pool.map(request, [True] * 60)) == {"passed": 60}
        assert Counter(pool.map(request, [False] * 60)) == {"looked up": 10, "refused": 50}
    assert limiter.tracked() == 1


def test_the_attempt_that_fills_the_window_says_so(clock: Clock) -> None:
    limiter = FailedAuthLimiter(2, clock=clock)
    assert [limiter.failed(limiter.attempt("a")) for _ in range(2)] == [False, True]
    disabled = FailedAuthLimiter(0, clock=clock)
    assert not disabled.failed(disabled.attempt("a"))


def test_addresses_whose_failures_expired_are_forgotten(clock: Clock) -> None:
    limiter = FailedAuthLimiter(5, clock=clock)
    for n in range(1000):
        limiter.failed(limiter.attempt(f"10.0.{n // 256}.{n % 256}"))
    assert limiter.tracked() == 1000
    clock.advance(61)
    limiter.failed(limiter.attempt("10.9.9.9"))
    assert limiter.tracked() == 1


def test_a_disabled_limiter_counts_nothing(clock: Clock) -> None:
    limiter = FailedAuthLimiter(0, clock=clock)
    for _ in range(1000):
        limiter.failed(limiter.attempt("a"))
    assert limiter.retry_after("a") == 0 and limiter.tracked() == 0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="per_window"):
        FailedAuthLimiter(-1)
    with pytest.raises(ValueError, match="window_s"):
        FailedAuthLimiter(5, window_s=0)


def test_a_burst_of_requests_with_a_good_key_is_all_answered_through_a_real_server(tmp_path: Path) -> None:
    """Found by an adversarial review of the waiting above: 60 requests at once through uvicorn took 30 s and got
    37-40 503s. Each filled one of AnyIO's 40 worker threads waiting for a pooled connection (SQLite's pool holds 15)
    while those holding one waited for a thread to finish in, until the pool's timeout. The server now lets 8 such
    requests in at once and the rest wait in the event loop; a burst of guesses still gets the limit's lookups."""
    import asyncio

    import httpx
    import uvicorn
    from footfall.server.app import create_app
    from footfall.server.auth import create_key

    from footfall.broker import free_port

    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'burst.db'}", retention_days=None), start_background=False
    )
    with app.state.context.db.write() as session:
        good = create_key(session, "burst", "viewer")[0]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    async def burst(count: int, key: str) -> Counter[int | str]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
            answers = await asyncio.gather(
                *[client.get("/api/v1/sites", headers={"X-API-Key": key}) for _ in range(count)],
                return_exceptions=True,
            )
        return Counter(getattr(answer, "status_code", type(answer).__name__) for answer in answers)

    try:
        assert eventually(lambda: server.started, 20)
        started = time.monotonic()
        assert asyncio.run(burst(100, good)) == {200: 100}
        assert time.monotonic() - started < 20  # seconds on a loaded machine, not the pool's 30 s timeout
        assert asyncio.run(burst(60, WRONG["X-API-Key"])) == {401: LIMIT, 429: 60 - LIMIT}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
