"""The face tracker on synthetic detections (no model needed, fast)."""

from __future__ import annotations

import numpy as np
from footfall.core.detector import Detection
from footfall.edge.tracking import FaceTracker

from tests.edge.synthetic import FPS, FRAME, face, together, walk


def run(tracker: FaceTracker, frames: list[list[Detection]]) -> tuple[list[int], list[int]]:
    confirmed, ended = [], []
    for index, detections in enumerate(frames):
        events = tracker.update(detections, index / FPS, FRAME)
        confirmed += [t.id for t in events.confirmed]
        ended += [t.id for t in events.ended]
    ended += [t.id for t in tracker.finish()]
    return confirmed, ended


def test_one_walker_is_one_person_even_behind_a_pillar() -> None:
    # 300 px/s, hidden for 0.8 s in the middle (12 frames): still the same track, counted once.
    frames = walk(100, 300, 360, 50, hidden=range(20, 32))
    confirmed, ended = run(FaceTracker(confirm_hits=4, max_lost_seconds=1.5), frames)
    assert len(confirmed) == 1 and ended == confirmed


def test_hidden_longer_than_the_limit_is_a_new_track() -> None:
    frames = walk(100, 100, 360, 80, hidden=range(20, 50))  # 2 s hidden > 1.5 s
    confirmed, _ = run(FaceTracker(confirm_hits=4, max_lost_seconds=1.5), frames)
    assert len(confirmed) == 2


def test_two_people_crossing_stay_two() -> None:
    a = walk(200, 400, 360, 45)
    b = walk(1000, -400, 370, 45)
    frames = []
    for _i, (da, db) in enumerate(zip(a, b, strict=True)):
        # While they overlap, the far one (b) is hidden by the near one.
        near = abs(da[0].box[0] - db[0].box[0]) < 70
        frames.append(da + ([] if near else db))
    confirmed, _ = run(FaceTracker(confirm_hits=4), frames)
    assert len(confirmed) == 2


def test_a_flicker_is_not_a_person_and_an_edge_face_starts_nothing() -> None:
    frames = [[face(640, 360)] if i in (3, 4) else [] for i in range(20)]
    frames += [[face(10, 360)] for _ in range(10)]  # cut by the frame edge the whole time
    confirmed, _ = run(FaceTracker(confirm_hits=4), frames)
    assert confirmed == []


def run_at(tracker: FaceTracker, fps: float, frames: list[list[Detection]]) -> tuple[list[int], list[int]]:
    """Like :func:`run`, at another frame rate: a box that falls behind processes fewer frames."""
    confirmed, ended = [], []
    for index, detections in enumerate(frames):
        events = tracker.update(detections, index / fps, FRAME)
        confirmed += [t.id for t in events.confirmed]
        ended += [t.id for t in events.ended]
    return confirmed, ended + [t.id for t in tracker.finish()]


def test_a_walker_processed_at_3_fps_is_one_person_through_a_missed_detection() -> None:
    # A box that falls behind processes 3 frames a second; a walker crosses 1,000 px at 300 px/s and the detector
    # misses them in the third frame. Four detections in a row may never come, and one missed frame is a third of a
    # second: the walker must still be counted, and only once.
    frames = [[] if i == 2 else [face(140 + 300 * i / 3, 360)] for i in range(11)]
    confirmed, ended = run_at(FaceTracker(confirm_hits=4, max_lost_seconds=1.5), 3.0, frames)
    assert len(confirmed) == 1 and ended == confirmed
    # Three detections are enough there (a second's walk), the missed one in between.
    confirmed, _ = run_at(FaceTracker(confirm_hits=4), 3.0, frames[:4])
    assert len(confirmed) == 1


def test_a_flicker_is_no_person_and_a_camera_stall_does_not_make_the_box_slow() -> None:
    def every(fps: float, frames: int, seen: set[int]) -> list[int]:
        detections = [[face(640, 360)] if i in seen else [] for i in range(frames)]
        return run_at(FaceTracker(confirm_hits=4), fps, detections)[0]

    # A detector firing now and then on a poster: three times over a third of a second or more is not a face
    # walking by where every frame is processed, whatever the frame rate (the rule for a box that falls behind
    # must not apply there).
    assert every(25.0, 40, {0, 4, 8}) == [] and every(25.0, 40, {0, 5, 10}) == []
    assert every(15.0, 30, {0, 3, 6}) == [] and every(15.0, 30, {0, 5}) == []
    assert every(10.0, 20, {0, 2, 4}) == []
    assert every(3.0, 10, {0, 1}) == []  # twice in a row at 3 fps is not enough either
    # One stall of the camera (2 s without a frame) does not make the box slow: a detection before it and two after
    # are three detections at 25 fps, not a face seen over a second.
    tracker, confirmed = FaceTracker(confirm_hits=4), []
    times = [i / 25 for i in range(20)] + [20 / 25 + 2 + i / 25 for i in range(20)]
    for t in times:
        seen = t in (times[19], times[20], times[21])
        confirmed += tracker.update([face(640, 360)] if seen else [], t, FRAME).confirmed
    assert confirmed == []


