"""The ``footfall`` command's entry point (``footfall.cli:main``, and ``python -m footfall``).

This module imports only the standard library: the commands (:mod:`footfall.commandline`: typer and every part's
commands, about half a second of imports on a camera box) are imported inside :func:`main`, where a Ctrl-C is
caught. Imported here at start, a Ctrl-C in that half second ended in a KeyboardInterrupt traceback from the middle
of an import. ``footfall.cli.app`` still gives the Typer app (imported on first use).
"""

from __future__ import annotations

import signal
import sys

# typing.TYPE_CHECKING without importing typing: with logging, imported where it is used, that made this module take
# 12 ms to import instead of 1, time for a Ctrl-C to land where nothing catches it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import typer

# Ctrl-C's conventional exit status (128 + SIGINT), as typer gives it to a command a KeyboardInterrupt ends.
INTERRUPTED = 130


def __getattr__(name: str) -> typer.Typer:
    """``app``: the Typer app of :mod:`footfall.commandline`, imported when first asked for."""
    if name == "app":
        from footfall.commandline import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_stopped_by_sigterm = False
_interrupted = False


def _stop_as_on_ctrl_c(_signum: int, _frame: object) -> None:
    """SIGTERM (`kill`, a service manager, a CI timeout) taken as Ctrl-C: ``finally`` blocks and context managers
    run, so a stopped export or evaluation removes its scratch and staging folders. Python's default ends the
    process at once and left them (a half-written bundle beside the real one, scratch graphs in /tmp). The agent,
    the server and the demo set their own handlers when they start: they stop in their own order."""
    global _stopped_by_sigterm
    _stopped_by_sigterm = True
    # A second SIGTERM (docker stop, then a supervisor's own) must not cut the cleanup short: it is let pass (a
    # handler, not SIG_IGN, which a program started during the cleanup would inherit). A cleanup that hangs still
    # ends at the service manager's SIGKILL.
    signal.signal(signal.SIGTERM, _let_pass)
    raise KeyboardInterrupt


def _interrupt(_signum: int, _frame: object) -> None:
    """Ctrl-C, as Python's default handler takes it (a KeyboardInterrupt), remembered: typer turns the interrupt into
    exit 130, and :func:`main` says why the command stopped. Commands with their own handler (the agent once started,
    the server, the demo) replace this one."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _let_pass(_signum: int, _frame: object) -> None:
    pass


def _log_stopped(signal_name: str) -> None:
    """One line saying the command stopped on ``signal_name``, in the log's format; with the log's defaults where the
    signal came before the root options (--log-level, --log-json) were read."""
    import logging

    from footfall.core.logs import configure_logging, log_event

    if not logging.getLogger().handlers:
        configure_logging()
    log_event(logging.getLogger("footfall"), logging.INFO, "stopped", signal=signal_name)


def main() -> None:
    global _interrupted
    code: int | str | None
    try:  # everything inside: a Ctrl-C at any point of the start (the imports above all) is caught below
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _stop_as_on_ctrl_c)
        from footfall.commandline import app

        app()
        code = 0
    except SystemExit as end:  # how typer ends every run; Ctrl-C in a command is its exit 130
        code = end.code
    except KeyboardInterrupt:  # before typer took over (importing the commands, most likely)
        _interrupted, code = True, INTERRUPTED
    except Exception:
        # A Ctrl-C (or SIGTERM) inside a C extension's import comes out as that module's ImportError, not as the
        # KeyboardInterrupt: onnxruntime's 'initialization failed' while the agent starts. It is still the stop asked.
        if not (_interrupted or _stopped_by_sigterm):
            raise
        code = INTERRUPTED
    # From here on a second Ctrl-C must not turn the last line into a traceback.
    signal.signal(signal.SIGINT, _let_pass)
    if _stopped_by_sigterm:
        _log_stopped("SIGTERM")
        # Ended by the signal itself, as Python's default would: a service manager counts that as a clean stop
        # (systemd's default SuccessExitStatus), where it would count exit 130 or 143 as a failure.
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    if _interrupted and code == INTERRUPTED:
        _log_stopped("SIGINT")
    sys.exit(code)
