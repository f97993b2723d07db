"""Face pre-processing: crop geometry, alignment, colour order and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from footfall.core.preprocess import FaceCropSpec, crop_face, normalise, whole_image_box


def frame_with_square(colour=(0, 0, 255)) -> np.ndarray:
    """A 200×300 grey BGR frame with a red 40×40 square at x 100..140, y 50..90."""
    frame = np.full((200, 300, 3), 128, np.uint8)
    frame[50:90, 100:140] = colour
    return frame


def test_box_without_margin_fills_the_chip_with_the_face() -> None:
    spec = FaceCropSpec(size=32, margin=0.0, align=False, colour_order="BGR")
    chip = crop_face(frame_with_square(), (100, 50, 140, 90), spec)
    assert chip.shape == (32, 32, 3) and chip.dtype == np.uint8
    assert np.all(chip[2:-2, 2:-2] == (0, 0, 255))


def test_margin_adds_context_on_every_side() -> None:
    spec = FaceCropSpec(size=60, margin=0.25, align=False, colour_order="BGR")
    chip = crop_face(frame_with_square(), (100, 50, 140, 90), spec)
    # Side is 40 × 1.5 = 60 px, so the square covers the middle 40 px with 10 px of grey around it.
    assert np.all(chip[12:48, 12:48] == (0, 0, 255))
    assert np.all(chip[:8] == 128) and np.all(chip[:, -8:] == 128)


def test_non_square_box_gives_a_square_crop_centred_on_the_box() -> None:
    spec = FaceCropSpec(size=40, margin=0.0, align=False, colour_order="BGR")
    chip = crop_face(frame_with_square(), (110, 50, 130, 90), spec)  # 20 wide, 40 high → 40 × 40 square
    assert np.all(chip[2:-2, 2:-2] == (0, 0, 255))


def test_colour_order_rgb_swaps_channels() -> None:
    spec = FaceCropSpec(size=16, margin=0.0, align=False, colour_order="RGB")
    chip = crop_face(frame_with_square(), (100, 50, 140, 90), spec)
    assert tuple(chip[8, 8]) == (255, 0, 0)


def test_crop_outside_the_frame_repeats_the_border() -> None:
    spec = FaceCropSpec(size=32, margin=0.5, align=False, colour_order="BGR")
    frame = np.zeros((50, 50, 3), np.uint8)
    frame[:, :25] = 200
    chip = crop_face(frame, (-20, 0, 20, 40), spec)
    assert chip.shape == (32, 32, 3)
    assert chip[16, 0].tolist() == [200, 200, 200]


def test_alignment_levels_tilted_eyes() -> None:
    spec = FaceCropSpec(size=64, margin=0.0, align=True, colour_order="BGR")
    frame = np.zeros((200, 200, 3), np.uint8)
    # Two "eyes" on a line tilted by 30°, around centre (100, 100).
    angle = np.deg2rad(30)
    offset = np.array([np.cos(angle), np.sin(angle)]) * 25
    left, right = np.array([100, 90]) - offset, np.array([100, 90]) + offset
    for x, y in (left, right):
        frame[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4] = 255
    landmarks = np.array([left, right, [100, 110], [90, 125], [110, 125]], np.float32)
    chip = crop_face(frame, (50, 50, 150, 150), spec, landmarks)
    ys, xs = np.nonzero(chip[:, :, 0] > 128)
    left_eye, right_eye = ys[xs < 32].mean(), ys[xs >= 32].mean()
    assert abs(left_eye - right_eye) < 1.0, "eyes must be level after alignment"
    unaligned = crop_face(frame, (50, 50, 150, 150), spec.model_copy(update={"align": False}), landmarks)
    ys, xs = np.nonzero(unaligned[:, :, 0] > 128)
    assert abs(ys[xs < 32].mean() - ys[xs >= 32].mean()) > 10


def test_alignment_tolerates_swapped_eyes() -> None:
    spec = FaceCropSpec(size=32, margin=0.0, align=True, colour_order="BGR")
    swapped = np.array([[120, 90], [80, 90], [100, 100], [90, 110], [110, 110]], np.float32)
    plain = crop_face(frame_with_square(), (100, 50, 140, 90), spec.model_copy(update={"align": False}))
    assert np.array_equal(crop_face(frame_with_square(), (100, 50, 140, 90), spec, swapped), plain)


def test_normalise_gives_nchw_float_in_spec_range() -> None:
    spec = FaceCropSpec(size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    chips = np.zeros((2, 16, 16, 3), np.uint8)
    chips[1] = 255
    tensor = normalise(chips, spec)
    assert tensor.shape == (2, 3, 16, 16) and tensor.dtype == np.float32
    assert np.allclose(tensor[0], -1.0) and np.allclose(tensor[1], 1.0)
    assert normalise(chips[0], spec).shape == (1, 3, 16, 16)


def test_normalise_refuses_chips_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="16×16"):
        normalise(np.zeros((1, 9, 9, 3), np.uint8), FaceCropSpec(size=16))


def test_whole_image_box() -> None:
    assert whole_image_box(np.zeros((10, 20, 3), np.uint8)) == (0.0, 0.0, 20.0, 10.0)


@pytest.mark.parametrize(
    "field",
    [
        {"std": (0.0, 0.5, 0.5)},  # would divide by zero: every chip infinite in that channel
        {"std": (-0.5, 0.5, 0.5)},  # would turn a channel over
        {"std": (float("nan"), 0.5, 0.5)},
        {"mean": (float("inf"), 0.5, 0.5)},
        {"mean": (0.5, float("nan"), 0.5)},
    ],
)
def test_a_spec_that_would_normalise_chips_to_nonsense_is_refused(field: dict) -> None:
    """A recipe or a bundle manifest carries these numbers; a zero or non-finite one would give the classifier
    infinite or NaN inputs and answers that mean nothing, without an error."""
    with pytest.raises(ValueError, match=r"mean|std"):
        FaceCropSpec(**field)