def test_someone_entering_where_another_just_left_is_counted() -> None:
    leaving = walk(300, -400, 360, 15)  # walks out of the left edge at about frame 12
    entering = walk(20, 300, 365, 30)
    frames = leaving + [[] for _ in range(2)] + entering
    confirmed, _ = run(FaceTracker(confirm_hits=4, max_lost_seconds=1.5), frames)
    assert len(confirmed) == 2


def test_a_different_face_does_not_inherit_a_lost_track() -> None:
    # A is hidden (behind a pillar) and B appears right where A was heading: by position alone B would
    # continue A's track and go uncounted; their looks differ, so B becomes a person of its own (once A's
    # track has run out, as a face half out from behind the pillar must not start a track).
    look_a, look_b = np.zeros(192, np.float32), np.zeros(192, np.float32)
    look_a[0], look_b[1] = 1.0, 1.0

    def frames(with_looks: bool) -> int:
        tracker = FaceTracker(confirm_hits=4, max_lost_seconds=1.5)
        confirmed = 0
        for i in range(70):
            t = i / FPS
            if i < 15:
                detections, looks = [face(300 + 150 * t, 360)], [look_a]
            elif i < 20:
                detections, looks = [], []
            else:
                detections, looks = [face(300 + 150 * t, 360)], [look_b]
            events = tracker.update(detections, t, FRAME, looks if with_looks else None)
            confirmed += len(events.confirmed)
        return confirmed

    assert frames(with_looks=False) == 1
    assert frames(with_looks=True) == 2


def test_someone_who_turns_round_while_hidden_keeps_their_track() -> None:
    # Walks left, turns round behind someone (hidden 0.33 s), comes back the way they came: one person,
    # although they reappear well away from where constant velocity would have put them.
    frames = [[face(900 - 250 * i / FPS, 360, size=40)] for i in range(20)]
    turned_at = 900 - 250 * 19 / FPS
    frames += [[] for _ in range(5)]
    frames += [[face(turned_at + 30 + 120 * i / FPS, 360, size=40)] for i in range(20)]
    confirmed, ended = run(FaceTracker(confirm_hits=4, max_lost_seconds=1.5), frames)
    assert len(confirmed) == 1 and ended == confirmed


def test_a_new_face_is_not_taken_by_a_track_hidden_behind_it() -> None:
    # A (small, far) walks left; B (big, near) has just come into view and hides A as they pass. B's young
    # track keeps B's face: A's track may not take it over (and walk off with B) while A is out of sight.
    tracker = FaceTracker(confirm_hits=4, max_lost_seconds=1.5)
    last_x: dict[int, float] = {}
    for i in range(30):
        ax = 500 - 260 * i / FPS
        detections = [face(ax, 300, size=48)]
        if i >= 10:
            bx = 200 + 390 * (i - 10) / FPS
            detections = [face(bx, 340, size=75)] + ([] if abs(ax - bx) < 60 else detections)
        events = tracker.update(detections, i / FPS, FRAME)
        for track in events.visible:
            last_x[track.id] = (track.box[0] + track.box[2]) / 2
    people = tracker.finish()
    assert len(people) == 2
    first, second = sorted(people, key=lambda t: t.first_seen)
    assert last_x[first.id] < 200 < last_x[second.id]  # A left to the left, B to the right


