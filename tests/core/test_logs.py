"""A failure repeated on every request is one line per minute, and its end is one line with how long it lasted."""

from __future__ import annotations

import logging

import pytest
from footfall.core.logs import OncePer


def _outage_log(clock: list[float]) -> OncePer:
    return OncePer(
        logging.getLogger("footfall.test"),
        "the database cannot answer",
        recovery="the database answers again",
        count_as="requests_refused",
        clock=lambda: clock[0],
    )


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(record.levelno, record.getMessage()) for record in caplog.records]


def test_an_outage_is_said_once_a_minute_and_its_end_once_with_how_many_failed_and_for_how_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    down = _outage_log(now)
    with caplog.at_level(logging.INFO, logger="footfall.test"):
        down.ended()  # nothing failed: nothing to say
        for _ in range(5):
            down.occurred()
            now[0] += 20.0
        down.ended()  # 20 s after the last failure: too soon to say it is over
        now[0] += 40.0
        down.ended()
        down.ended()
        down.occurred()  # a new outage: said at once
    assert _lines(caplog) == [
        (logging.WARNING, "the database cannot answer"),
        (logging.WARNING, "the database cannot answer"),  # 60 s after the first
        (logging.INFO, "the database answers again"),
        (logging.WARNING, "the database cannot answer"),
    ]
    assert caplog.records[1].__dict__["fields"]["since_last_line"] == 2
    assert caplog.records[2].__dict__["fields"] == {"requests_refused": 5, "lasted_s": 80.0}


def test_successes_between_failures_end_nothing_and_the_failures_stay_one_line_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found in review: a full disk fails every write while the API key of each request is still read. Each read
    ended the outage, so every write warned again and a false 'answers again' came between (two lines a request)."""
    now = [100.0]
    down = _outage_log(now)
    with caplog.at_level(logging.INFO, logger="footfall.test"):
        for _ in range(10):
            down.ended()  # the key is read
            down.occurred()  # the write fails
            now[0] += 1.0
    assert _lines(caplog) == [(logging.WARNING, "the database cannot answer")]
