"""A failure repeated on every request is one line per minute, and its end is one line with how long it lasted."""

from __future__ import annotations

import logging

import pytest
from footfall.core.logs import OncePer


def test_an_outage_is_said_once_a_minute_and_its_end_once_with_how_many_failed_and_for_how_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    down = OncePer(
        logging.getLogger("footfall.test"),
        "the database cannot answer",
        recovery="the database answers again",
        count_as="requests_refused",
        clock=lambda: now[0],
    )
    with caplog.at_level(logging.INFO, logger="footfall.test"):
        down.ended()  # nothing failed: nothing to say
        for _ in range(5):
            down.occurred()
            now[0] += 20.0
        down.ended()
        down.ended()
        down.occurred()  # a new outage, seconds after the last line: said at once
    lines = [(record.levelno, record.getMessage(), record.__dict__["fields"]) for record in caplog.records]
    assert [(level, message) for level, message, _ in lines] == [
        (logging.WARNING, "the database cannot answer"),
        (logging.WARNING, "the database cannot answer"),  # 60 s after the first
        (logging.INFO, "the database answers again"),
        (logging.WARNING, "the database cannot answer"),
    ]
    assert lines[1][2]["since_last_line"] == 2
    assert lines[2][2] == {"requests_refused": 5, "lasted_s": 100.0}
