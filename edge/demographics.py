"""The demographics mode an agent applies (footfall.core.wire.DemographicsMode): the stricter of what its site's
server told it and the floor in its own config, remembered across restarts.

- "full": people are counted and classified: gender, and age band where the gender bundle has an age head;
- "gender-only": people are counted and their gender decided; no age is estimated: the agent serves the bundle's
  graphs pruned to the gender output (``model-gender.onnx``), so no age head runs, and aggregates carry no age
  bands (a bundle exported before those graphs: its age output is computed in the same pass and never read);
- "counts-only": people are counted; no classifier is loaded or run, and aggregates carry no gender;
- "off": no camera is read and nothing is counted.

The server's word is remembered in a small file beside the outbox, so an agent restarted while the broker is
away goes on in the mode it was last told instead of classifying again; the config's floor is one the server
cannot loosen (an operator who must never classify at a site says so on the box itself).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import cast

from footfall.core.logs import log_event
from footfall.core.wire import DEMOGRAPHICS_MODES, AggregateMessage, DemographicsMode, WireError, encode, parse_message

logger = logging.getLogger("footfall.edge.demographics")


def stricter(first: DemographicsMode, second: DemographicsMode) -> DemographicsMode:
    """The stricter of two modes (full < gender-only < counts-only < off)."""
    return first if DEMOGRAPHICS_MODES.index(first) >= DEMOGRAPHICS_MODES.index(second) else second


def remembered_path(outbox_path: Path) -> Path:
    """Where the mode the server last told is kept: beside the outbox, in the agent's state folder."""
    return outbox_path.with_name(outbox_path.name + ".demographics.json")


def remembered(path: Path) -> DemographicsMode | None:
    """The mode the server last told this agent, or None (never told, or the file is unreadable: logged)."""
    try:
        mode = json.loads(path.read_text(encoding="utf-8")).get("demographics")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as exc:
        log_event(
            logger, logging.WARNING, "cannot read the remembered demographics mode", path=str(path), error=str(exc)
        )
        return None
    if mode not in DEMOGRAPHICS_MODES:
        log_event(
            logger, logging.WARNING, "ignored an unknown remembered demographics mode", path=str(path), mode=str(mode)
        )
        return None
    return cast(DemographicsMode, mode)


def remember(path: Path, mode: DemographicsMode) -> None:
    """Writes the told mode atomically (a power cut leaves the old file or the new one, never half of one)."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        with temporary.open("w", encoding="utf-8") as file:
            json.dump({"demographics": mode}, file)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        log_event(logger, logging.ERROR, "cannot remember the demographics mode", path=str(path), error=str(exc))


def classifies(mode: DemographicsMode) -> bool:
    """Whether a mode decides people's gender (loads and runs the classifier)."""
    return mode in ("full", "gender-only")


def estimates_age(mode: DemographicsMode) -> bool:
    """Whether a mode estimates people's age (reads the classifier's age head, where it has one)."""
    return mode == "full"


def within_mode(message: AggregateMessage, mode: DemographicsMode) -> AggregateMessage:
    """``message`` as ``mode`` lets it leave the box: no age bands unless the mode estimates age, no gender (nor
    the classifier that decided it) unless it classifies."""
    if not estimates_age(mode):
        message = message.model_copy(update={"age": None})
    if not classifies(mode):
        message = message.model_copy(update={"gender": None, "classifier": None})
    return message


def without_gender(payload: bytes) -> Callable[[int], bytes] | None:
    """For ``Outbox.rewrite``: an aggregate that carries gender becomes the same counts without it (and without
    a classifier or age bands) under the new seq; anything else stays as it is."""
    return _rewritten_within(payload, "counts-only")


def without_age(payload: bytes) -> Callable[[int], bytes] | None:
    """For ``Outbox.rewrite``: an aggregate that carries age bands becomes the same counts (and gender) without
    them under the new seq; anything else stays as it is."""
    return _rewritten_within(payload, "gender-only")


def stripper(mode: DemographicsMode) -> Callable[[bytes], Callable[[int], bytes] | None] | None:
    """What ``Outbox.rewrite`` must take out of queued aggregates for ``mode`` (None: nothing)."""
    if not classifies(mode):
        return without_gender
    if not estimates_age(mode):
        return without_age
    return None


def _rewritten_within(payload: bytes, mode: DemographicsMode) -> Callable[[int], bytes] | None:
    """A queued aggregate as ``mode`` lets it leave the box (``within_mode``), under the seq the outbox gives it;
    None where it already may, or where it is not an aggregate."""
    try:
        message = parse_message(payload)
    except WireError:
        return None  # not ours to mend: the server dead-letters it with its reason
    if not isinstance(message, AggregateMessage):
        return None
    allowed = within_mode(message, mode)
    if allowed == message:
        return None

    def build(seq: int) -> bytes:
        return encode(allowed.model_copy(update={"seq": seq}))

    return build
