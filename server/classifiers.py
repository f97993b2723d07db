"""The gender bundles behind the counts: which bundle decided each zone × hour cell, and each bundle's decision
rates (footfall.core.quantify.DecisionRates), reported by the agents that serve it.

A cell is attributed to **one** bundle, and its share is corrected with that bundle's rates. The attribution
is worked out from the raw **buckets** each bundle sent for the cell, not from its people: an agent sends every
zone of a running camera a bucket each bucket period, empty or not, so which bundles sent buckets, and how many,
is fleet configuration (which boxes ran which bundle, and for how long), whatever the people. Attributed from the
people, whether a cell gets a corrected share, or which bundle's rates it used, told something about fewer than k
of them (that one came from a counts-only box, or which bundle decided more). So:

- a cell with any bucket without gender (a counts-only agent: its people are all ``unknown`` and no bundle's
  rates describe them) is not attributed, and so not corrected;
- otherwise it is attributed to the bundle that sent the most of its buckets (ties: the first ref in order),
  e.g. in an upgrade hour the bundle that ran longer.

Hours whose raw buckets retention deleted before schema revision 0010 counted no buckets, and keep the
attribution from their people. The corrected shares are computed from released values only
(footfall.server.shares).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from footfall.core.logs import log_event
from footfall.core.quantify import DecisionRates
from footfall.core.wire import AgentStatus, AggregateMessage, bundle_ref
from footfall.server.sql import insert_for
from footfall.server.tables import Classifier, ClassifierPeople, HourlyRollup
from pydantic import ValidationError
from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.orm import Session

logger = logging.getLogger("footfall.server.classifiers")

NO_GENDER = ""  # rollup_classifier_people: aggregates without gender (counts-only)
UNNAMED = "?"  # a gendered aggregate that names no bundle (an agent before wire revision 1.x, or older rows)


@dataclass
class Decided:
    """What one classifier key holds of a cell, or a change to it: raw people and raw buckets."""

    people: int = 0
    buckets: int = 0


# (zone_pk, UTC hour start, classifier key) → change in raw people and buckets
ClassifierDeltas = dict[tuple[int, int, str], Decided]


def bucket_classifier(message: AggregateMessage) -> str | None:
    """What ``buckets.classifier`` stores for ``message``: the bundle that decided it, UNNAMED when it has gender
    but names none, None when it has no gender."""
    if message.gender is None:
        return None
    return message.classifier or UNNAMED


def side_key(classifier: str | None) -> str:
    """The key of ``rollup_classifier_people`` for a bucket's classifier (None: NO_GENDER)."""
    return NO_GENDER if classifier is None else classifier


def attribute(by_key: Mapping[str, Decided]) -> str | None:
    """The bundle a cell is attributed to, from what each classifier key holds of it: None when any of its buckets
    has no gender or it has none; else the key with the most buckets (ties: the first in order). A cell that counted
    no buckets (raw buckets deleted before revision 0010) is attributed the same way by its people."""
    buckets = {key: held.buckets for key, held in by_key.items() if held.buckets > 0}
    present = buckets or {key: held.people for key, held in by_key.items() if held.people > 0}
    if not present or NO_GENDER in present:
        return None
    return min(present, key=lambda key: (-present[key], key))


def apply_classifier_deltas(session: Session, deltas: ClassifierDeltas) -> None:
    """Adds raw people and buckets per (zone, hour, classifier) and re-attributes the touched hourly cells, in the
    caller's transaction (called by footfall.server.rollups.apply_hourly_deltas with the cells locked)."""
    changed = {key: delta for key, delta in deltas.items() if delta.people or delta.buckets}
    if not changed:
        return
    table = ClassifierPeople.__table__
    insert = insert_for(session)
    statement = insert(table)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["zone_pk", "hour_start", "classifier"],
            set_={
                "people": table.c.people + statement.excluded.people,
                "buckets": table.c.buckets + statement.excluded.buckets,
            },
        ),
        [
            {"zone_pk": z, "hour_start": h, "classifier": c, "people": d.people, "buckets": d.buckets}
            for (z, h, c), d in sorted(changed.items())
        ],
    )
    reattribute(session, sorted({(z, h) for z, h, _ in changed}))


