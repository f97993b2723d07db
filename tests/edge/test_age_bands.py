"""Age bands on the box (issue #17): each person's age distribution is averaged over their best crops in the same
forward pass as gender; the band they are counted in is allotted so that band counts follow the sum of the people's
band probabilities (edge/band_allotment.py), while the confident per-person decision (with abstention) is what
on_aged reports; buckets count people per gender × band, and aggregates carry that table only when age was estimated;
a 'gender-only' site reads no age output, strips age from what is queued, and a 'gender-only' refusal sends the
same counts again without it.

The classifier is a real GenderClassifier on a tiny ONNX bundle whose decisions follow the painted colour of each
face (tests/edge/age_standin.py); faces are boxes from tests/edge/synthetic.py run through the real tracker.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from footfall.core.ages import AGE_BANDS, AGE_DECISIONS
from footfall.core.classifier import AgeEstimate, GenderClassifier
from footfall.core.detector import Detection, FaceDetector
from footfall.core.wire import AggregateMessage, Receipt, RefusedSeq, SiteSettings, parse_message
from footfall.edge.age_bands import age_band_section, band_totals, format_age_table
from footfall.edge.aggregation import BucketCounts, ZoneAggregator, age_cells
from footfall.edge.config import AgentConfig, CameraConfig, ZoneConfig
from footfall.edge.counting import PersonCounter
from footfall.edge.demographics import without_age, without_gender
from footfall.edge.messages import CameraMessages, bucket_key
from footfall.edge.outbox import Outbox
from footfall.edge.tracking import FaceTracker
from footfall.edge.zones import SceneGeometry, polygon_zone

from tests.edge.age_standin import build_age_standin_bundle, face_colour
from tests.edge.standin import build_standin_gender_bundle
from tests.edge.synthetic import FPS, FRAME, together, walk

BUCKET = 1_763_280_000
CAM1 = CameraMessages(agent_id="box-test", site_id="lab", camera_id="cam1", bucket_seconds=60)
TOPIC = "footfall/v1/lab/box-test/aggregates"
GEOMETRY = SceneGeometry(
    [polygon_zone(ZoneConfig(id="hall", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]), *FRAME)],
    [],
    camera_id="cam1",
)
# Three people walking side by side, at heights 150, 360 and 570 px (faces 60 px, crops 72 px: each inside its
# stripe of the frame). What each one's face reads as, before frame 5 and from frame 5 on: the counter takes a
# crop at confirmation (frame 3) and then one every 0.2 s or so (3-4 frames), four in all.
STRIPES = {
    150: ("0-12", "0-12"),  # a girl, surely
    360: ("35-44", "25-34"),  # a man: first crop 35-44, the three after it 25-34
    570: ("18-24 or 25-34", "18-24 or 25-34"),  # a man whose every crop is as likely 18-24 as 25-34
}
GENDERS = {150: "female", 360: "male", 570: "male"}
STRIPE_EDGES = (255, 465)


@pytest.fixture(scope="module")
def age_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_age_standin_bundle(tmp_path_factory.mktemp("bundles") / "gender-age-standin")


@pytest.fixture(scope="module")
def classifier(age_bundle: Path) -> GenderClassifier:
    return GenderClassifier(age_bundle)


def paint(frame_index: int) -> np.ndarray:
    """The frame: each walker's stripe in the colour their face reads as at this frame."""
    image = np.zeros((FRAME[1], FRAME[0], 3), np.uint8)
    bounds = (0, *STRIPE_EDGES, FRAME[1])
    for (y, (early, late)), top, bottom in zip(STRIPES.items(), bounds[:-1], bounds[1:], strict=True):
        band = early if frame_index < 5 else late
        unsure = " or " in band
        image[top:bottom] = face_colour(band.split(" or ")[0], GENDERS[y], halfway_to_next=unsure)
    return image


class RecordingAggregator(ZoneAggregator):
    """Remembers each relabel (person id → the (gender, band) decisions in order)."""

    def __init__(self, sent: dict[str, BucketCounts]) -> None:
        super().__init__(GEOMETRY.ids, 3600, lambda zone_id, _start, counts: sent.__setitem__(zone_id, counts))
        self.relabels: dict[int, list[tuple[str, str | None]]] = {}

    def relabel_person(self, person_id: int, label: str, band: str | None = None) -> None:
        self.relabels.setdefault(person_id, []).append((label, band))
        super().relabel_person(person_id, label, band)


