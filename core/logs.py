"""Structured logging: one line per event, human-readable or JSON lines (``--log-json``)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            event.update(extra)
        if record.exc_info and record.levelno >= logging.ERROR:
            event["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(event, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = self.formatTime(record, "%H:%M:%S")
        text = f"{when} {record.levelname.lower():7s} {record.name}: {record.getMessage()}"
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict) and extra:
            text += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        return text


def configure_logging(level: str = "info", *, as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def log_event(logger: logging.Logger, level: int, message: str, **fields: object) -> None:
    """Logs ``message`` with structured ``fields`` (shown as key=value, or merged into the JSON line)."""
    logger.log(level, message, extra={"fields": fields})


class FailureStreak:
    """Logs a run of the same failure once: its first occurrence at ``level``, the rest at DEBUG, and the recovery
    once at INFO. A disk that stays full would otherwise log a line per frame. Thread-safe."""

    def __init__(self, logger: logging.Logger, failure: str, recovery: str | None, *, level: int = logging.ERROR):
        """``recovery``: the line logged when it works again; None when another line says so already."""
        self.logger, self.failure, self.recovery, self.level = logger, failure, recovery, level
        self._failing = False
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self._failing

    def failed(self, **fields: object) -> None:
        with self._lock:
            first, self._failing = not self._failing, True
        log_event(self.logger, self.level if first else logging.DEBUG, self.failure, **fields)

    def succeeded(self, **fields: object) -> None:
        with self._lock:
            recovered, self._failing = self._failing, False
        if recovered and self.recovery is not None:
            log_event(self.logger, logging.INFO, self.recovery, **fields)


class OncePer:
    """Logs a recurring failure that has no success of its own to end it (each request failing while a database is
    down) at ``level`` at most once per ``seconds``, and the rest at DEBUG with how many came since. ``recovery``,
    if given, is logged once at INFO by the first :meth:`ended` that comes ``seconds`` after the last failure, with
    how many failed and for how long: a success between failures (a read while writes fail) ends nothing. Thread-safe.
    """

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        *,
        recovery: str | None = None,
        count_as: str = "failures",
        seconds: float = 60.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.logger, self.message, self.seconds, self.level, self.clock = logger, message, seconds, level, clock
        self.recovery, self.count_as = recovery, count_as
        self._said_at: float | None = None
        self._since = 0
        self._streak = 0  # failures since the last recovery line
        self._streak_began = self._last_failure = 0.0
        self._lock = threading.Lock()

    def occurred(self, **fields: object) -> None:
        with self._lock:
            now = self.clock()
            if self._streak == 0:
                self._streak_began = now
            self._streak, self._last_failure = self._streak + 1, now
            loud = self._said_at is None or now - self._said_at >= self.seconds
            if loud:
                self._said_at, folded, self._since = now, self._since, 0
            else:
                self._since += 1
                folded = self._since
        log_event(self.logger, self.level if loud else logging.DEBUG, self.message, since_last_line=folded, **fields)

    def ended(self, **fields: object) -> None:
        """A success: the recovery line, once, if failures came before and none for ``seconds``."""
        if self._streak == 0 or self.recovery is None:  # every request calls this: no lock on the common path
            return
        with self._lock:
            if self._streak == 0 or self.clock() - self._last_failure < self.seconds:
                return
            streak, self._streak = self._streak, 0
            lasted = self._last_failure - self._streak_began
        log_event(
            self.logger, logging.INFO, self.recovery, **{self.count_as: streak}, lasted_s=round(lasted, 1), **fields
        )