def reattribute(session: Session, cells: list[tuple[int, int]]) -> None:
    """Sets the bundle of each hourly cell of ``cells`` (zone, hour) from its raw buckets per bundle."""
    if not cells:
        return
    table = ClassifierPeople.__table__
    held: dict[tuple[int, int], dict[str, Decided]] = defaultdict(dict)
    for offset in range(0, len(cells), 500):
        for z, h, key, people, buckets in session.execute(
            select(table.c.zone_pk, table.c.hour_start, table.c.classifier, table.c.people, table.c.buckets).where(
                tuple_(table.c.zone_pk, table.c.hour_start).in_(cells[offset : offset + 500])
            )
        ):
            held[(z, h)][key] = Decided(int(people), int(buckets))
    set_bundles(session, {cell: attribute(held.get(cell, {})) for cell in cells})


def set_bundles(session: Session, bundles: Mapping[tuple[int, int], str | None]) -> None:
    """Stores the bundle each hourly cell (zone, hour) is attributed to."""
    if not bundles:
        return
    hourly = HourlyRollup.__table__
    session.execute(
        update(hourly)
        .where(hourly.c.zone_pk == bindparam("z"), hourly.c.hour_start == bindparam("h"))
        .values(classifier=bindparam("c")),
        [{"z": z, "h": h, "c": bundle} for (z, h), bundle in sorted(bundles.items())],
    )


def reattribute_stale(session: Session, zone_pk: int) -> None:
    """Sets the bundle of each hourly cell of one zone whose stored bundle is not its raw buckets' (one zone at a
    time: a year of a zone is 8,760 cells)."""
    table, hourly = ClassifierPeople.__table__, HourlyRollup.__table__
    held: dict[int, dict[str, Decided]] = defaultdict(dict)
    for hour, key, people, buckets in session.execute(
        select(table.c.hour_start, table.c.classifier, table.c.people, table.c.buckets).where(
            table.c.zone_pk == zone_pk
        )
    ):
        held[hour][key] = Decided(int(people), int(buckets))
    stale: dict[tuple[int, int], str | None] = {}
    for hour, stored in session.execute(
        select(hourly.c.hour_start, hourly.c.classifier).where(hourly.c.zone_pk == zone_pk)
    ):
        bundle = attribute(held.get(hour, {}))
        if bundle != stored:
            stale[(zone_pk, hour)] = bundle
    set_bundles(session, stale)


def register(session: Session, statuses: Iterable[AgentStatus], now: float) -> None:
    """Records the gender bundles that ``statuses`` report with decision rates. A bundle's rates are part of the
    bundle (``<name>@<version>``), so the first report of a ref is kept: an agent that reports other rates for
    it (a recalibrated bundle that kept its version, or a key used to skew every site's correction) changes
    nothing and is logged; a recalibrated bundle needs a new version."""
    found: dict[str, tuple[str, str]] = {}
    for status in statuses:
        for model in status.models:
            if model.task == "gender-classification" and model.decision_rates is not None:
                ref = bundle_ref(model.bundle, model.version)
                found[ref] = (model.decision_rates.model_dump_json(), status.agent_id)
    if not found:
        return
    stored = select(Classifier.ref, Classifier.rates_json).where(Classifier.ref.in_(sorted(found)))
    known = dict(session.execute(stored).all())
    for ref, (rates, agent) in sorted(found.items()):
        if ref in known and _counts(known[ref]) != _counts(rates):
            log_event(
                logger,
                logging.WARNING,
                "an agent reports other decision rates for a known bundle; the first ones are kept",
                bundle=ref,
                agent=agent,
            )
    table = Classifier.__table__
    statement = insert_for(session)(table)
    session.execute(
        statement.on_conflict_do_update(index_elements=["ref"], set_={"last_seen": statement.excluded.last_seen}),
        [
            {"ref": ref, "rates_json": rates, "first_seen": int(now), "last_seen": int(now)}
            for ref, (rates, _) in sorted(found.items())
        ],
    )


def _counts(rates_json: str) -> object:
    """The counts of stored or reported rates (their ``source`` text may differ without changing them)."""
    try:
        return json.loads(rates_json).get("counts")
    except (ValueError, AttributeError):
        return None


def known_rates(session: Session, refs: Iterable[str]) -> dict[str, DecisionRates]:
    """The decision rates of ``refs`` that the registry knows (a stored entry that no longer parses is left out:
    better no correction than a wrong one)."""
    wanted = sorted({ref for ref in refs if ref not in (NO_GENDER, UNNAMED)})
    if not wanted:
        return {}
    rates: dict[str, DecisionRates] = {}
    for ref, text in session.execute(select(Classifier.ref, Classifier.rates_json).where(Classifier.ref.in_(wanted))):
        try:
            rates[ref] = DecisionRates.model_validate(json.loads(text))
        except (ValidationError, ValueError):
            continue
    return rates