def test_a_face_that_shrank_sliding_behind_someone_keeps_its_track() -> None:
    # A face's box shrinks as it slides behind a nearer person (only part of it is found), then it is hidden
    # for 1.2 s and comes out whole: the person did not shrink while out of sight, so it is the same track.
    frames = [[face(1100 - 320 * i / FPS, 250, size=44)] for i in range(12)]
    frames += [[face(1100 - 320 * (12 + k) / FPS, 250, size=size)] for k, size in enumerate((36, 30, 26))]
    frames += [[] for _ in range(18)]
    frames += [[face(1100 - 320 * (33 + k) / FPS, 250, size=44)] for k in range(12)]
    confirmed, ended = run(FaceTracker(confirm_hits=4, max_lost_seconds=1.5), frames)
    assert len(confirmed) == 1 and ended == confirmed


def test_a_face_turned_away_for_2_5_s_while_walking_is_one_person() -> None:
    # 120 px/s, the face turned away for 2.5 s (the body walks on at the same speed): the track waits, its
    # predicted position follows the walk, and the face that comes back there is the same person.
    frames = walk(150, 120, 360, 100, hidden=range(25, 25 + round(2.5 * FPS)))
    confirmed, ended = run(FaceTracker(confirm_hits=4), frames)
    assert len(confirmed) == 1 and ended == confirmed


def test_a_face_turned_away_comes_back_with_its_looks() -> None:
    # Same with appearance cues (in memory only): the face that comes back looks like itself and re-joins;
    # a different face at that spot after 2.5 s does not (it is another person).
    look_a, look_b = np.zeros(192, np.float32), np.zeros(192, np.float32)
    look_a[0], look_b[1] = 1.0, 1.0

    def people(returning: np.ndarray) -> int:
        tracker = FaceTracker(confirm_hits=4)
        confirmed = 0
        for i in range(100):
            t = i / FPS
            hidden = 25 <= i < 25 + round(2.5 * FPS)
            detections = [] if hidden else [face(150 + 120 * t, 360)]
            looks = [] if hidden else [look_a if i < 25 else returning]
            confirmed += len(tracker.update(detections, t, FRAME, looks).confirmed)
        return confirmed

    assert people(look_a) == 1
    assert people(look_b) == 2


def test_two_people_walking_together_are_not_merged_after_a_turn_away() -> None:
    # A and B walk side by side 1.3 face sizes apart; A turns away for 2.5 s. B's face stays B's track, and A
    # (back where A was heading) is A's again: two people, each track on its own walker's line.
    a = walk(150, 120, 360, 100, hidden=range(25, 25 + round(2.5 * FPS)))
    b = walk(150, 120, 440, 100)
    tracker = FaceTracker(confirm_hits=4)
    rows: dict[int, set[int]] = {}
    for index, detections in enumerate(together(a, b)):
        events = tracker.update(detections, index / FPS, FRAME)
        for track in events.visible:
            rows.setdefault(track.id, set()).add(round(track.detection.box[1] + 30))
    people = tracker.finish()
    assert len(people) == 2
    assert sorted(rows[p.id].pop() for p in people if len(rows[p.id]) == 1) == [360, 440]


def test_two_people_crossing_paths_while_one_is_turned_away_stay_two() -> None:
    # A walks right and turns away for 2 s; B walks left through the spot where A's track is heading, then A
    # turns back. B must not take A's track (nor A B's): two people, each track on one walker's line only.
    a = walk(200, 150, 360, 90, hidden=range(20, 50))
    b = walk(900, -200, 365, 90)
    tracker = FaceTracker(confirm_hits=4)
    walkers: dict[int, set[str]] = {}
    confirmed = 0
    for index, detections in enumerate(together(a, b)):
        events = tracker.update(detections, index / FPS, FRAME)
        confirmed += len(events.confirmed)
        for track in events.visible:
            y = (track.detection.box[1] + track.detection.box[3]) / 2
            walkers.setdefault(track.id, set()).add("a" if y == 360 else "b")
    people = tracker.finish()
    assert confirmed == 2 and len(people) == 2
    assert sorted(w for p in people for w in walkers[p.id]) == ["a", "b"]


def test_someone_else_where_a_turned_away_face_was_heading_is_not_merged() -> None:
    # A (60 px) turns away and does not turn back (walks on out of sight of the camera's face detector);
    # 2.5 s later a nearer, bigger face (84 px) shows up right where A's track is heading. Long gone, a face
    # must be about the same size to re-join: this is someone else, a person of their own.
    tracker = FaceTracker(confirm_hits=4)
    confirmed = 0
    for i in range(100):
        t = i / FPS
        if i < 25:
            detections = [face(150 + 120 * t, 360)]
        elif i < 25 + round(2.5 * FPS):
            detections = []
        else:
            detections = [face(150 + 120 * t, 360, size=84)]
        confirmed += len(tracker.update(detections, t, FRAME).confirmed)
    assert confirmed == 2