class OutputSpy:
    """Stands in for the classifier's onnxruntime session and records which outputs each pass asked for."""

    def __init__(self, session: Any) -> None:
        self.session, self.asked = session, []

    def run(self, names: list[str] | None, feed: dict[str, np.ndarray]) -> Any:
        self.asked.append(names)
        return self.session.run(names, feed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


def run_walkers(
    classifier: GenderClassifier | None, *, estimate_age: bool = True
) -> tuple[dict[str, BucketCounts], RecordingAggregator, dict[int, tuple[float, AgeEstimate]]]:
    """The three walkers through tracker and counter (one hour-long bucket): what each zone's bucket sent last,
    the aggregator, and each person's final band decision by their height."""
    sent: dict[str, BucketCounts] = {}
    aggregator = RecordingAggregator(sent)
    heights: dict[int, float] = {}
    aged: dict[int, tuple[float, AgeEstimate]] = {}
    counter = PersonCounter(
        GEOMETRY,
        aggregator,
        classifier,
        estimate_age=estimate_age,
        on_aged=lambda person_id, estimate: aged.__setitem__(person_id, (heights[person_id], estimate)),
    )
    tracker = FaceTracker(confirm_hits=4, max_lost_seconds=1.5)
    frames: list[list[Detection]] = together(*(walk(100, 240, y, 40) for y in STRIPES))
    for index, detections in enumerate(frames):
        events = tracker.update(detections, index / FPS, FRAME)
        for track in events.visible:
            heights[track.id] = (track.detection.box[1] + track.detection.box[3]) / 2
        counter.update(paint(index), index / FPS, events.confirmed, events.visible, events.ended)
    counter.finish(tracker.finish())
    aggregator.flush_all()
    return sent, aggregator, aged


def test_a_persons_band_is_allotted_from_its_best_crops_and_relabels_where_it_was_counted(
    classifier: GenderClassifier,
) -> None:
    sent, aggregator, aged = run_walkers(classifier)
    by_height = {round(height): estimate for height, estimate in aged.values()}
    assert {h: e.band for h, e in by_height.items()} == {150: "0-12", 360: "25-34", 570: "unknown"}
    assert by_height[150].years == pytest.approx(6.0, abs=0.01)
    # 360: one crop of 35-44 and three of 25-34, averaged: 25-34 at 3/4 (the bundle's threshold is 0.6).
    assert by_height[360].band_probabilities["25-34"] == pytest.approx(0.75, abs=0.01)
    assert by_height[570].band_probabilities["18-24"] == pytest.approx(0.5, abs=0.01)
    # The band it is counted in is allotted (edge/band_allotment.py): 35-44 after its first crop (all it had),
    # 25-34 once its crops leaned there; never 'unknown' after a crop's age was estimated.
    person_360 = next(pid for pid, (h, _) in aged.items() if round(h) == 360)
    assert aggregator.relabels[person_360] == [("male", "35-44"), ("male", "25-34")]
    # The men's band probabilities sum to 18-24: 0.5, 25-34: 1.25, 35-44: 0.25; the two men are counted in 18-24
    # and 25-34 (the man read as either is counted in one of them, not as 'unknown'). Each bucket the people were
    # counted in holds the final allotment, and the table adds up to the genders.
    for zone_id in ("cam1", "hall"):
        counts = sent[zone_id]
        assert (counts.people, counts.female, counts.male, counts.unknown) == (3, 1, 2, 0)
        assert counts.age == age_cells({("female", "0-12"): 1, ("male", "18-24"): 1, ("male", "25-34"): 1})
    message = CAM1.message("cam1", BUCKET, sent["cam1"], 1, classifier="gender-age-standin@0.0.0")
    parsed = parse_message(message.model_dump_json().encode())  # the server's own parse: the sums hold
    assert isinstance(parsed, AggregateMessage) and parsed.age is not None
    assert parsed.age_counts()["male"] == {**dict.fromkeys(AGE_DECISIONS, 0), "18-24": 1, "25-34": 1}
    assert parsed.age_counts()["female"]["0-12"] == 1


def test_an_age_output_that_is_no_distribution_counts_people_as_age_unknown_and_the_camera_goes_on(
    classifier: GenderClassifier, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken graph's NaN age output: the people are counted (age 'unknown'), with a warning, as a NaN gender
    output counts them as gender 'unknown'; the allotment raises no error into the camera's worker."""
    nan = dict.fromkeys(AGE_BANDS, float("nan"))
    monkeypatch.setattr(
        classifier, "decide_age", lambda probabilities: [AgeEstimate("unknown", float("nan"), nan)] * len(probabilities)
    )
    sent, _, _ = run_walkers(classifier)
    for zone_id in ("cam1", "hall"):
        counts = sent[zone_id]
        assert counts.people == 3 and counts.age == age_cells({("female", "unknown"): 1, ("male", "unknown"): 2})
    assert any("age output is not a distribution" in record.getMessage() for record in caplog.records)


def test_with_age_off_or_no_age_head_no_age_output_is_read_and_no_age_is_sent(
    classifier: GenderClassifier, tmp_path: Path
) -> None:
    spy = OutputSpy(classifier.session)
    classifier.session = spy  # type: ignore[assignment]
    try:
        sent, aggregator, aged = run_walkers(classifier, estimate_age=False)  # a 'gender-only' site
        assert spy.asked and all(names is not None and "age" not in names for names in spy.asked), spy.asked
        spy.asked.clear()
        run_walkers(classifier)  # 'full': the same one pass gives both
        assert spy.asked and all(names == ["logits", "age"] for names in spy.asked), spy.asked
    finally:
        classifier.session = spy.session
    assert aged == {} and all(band is None for moves in aggregator.relabels.values() for _, band in moves)
    assert (sent["cam1"].female, sent["cam1"].male, sent["cam1"].age) == (1, 2, None)
    assert CAM1.message("cam1", BUCKET, sent["cam1"], 1).age is None, "gender-only: gender, no age"

    gender_only_bundle = GenderClassifier(build_standin_gender_bundle(tmp_path / "gender-standin"))
    assert not gender_only_bundle.has_age
    sent, _, aged = run_walkers(gender_only_bundle)
    assert aged == {} and sent["cam1"].age is None and sent["cam1"].people == 3
    assert "age" not in CAM1.message("cam1", BUCKET, sent["cam1"], 1).model_dump(exclude_none=True)


def test_an_earlier_runs_count_without_age_adds_its_people_as_age_unknown_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    before = BucketCounts(people=2, female=1, male=1)  # a run in gender-only mode, or before age existed
    sent: list[BucketCounts] = []
    aggregator = ZoneAggregator(
        ["hall"], 60, lambda _z, _s, counts: sent.append(counts), base_lookup=lambda _z, _s: before
    )
    aggregator.count_person(1, "hall", BUCKET + 5, "female", "25-34")
    aggregator.count_person(2, "hall", BUCKET + 6, "male", None)  # counted before their age was estimated
    aggregator.flush_all()
    counts = sent[-1]
    assert (counts.people, counts.female, counts.male) == (4, 2, 2)
    assert counts.age == age_cells({("female", "unknown"): 1, ("female", "25-34"): 1, ("male", "unknown"): 2})
    assert CAM1.message("hall", BUCKET, counts, 1).age is not None  # valid: the bands add up to the genders

    outbox = Outbox(tmp_path / "outbox.sqlite")
    key = bucket_key("cam1", "hall", BUCKET)
    outbox.add(key, TOPIC, lambda seq: CAM1.message("hall", BUCKET, counts, seq).model_dump_json().encode(), counts)
    outbox.add(bucket_key("cam1", "door", BUCKET), TOPIC, lambda seq: b"{}", BucketCounts(people=1, unknown=1))
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.sqlite")
    assert reopened.bucket_counts(key) == counts, "a restart adds to the bands it had counted"
    assert reopened.bucket_counts(bucket_key("cam1", "door", BUCKET)) == BucketCounts(people=1, unknown=1)
    reopened.close()


AGED = BucketCounts(
    people=3,
    female=1,
    male=1,
    unknown=1,
    age=age_cells({("female", "0-12"): 1, ("male", "65+"): 1, ("unknown", "unknown"): 1}),
)


def _queue(outbox: Outbox, zone: str, counts: BucketCounts) -> int:
    def payload(seq: int) -> bytes:
        return CAM1.message(zone, BUCKET, counts, seq, classifier="gender-age-standin@0.0.0").model_dump_json().encode()

    return outbox.add(bucket_key("cam1", zone, BUCKET), TOPIC, payload, counts)


def _queued(outbox: Outbox) -> dict[str, AggregateMessage]:
    parsed = [parse_message(row.payload) for row in outbox.pending()]
    return {m.zone_id: m for m in parsed if isinstance(m, AggregateMessage)}


def test_outbox_rewrites_take_age_alone_for_gender_only_and_age_with_gender_for_counts_only(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    old = {zone: _queue(outbox, zone, counts) for zone, counts in (("a", AGED), ("b", BucketCounts(people=2, male=2)))}
    assert outbox.rewrite(without_age) == 1, "only the row with age is rewritten"
    rows = _queued(outbox)
    assert rows["a"].age is None and rows["a"].gender == AGED.gender and rows["a"].classifier is not None
    assert rows["a"].seq > max(old.values()) and rows["b"].seq == old["b"]
    assert outbox.rewrite(without_age) == 0

    _queue(outbox, "c", AGED)
    assert outbox.rewrite(without_gender) == 3
    rows = _queued(outbox)  # parsed by the server's schema: no age may stay behind without gender
    assert all(m.gender is None and m.age is None and m.classifier is None for m in rows.values())
    assert sum(m.people for m in rows.values()) == 3 + 2 + 3
    outbox.close()


def test_a_gender_only_refusal_sends_the_same_counts_again_without_age(tmp_path: Path) -> None:
    from footfall.edge.delivery import MqttPublisher

    from tests.edge.test_outbox import _config, _status

    outbox = Outbox(tmp_path / "outbox.sqlite")
    publisher = MqttPublisher(_config(1), outbox, _status)  # never started: only its receipt handling runs
    strip, keep = _queue(outbox, "a", AGED), _queue(outbox, "b", AGED)
    publisher._on_receipt(
        Receipt(
            agent_id="box-test",
            site_id="lab",
            refused=[
                RefusedSeq(
                    seq=strip, reason="age: site 'lab' is in demographics mode 'gender-only'", code="gender-only"
                )
            ],
        )
    )
    rows = _queued(outbox)
    assert set(rows) == {"a", "b"}, "the gender-only refusal keeps its counts"
    assert rows["a"].age is None and rows["a"].gender == AGED.gender and rows["a"].people == 3
    assert rows["a"].seq > keep, "under a new seq"
    assert rows["b"].seq == keep and rows["b"].age is not None
    outbox.close()


def test_switching_to_gender_only_keeps_gender_drops_age_and_the_floor_holds(
    tmp_path: Path, classifier: GenderClassifier
) -> None:
    """No broker, no camera: the agent's own reaction to the settings, on its outbox and its models."""
    from footfall.edge.agent import Agent
    from footfall.edge.pipeline import Models

    def config(**extra: object) -> AgentConfig:
        return AgentConfig(
            agent_id="box-test",
            site_id="lab",
            cameras=[CameraConfig(id="cam1", source="http://127.0.0.1/stream.mjpg")],
            outbox={"path": tmp_path / "outbox.sqlite"},  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        )

    def told(mode: str) -> SiteSettings:
        return SiteSettings(site_id="lab", demographics=mode, sent_at=datetime.now(UTC))  # type: ignore[arg-type]

    models = Models(cast(FaceDetector, None), classifier)
    agent = Agent(config(bundles={"gender": classifier.bundle.path}), models=models)
    agent.outbox = Outbox(tmp_path / "outbox.sqlite")
    emit = agent._emitter("cam1")
    emit("door", BUCKET, AGED)
    [full] = _queued(agent.outbox).values()
    assert full.age is not None and full.gender is not None

    agent._on_settings(told("gender-only"))
    assert agent.mode == "gender-only" and agent._strip_due, "paho's thread leaves the strip to the main loop"
    agent._strip_outbox()  # what the main loop does next
    agent._apply_mode(agent.mode)
    [stripped] = _queued(agent.outbox).values()
    assert stripped.age is None and stripped.gender == full.gender and stripped.seq > full.seq
    pruned = models.classifier
    assert pruned is not None and not models.estimate_age and not pruned.has_age, "gender still decided, no age"
    assert not pruned.runs_age_head and [o.name for o in pruned.session.get_outputs()] == ["logits"], (
        "the classifier was loaded again pruned to its gender output: no age head runs at a gender-only site"
    )
    assert agent.applied == "gender-only", "what the status and the metrics report"
    emit("hall", BUCKET, AGED)  # a bucket counted with bands before the pipeline stopped reading them
    assert _queued(agent.outbox)["hall"].age is None and _queued(agent.outbox)["hall"].gender is not None

    agent._on_settings(told("counts-only"))
    agent._strip_outbox()
    assert all(m.gender is None and m.age is None for m in _queued(agent.outbox).values())
    agent._on_settings(told("full"))
    agent._apply_mode(agent.mode)
    assert agent.mode == "full" and models.classifier is not None and models.estimate_age
    assert models.classifier.has_age and models.classifier.runs_age_head, "back to full: the whole graph again"
    emit("shop", BUCKET, AGED)
    assert _queued(agent.outbox)["shop"].age is not None
    agent.outbox.close()

    floored = Agent(config(demographics="gender-only"), models=Models(cast(FaceDetector, None), classifier))
    floored._on_settings(told("full"))
    assert floored.mode == "gender-only", "the server cannot loosen the box's own floor"


def test_a_classifier_is_loaded_again_only_where_the_mode_changes_what_it_must_run(
    tmp_path: Path, classifier: GenderClassifier
) -> None:
    """fits(): an age bundle with pruned graphs is reloaded between full and gender-only (no age head runs at a
    gender-only site); a bundle without an age head serves both modes as loaded."""
    pruned = GenderClassifier(classifier.bundle, age=False)
    assert classifier.fits(age=True) and not classifier.fits(age=False), "full → gender-only: prune the age head"
    assert pruned.fits(age=False) and not pruned.fits(age=True), "gender-only → full: the age output is needed"
    plain = GenderClassifier(build_standin_gender_bundle(tmp_path / "plain"))
    assert plain.fits(age=True) and plain.fits(age=False)


def test_a_failed_reload_never_runs_an_age_head_at_a_gender_only_site_nor_undoes_an_off_told_meanwhile(
    tmp_path: Path, classifier: GenderClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mode change loads the classifier again (or for the first time). When that fails:
    - a classifier that serves the new mode without an age head it must not run goes on deciding gender (the
      pruned one, told 'full': gender still decided, no age);
    - one that would run the age head at a 'gender-only' site is dropped, and the box counts without gender;
    - a site told 'off' by paho's thread during the load stays off."""
    from footfall.core.bundle import BundleError
    from footfall.edge import agent as agent_module
    from footfall.edge.agent import Agent
    from footfall.edge.pipeline import Models

    def told(mode: str) -> SiteSettings:
        return SiteSettings(site_id="lab", demographics=mode, sent_at=datetime.now(UTC))  # type: ignore[arg-type]

    config = AgentConfig(
        agent_id="box-test",
        site_id="lab",
        cameras=[CameraConfig(id="cam1", source="http://127.0.0.1/stream.mjpg")],
        outbox={"path": tmp_path / "outbox.sqlite"},  # type: ignore[arg-type]
        bundles={"gender": classifier.bundle.path},  # type: ignore[arg-type]
    )
    pruned = GenderClassifier(classifier.bundle, age=False)
    assert classifier.runs_age_head and not pruned.runs_age_head, "the stand-in carries its pruned graph"
    models = Models(cast(FaceDetector, None), pruned)
    agent = Agent(config, models=models)
    loads: list[str] = []
    off_meanwhile = False

    def failing_load(_config: AgentConfig, *, estimate_age: bool) -> GenderClassifier:
        loads.append("gender-only" if not estimate_age else "full")
        if off_meanwhile:
            agent._on_settings(told("off"))  # the operator switches the site off while the graphs load
        raise BundleError("model.onnx: onnxruntime cannot load it (test)")

    monkeypatch.setattr(agent_module, "load_classifier", failing_load)
    agent._on_settings(told("full"))
    agent._apply_mode(agent.mode)
    assert loads == ["full"]
    assert models.classifier is pruned and not pruned.has_age, "gender still decided, no age head run"
    assert agent.applied == "full"

    models.classifier = classifier  # the whole graph, loaded while the site was 'full'
    off_meanwhile = True
    agent._on_settings(told("gender-only"))
    agent._apply_mode(agent.mode)
    assert loads == ["full", "gender-only"]
    assert models.classifier is None, "the whole graph's age head never runs at a gender-only site"
    assert agent.applied == "counts-only" and agent.mode == "off", "the 'off' told during the load is kept"
    agent._apply_mode(agent.mode)  # the main loop's next turn
    assert agent.applied == "off" and models.classifier is None

    off_meanwhile = False
    agent._on_settings(told("full"))  # no classifier loaded now: a failed load leaves the box counting only
    agent._apply_mode(agent.mode)
    assert loads == ["full", "gender-only", "full"] and models.classifier is None
    assert agent.applied == "counts-only" and agent.mode == "counts-only"


def test_process_summary_tables_bands_per_crowd_only_when_age_was_estimated() -> None:
    hall = CameraMessages("offline", "offline", "cam1", 60, {"cam1": "camera"})
    messages = [
        hall.message("cam1", BUCKET, AGED, 1, classifier="x@1"),
        hall.message("hall", BUCKET, AGED, 2, classifier="x@1"),
        hall.message("hall", BUCKET + 60, BucketCounts(people=1, female=1), 3, classifier="x@1"),  # no age
    ]
    section = age_band_section(messages, estimated=True)
    assert section is not None
    assert band_totals(section["camera_visitors"]) == {
        **dict.fromkeys(AGE_DECISIONS, 0),
        "0-12": 1,
        "65+": 1,
        "unknown": 1,
    }
    assert section["zones"]["hall"]["female"] == {**dict.fromkeys(AGE_DECISIONS, 0), "0-12": 1, "unknown": 1}
    table = format_age_table({"camera_id": "cam1", "age_bands": section})
    header, visitors = table.splitlines()[:2]
    assert header.split()[-9:] == [*AGE_DECISIONS[:-1], "age?"]  # the age decision apart from the gender one
    assert visitors.split()[-9:] == ["1", "0", "0", "0", "0", "0", "0", "1", "1"]
    # Each column adds up: the crowd's row is the sum of its female, male and gender-unknown rows.
    rows = table.splitlines()[1:5]
    assert [row.rsplit(None, 9)[0].strip() for row in rows[1:]] == [
        "of them female",
        "of them male",
        "of them gender unknown",
    ]
    columns = [[int(cell) for cell in row.split()[-9:]] for row in rows]
    assert [sum(column) for column in zip(*columns[1:], strict=True)] == columns[0]
    assert age_band_section(messages, estimated=False) is None
    assert "no age head" in format_age_table({"camera_id": "cam1", "age_bands": None})


def _edge_bench() -> Any:
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "bench" / "edge_bench.py"
    spec = importlib.util.spec_from_file_location("edge_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["edge_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_bench_scores_bands_per_matched_person_and_band_shares_against_the_truth() -> None:
    bench = _edge_bench()

    def person(age: float | None, band: str | None, gender: str = "female", label: str = "female") -> dict:
        return {"age": age, "band": band, "gender": gender, "label": label, "face_px": 60, "probabilities": None}

    people = [
        person(30, "25-34"),  # right
        person(30, "35-44"),  # one band off
        person(30, "65+"),  # far off
        person(8, "unknown", "male", "female"),  # abstained; a boy decided female
        person(None, "25-34"),  # true age unknown: left out
    ]
    counted = {**dict.fromkeys((*bench.BANDS, "unknown"), 0), "25-34": 6, "35-44": 2, "0-12": 2, "unknown": 5}
    truth = {**dict.fromkeys(bench.BANDS, 0), "25-34": 5, "35-44": 3, "0-12": 2}
    report = bench.band_report(people, counted, truth)
    assert (report["people"], report["decided"]) == (4, 3)
    assert report["band_accuracy_pct"] == pytest.approx(33.3, abs=0.1)
    assert report["within_one_band_pct"] == pytest.approx(66.7, abs=0.1)
    assert report["abstained_pct"] == 25.0
    # Shares among the decided (unknown left out): 25-34 is 60 % counted vs 50 % true.
    assert report["shares"]["25-34"]["abs_difference_points"] == 10.0
    assert report["max_share_difference_points"] == 10.0 and not report["shares_within_target"]
    assert bench.gender_by_true_band(people) == {
        "0-12": {"right": 0, "wrong": 1, "unknown": 0},
        "18+": {"right": 3, "wrong": 0, "unknown": 0},
    }
    lines = bench.format_age_report(
        {"age_estimated": False, "age_bands": report, "gender_by_true_band": bench.gender_by_true_band(people)}, "b"
    )
    assert lines[0] == "age bands: the gender bundle b has no age head, so no band was decided"
    assert any("true  0-12: 0 right, 1 wrong, 0 unknown of 1" in line for line in lines)


class PaintedFaceDetector:
    """What the pipeline uses of a FaceDetector: each bright-green blob is a face, its box drawn well inside the
    blob so that the crop (box plus margin) holds nothing but the face's colour."""

    contract = SimpleNamespace(score_threshold=0.5)

    def __call__(self, frame_bgr: np.ndarray, threshold: float | None = None) -> list[Detection]:
        import cv2

        mask = (frame_bgr[:, :, 1] > 120).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        found = []
        for x, y, w, h, area in stats[1:count]:
            if area >= 0.5 * 40 * 40:
                inset = 0.2 * w
                box = (x + inset, y + inset, x + w - inset, y + h - inset)
                found.append(Detection(tuple(float(v) for v in box), 0.95, np.zeros((5, 2))))
        return found


def test_footfall_process_reports_each_crowds_bands_only_when_age_is_estimated(
    tmp_path: Path, classifier: GenderClassifier
) -> None:
    """The real capture, tracker, counter and aggregator on a clip of painted faces walking across."""
    cv2 = pytest.importorskip("cv2")
    from footfall.edge.offline import process_video
    from footfall.edge.pipeline import Models

    width, height, fps, size = 320, 240, 15.0, 40
    walkers = [(40, "35-44", "female"), (120, "55-64", "male"), (200, "65+", "male")]  # y, band, gender
    clip = tmp_path / "painted.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for index in range(60):
        image = np.full((height, width, 3), 20, np.uint8)
        x = int(30 + 70 * index / fps)
        for y, band, gender in walkers:
            image[y - size // 2 : y + size // 2, x - size // 2 : x + size // 2] = face_colour(band, gender)
        writer.write(image)
    writer.release()
    camera = CameraConfig(
        id="cam1",
        source=str(clip),
        fps=fps,
        zones=[ZoneConfig(id="hall", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])],
    )
    config = AgentConfig(agent_id="box-test", site_id="lab", cameras=[camera], bucket_seconds=60)
    detector = cast(FaceDetector, PaintedFaceDetector())

    aggregates: list[AggregateMessage] = []
    ages: dict[int, AgeEstimate] = {}
    summary = process_video(
        clip, config, progress=False, models=Models(detector, classifier), aggregates=aggregates, person_ages=ages
    )
    assert summary["camera_visitors"] == {"people": 3, "female": 1, "male": 2, "unknown": 0}
    assert sorted(estimate.band for estimate in ages.values()) == ["35-44", "55-64", "65+"]
    section = summary["age_bands"]
    for table in (section["camera_visitors"], section["zones"]["hall"]):
        assert {(g, b) for g, row in table.items() for b, n in row.items() if n} == {
            ("female", "35-44"),
            ("male", "55-64"),
            ("male", "65+"),
        }
    assert all(m.age is not None for m in aggregates)
    table = format_age_table(summary)
    assert table.splitlines()[1].split()[-9:] == ["0", "0", "0", "0", "1", "0", "1", "1", "0"]

    aggregates.clear()
    gender_only = Models(detector, classifier, estimate_age=False)
    summary = process_video(clip, config, progress=False, models=gender_only, aggregates=aggregates)
    assert summary["age_bands"] is None and summary["camera_visitors"]["female"] == 1
    assert aggregates and all(m.age is None for m in aggregates)


@pytest.mark.broker
@pytest.mark.slow
def test_a_gender_only_agent_decides_gender_sends_no_age_and_says_so(
    walkby_clip, mosquitto, tmp_path: Path, detector_bundle: Path, age_bundle: Path
) -> None:
    """The agent process against a real mosquitto, with a bundle that has an age head, at a gender-only site."""
    import subprocess
    import sys

    from tests.edge.conftest import agent_yaml
    from tests.edge.test_agent import _tell
    from tests.edge.test_outbox import Receiver

    clip, truth = walkby_clip
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(
        agent_yaml(
            clip,
            truth["camera"],
            outbox=tmp_path / "outbox.sqlite",
            port=mosquitto.port,
            detector=detector_bundle,
            gender=age_bundle,
        )
    )
    _tell(mosquitto.port, "gender-only")
    receiver = Receiver(mosquitto.port)
    agent = subprocess.run(
        [sys.executable, "-m", "footfall", "agent", "--config", str(config_path), "--drain-seconds", "40"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert agent.returncode == 0, agent.stderr[-2000:]
    assert receiver.wait_for(lambda: sum(receiver.totals().values()) > 0, timeout=30)
    with receiver.lock:
        sent = list(receiver.latest.values())
        statuses = [s for s in receiver.statuses if s.state == "online"]
    receiver.close()
    assert all(m.age is None for m in sent), "a gender-only site's aggregates carry no age bands"
    assert any(m.gender is not None and m.people for m in sent), "but their gender"
    assert statuses and statuses[-1].demographics == "gender-only"
    assert "gender-classification" in {m.task for m in statuses[-1].models}, "the classifier still runs"
    applied = [line for line in agent.stderr.splitlines() if "demographics mode applied" in line]
    assert len(applied) == 1 and "mode=gender-only" in applied[0] and "not estimated" in applied[0], applied
    assert "age_head=not run" in applied[0], "the bundle's gender-only graph runs: no age head at all"


def test_a_pipeline_switched_to_gender_only_between_frames_stops_reading_the_age_output(
    classifier: GenderClassifier,
) -> None:
    """What the agent's camera worker does when the mode changes: use_classifier between two frames."""
    from footfall.edge.pipeline import CameraPipeline, Models

    camera = CameraConfig(id="cam1", source="unused.mp4", fps=15.0)
    config = AgentConfig(agent_id="box-test", site_id="lab", cameras=[camera], bucket_seconds=60)
    sent: list[BucketCounts] = []
    pipeline = CameraPipeline(
        config,
        camera,
        Models(cast(FaceDetector, PaintedFaceDetector()), classifier),
        lambda _zone, _start, counts: sent.append(counts),
    )

    def frame(index: int) -> np.ndarray:
        image = np.full((240, 320, 3), 20, np.uint8)
        x = int(40 + 60 * index / 15.0)
        image[100:140, x - 20 : x + 20] = face_colour("65+", "female")
        return image

    spy = OutputSpy(classifier.session)
    classifier.session = spy  # type: ignore[assignment]
    try:
        for index in range(12):
            pipeline.process(frame(index), BUCKET + index / 15.0)
        assert spy.asked and all(names == ["logits", "age"] for names in spy.asked)
        assert pipeline.aggregator is not None
        assert all(b.counts().age == age_cells({("female", "65+"): 1}) for b in pipeline.aggregator.buckets.values())
        counter = pipeline.counter
        assert counter is not None and len(counter.allotment.people) == 1
        spy.asked.clear()
        pipeline.use_classifier(classifier, estimate_age=False)
        # At once, not at the person's next crop (there may be none): their band left with the switch, and
        # their allotment was taken back exactly.
        assert all(b.counts().age is None for b in pipeline.aggregator.buckets.values())
        assert counter.allotment.people == {}
        assert all(not residual.any() for residual in counter.allotment.residuals.values())
        for index in range(12, 40):
            pipeline.process(frame(index), BUCKET + index / 15.0)
        assert spy.asked and all(names == ["logits"] for names in spy.asked), spy.asked
    finally:
        classifier.session = spy.session
    pipeline.finish()
    assert counter.allotment.people == {}, "a finished track is no longer re-allotted"
    counts = sent[-1]
    assert (counts.people, counts.female) == (1, 1)
    assert counts.age is None, "the band decided before the switch left with it"