def clipped(cx: float, cy: float, size: float = 60, score: float = 0.9) -> Detection:
    """A face as the detector reports it at the frame edge: only the part inside the frame."""
    x1, y1, x2, y2 = face(cx, cy, size, score).box
    return Detection((max(x1, 0.0), y1, min(x2, FRAME[0]), y2), score, np.zeros((5, 2), np.float32))


def test_someone_walking_in_where_another_walked_out_is_counted() -> None:
    # A walks out at the left edge (400 px/s); B walks in at that edge the next frame, the other way, 30 px
    # higher. Frame to frame the face at the edge barely moves, so by position alone A's track carried on with
    # B (who went uncounted: the bench's commonest merge). Nobody reverses at walking pace in 1/15 s: B is a
    # person of their own, and A's track ends where A walked out.
    a = [[clipped(400 - 400 * i / FPS, 360)] for i in range(15)]  # centre 27 px from the edge at the end
    b = [[clipped(20 + 300 * i / FPS, 330)] for i in range(30)]
    tracker = FaceTracker(confirm_hits=4)
    confirmed, seen_a, ended_a = 0, set[int](), set[int]()
    for index, detections in enumerate(a + b):
        events = tracker.update(detections, index / FPS, FRAME)
        confirmed += len(events.confirmed)
        seen_a |= {track.id for track in events.visible if index < len(a)}
        ended_a |= {track.id for track in events.ended} & seen_a
    (last,) = tracker.finish()
    assert confirmed == 2
    # A's track ended while B walked on (B's face took it for the few frames the reversal takes to show).
    assert len(seen_a) == 1 and ended_a == seen_a and last.id not in seen_a
    assert last.path[0][1] <= 60 and last.path[-1][1] > 500  # B's track starts a face from the edge, on B's path


def test_someone_walking_in_while_a_face_that_walked_out_is_lost_is_counted() -> None:
    # A (walking right, 200 px/s) is lost by the detector half a second before the right edge, while B walks
    # in at that edge the other way (cut by the edge, so B starts no track yet). B's face, whole, is next to
    # where A's lost track is heading and takes it over. B then walks left: A's track would have reversed in a
    # quarter of a second, so B is someone else.
    a = [[face(910 + 200 * i / FPS, 360)] for i in range(19)]  # last seen at x 1150
    b = [[clipped(1280 - 250 * i / FPS, 350)] for i in range(30)]
    confirmed, _ = run(FaceTracker(confirm_hits=4), a + b)
    assert len(confirmed) == 2


def test_someone_turning_round_at_walking_pace_keeps_their_track() -> None:
    # The guard above is about reversals no walker can make: someone who slows down near the edge, stops for
    # 0.4 s and walks back is still one person.
    xs = [1000 + 250 * i / FPS for i in range(15)]  # up to x 1233, walking right
    for _ in range(6):  # slows down
        xs.append(xs[-1] + (xs[-1] - xs[-2]) * 0.6)
    xs += [xs[-1]] * 6  # stands for 0.4 s
    for k in range(1, 25):  # walks back, speeding up
        xs.append(xs[-1] - min(250, 60 * k) / FPS)
    confirmed, ended = run(FaceTracker(confirm_hits=4), [[face(x, 360)] for x in xs])
    assert len(confirmed) == 1 and ended == confirmed


def test_someone_walking_in_is_not_taken_by_a_face_lost_near_the_edge() -> None:
    # A stands 2 face sizes from the right edge for a second, then is lost (walked out unseen, behind
    # someone). 2.3 s later B walks in at that edge. Once clear of the edge, B's face was close enough to where
    # A was last seen for A's lost track to take it (B went uncounted); a face followed in from the edge since
    # it was cut by it is someone walking in, a person of their own.
    frames = [[face(1150, 360)] for _ in range(15)] + [[] for _ in range(35)]
    frames += [[clipped(1280 - 250 * i / FPS, 370)] for i in range(30)]
    confirmed, _ = run(FaceTracker(confirm_hits=4), frames)
    assert len(confirmed) == 2


def test_two_people_crossing_where_one_turned_away_keep_their_own_tracks() -> None:
    # A (walking right) turns away for 2 s; B (walking left) passes behind a pillar and comes out slower, a
    # little behind where B's track expects it, right where A was last seen. A's lost track took B there (a
    # face where it was last seen: someone who stopped), B's track died, and A's face, back, was counted again.
    # B heads left, as B's lost track was heading, not right as A was: B's face goes back to B's track, A's
    # track waits for A. Two people, each counted once, each track ending on its own walker's line.
    def frames(i: int) -> list[Detection]:
        a = [] if 20 <= i < 50 else [face(300 + 200 * i / FPS, 360)]
        b = [] if 26 <= i < 34 else [face(1000 - 200 * i / FPS if i < 26 else 575 - 160 * (i - 34) / FPS, 365)]
        return a + b

    tracker = FaceTracker(confirm_hits=4)
    confirmed: list[int] = []
    for i in range(80):
        confirmed += [track.id for track in tracker.update(frames(i), i / FPS, FRAME).confirmed]
    people = tracker.finish()
    assert len(confirmed) == 2 and sorted(p.id for p in people) == sorted(confirmed)
    assert sorted(round(p.path[-1][2]) for p in people) == [360, 365]
    a_track = next(p for p in people if p.id == confirmed[0])  # A came in first
    assert round(a_track.path[-1][2]) == 360 and a_track.path[-1][1] > 1000


def test_someone_sitting_near_the_frame_edge_is_one_person_however_often_the_detector_misses_them() -> None:
    # A food-court table at the bottom of the picture: the face sits within 2 % of the frame edge (where a face
    # may be walking in or out, so a lost track may not take it) but clear of the 2 px that start no track. Each
    # missed detection started a new person: 100 to 500 counts of one sitter in 10 minutes.
    rng = np.random.default_rng(0)
    for centre_y in (FRAME[1] - 50, FRAME[1] - 36, 40):  # 20 px and 6 px from the bottom, 10 px from the top
        for missed in (0.05, 0.2):
            frames = [
                [] if rng.random() < missed else [face(640 + rng.normal(0, 1), centre_y + rng.normal(0, 1))]
                for _ in range(int(120 * FPS))
            ]
            confirmed, ended = run(FaceTracker(confirm_hits=4), frames)
            assert len(confirmed) == 1 and ended == confirmed, (centre_y, missed, len(confirmed))


def test_someone_walking_in_where_a_sitter_was_lost_near_the_edge_is_counted() -> None:
    # The sitter's exception is for a face seen again where it sat, not for one followed in from the edge: A sits
    # 20 px from the right edge for 2 s and is lost (left unseen); B walks in at that edge 0.3 s later, through the
    # spot where A sat.
    frames = [[face(1230, 360)] for _ in range(int(2 * FPS))] + [[] for _ in range(5)]
    frames += [[clipped(1280 - 150 * i / FPS, 362)] for i in range(45)]
    confirmed, _ = run(FaceTracker(confirm_hits=4), frames)
    assert len(confirmed) == 2


def test_a_face_taken_by_the_track_of_someone_it_hides_goes_back_to_its_own_track() -> None:
    # A crowd's commonest switch. A walks right; B walks left, is hidden behind a pillar for 1.3 s and comes out
    # slower than B's track expects, right where A is, just as B hides A. A's track, seen a frame ago, takes B's
    # face there and keeps it (each frame B is next to where A's track last saw a face), heading back the way
    # A came, faster than anyone turns; B's lost track died, and A, out again, was counted a second time. The
    # faces since the turn go to B's lost track (heading that way, near), A's track goes back to before it took
    # them and waits for A.
    def frames(i: int) -> list[Detection]:
        a = [] if 28 <= i < 38 else [face(300 + 200 * i / FPS, 360)]
        b = [face(1000 - 200 * i / FPS, 365)] if i < 10 else []
        if i >= 28:
            b = [face(300 + 200 * 28 / FPS - 120 * (i - 28) / FPS, 365)]
        return a + b

    tracker = FaceTracker(confirm_hits=4)
    confirmed: list[int] = []
    for i in range(60):
        confirmed += [track.id for track in tracker.update(frames(i), i / FPS, FRAME).confirmed]
    people = tracker.finish()
    assert len(confirmed) == 2 and sorted(p.id for p in people) == sorted(confirmed)
    a_track = next(p for p in people if p.id == confirmed[0])  # A came in first
    assert round(a_track.path[-1][2]) == 360 and a_track.path[-1][1] > 1000
    assert all(x > 600 for _, x, _ in a_track.path[-22:])  # nothing of B's walk back left on A's track
