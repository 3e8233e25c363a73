"""lipnet_ko.video.mouth on synthetic landmarks and drawn frames: no video file, no dlib."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipnet_ko.video.mouth import (
    MOUTH,
    MouthConfig,
    MouthCropper,
    NoFaceError,
    apply_transform,
    check_missing,
    crop_mouth,
    geometry_from_landmarks,
    interpolate_missing,
    smooth,
)


def face_template(centre=(180.0, 200.0), mouth_width=50.0, angle=0.0) -> np.ndarray:
    """68 points [68, 2]: a mouth of the given corner-to-corner width centred at ``centre``, rotated by ``angle`` (rad).

    The outer lip (48-59) is an ellipse starting at the left corner (48) through the upper lip to the
    right corner (54); the inner lip (60-67) a flatter one. The other 48 points sit on a ring above.
    """
    points = np.zeros((68, 2))
    half = mouth_width / 2
    outer = np.pi - np.arange(12) * (2 * np.pi / 12)
    points[48:60] = np.column_stack([half * np.cos(outer), -0.4 * half * np.sin(outer)])
    inner = np.pi - np.arange(8) * (2 * np.pi / 8)
    points[60:68] = np.column_stack([0.7 * half * np.cos(inner), -0.15 * half * np.sin(inner)])
    ring = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    points[:48] = np.column_stack([2 * mouth_width * np.cos(ring), -1.5 * mouth_width + mouth_width * np.sin(ring)])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return (points @ rotation.T + np.asarray(centre)).astype(np.float32)


def draw_frame(landmarks: np.ndarray, size=(288, 360)) -> np.ndarray:
    """A textured grey RGB frame with the outer lip filled red, so crops can be checked by colour."""
    rng = np.random.default_rng(0)
    frame = (120 + rng.integers(-10, 10, size=(*size, 3))).astype(np.uint8)
    cv2.fillPoly(frame, [np.round(landmarks[48:60]).astype(np.int32)], (220, 30, 30))
    return frame


def red_mask(crops: np.ndarray) -> np.ndarray:
    return (crops[..., 0] > 180) & (crops[..., 1] < 90)


def test_crop_is_centred_and_scaled_on_the_mouth():
    config = MouthConfig()
    landmarks = np.stack([face_template(centre=(150 + 3 * t, 190 - t)) for t in range(20)])  # mouth drifts
    frames = np.stack([draw_frame(points) for points in landmarks])
    result = crop_mouth(frames, landmarks, config)
    assert result.crops.shape == (20, 50, 100, 3) and result.crops.dtype == np.uint8
    assert result.found.all()
    mapped = apply_transform(result.transforms, landmarks[:, MOUTH])
    centre = mapped.mean(axis=1)
    np.testing.assert_allclose(centre[2:-2], [[49.5, 24.5]] * 16, atol=0.05)  # ends lag: moving average with repeated edges
    corner_span = mapped[:, 6, 0] - mapped[:, 0, 0]  # 54 minus 48, in crop px
    np.testing.assert_allclose(corner_span, 100 * (1 - 2 * config.margin), rtol=1e-3)
    red = red_mask(result.crops)
    assert red[:, 22:28, 45:55].all()  # the lips are in the middle of every crop
    assert not red[:, :, :12].any() and not red[:, :, -12:].any()  # and the margins are free of them


def test_rotation_is_levelled_by_the_mouth_corners():
    angle = math.radians(20)
    landmarks = np.stack([face_template(angle=angle)] * 5)
    frames = np.stack([draw_frame(points) for points in landmarks])
    aligned = crop_mouth(frames, landmarks, MouthConfig())
    corners = apply_transform(aligned.transforms, landmarks[:, [48, 54]])
    np.testing.assert_allclose(corners[:, 0, 1], corners[:, 1, 1], atol=1e-3)
    unaligned = crop_mouth(frames, landmarks, MouthConfig(align=False))
    corners = apply_transform(unaligned.transforms, landmarks[:, [48, 54]])
    assert corners[0, 1, 1] - corners[0, 0, 1] > 10  # still tilted
    # Levelled lips make a symmetric red blob: its rows balance left and right of the centre.
    red = red_mask(aligned.crops[0]).astype(float)
    ys, xs = np.nonzero(red)
    assert abs(np.polyfit(xs, ys, 1)[0]) < 0.05


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(60, 300), y=st.floats(60, 230), width=st.floats(10, 120), angle=st.floats(-0.6, 0.6),
    margin=st.floats(0.0, 0.4), height=st.integers(8, 80), crop_width=st.integers(8, 160),
)
def test_transform_maps_any_mouth_to_the_crop_centre(x, y, width, angle, margin, height, crop_width):
    config = MouthConfig(height=height, width=crop_width, margin=margin)
    landmarks = np.stack([face_template((x, y), width, angle)] * 3)
    cropper = MouthCropper(config)
    for points in landmarks:
        cropper.add(np.zeros((288, 360, 3), np.uint8), landmarks=points)
    result = cropper.finish()
    mapped = apply_transform(result.transforms, landmarks)
    np.testing.assert_allclose(mapped[:, MOUTH].mean(axis=1), [[(crop_width - 1) / 2, (height - 1) / 2]] * 3, atol=1e-2)
    np.testing.assert_allclose(mapped[:, 54] - mapped[:, 48], [[crop_width * (1 - 2 * margin), 0]] * 3, atol=2e-2)


def test_grey_crops_have_one_channel():
    landmarks = np.stack([face_template()] * 4)
    frames = np.stack([draw_frame(points) for points in landmarks])
    result = crop_mouth(frames, landmarks, MouthConfig(grey=True, height=32, width=64))
    assert result.crops.shape == (4, 32, 64, 1)
    colour = crop_mouth(frames, landmarks, MouthConfig(height=32, width=64)).crops
    expected = cv2.cvtColor(colour[0], cv2.COLOR_RGB2GRAY)
    assert np.abs(result.crops[0, :, :, 0].astype(int) - expected).max() <= 1


def test_short_gaps_are_interpolated():
    landmarks = np.stack([face_template(centre=(100 + 4 * t, 200)) for t in range(30)])
    frames = np.stack([draw_frame(points) for points in landmarks])
    holed = landmarks.copy()
    holed[10:14] = np.nan  # a 4-frame gap: 13% of the clip
    holed[0] = np.nan  # and the first frame
    result = crop_mouth(frames, holed, MouthConfig(smoothing=1, scale_smoothing=1))
    assert result.found.sum() == 25 and not result.found[[0, 10, 11, 12, 13]].any()
    np.testing.assert_allclose(result.landmarks[10:14], landmarks[10:14], atol=1e-3)  # linear motion is recovered
    np.testing.assert_allclose(result.landmarks[0], landmarks[1])  # an edge repeats its neighbour
    assert red_mask(result.crops)[10:14, 22:28, 45:55].all()  # gap frames are still cropped on the mouth


def test_too_many_missing_frames_fail_with_a_reason():
    landmarks = np.stack([face_template()] * 20)
    frames = np.stack([draw_frame(points) for points in landmarks])
    holed = landmarks.copy()
    holed[::2] = np.nan  # half the frames, in short gaps
    with pytest.raises(NoFaceError, match=r"10 of 20 .*50%.*max_missing_share"):
        crop_mouth(frames, holed, MouthConfig())
    assert crop_mouth(frames, holed, MouthConfig(max_missing_share=0.6)).crops.shape[0] == 20


def test_a_long_gap_fails_even_when_the_share_is_allowed():
    landmarks = np.stack([face_template()] * 100)
    holed = landmarks.copy()
    holed[40:60] = np.nan  # 20 frames in a row, 20% of the clip
    frames = np.zeros((100, 288, 360, 3), np.uint8)
    with pytest.raises(NoFaceError, match=r"20 frames in a row \(frames 40-59\).*max_gap"):
        crop_mouth(frames, holed, MouthConfig(max_gap=15))
    assert crop_mouth(frames, holed, MouthConfig(max_gap=20)).found.sum() == 80


def test_no_face_at_all_fails():
    frames = np.zeros((5, 288, 360, 3), np.uint8)
    with pytest.raises(NoFaceError, match="no face found in any of the 5 frames"):
        crop_mouth(frames, np.full((5, 68, 2), np.nan), MouthConfig())


def test_skipped_frames_do_not_count_as_missing():
    found = np.array([True, False] * 10)
    searched = found.copy()
    check_missing(found, MouthConfig(max_missing_share=0.0), searched)  # every searched frame had a face
    with pytest.raises(NoFaceError):
        check_missing(found, MouthConfig(max_missing_share=0.25))


def test_smoothing_removes_jitter():
    rng = np.random.default_rng(1)
    clean = np.stack([face_template()] * 50)
    noisy = clean + rng.normal(0, 1.5, size=(50, 1, 2)).astype(np.float32)  # the whole face jitters
    frames = np.zeros((50, 288, 360, 3), np.uint8)
    raw = crop_mouth(frames, noisy, MouthConfig(smoothing=1))
    smoothed = crop_mouth(frames, noisy, MouthConfig(smoothing=5))
    jitter = lambda r: np.std(apply_transform(r.transforms, clean[:, MOUTH]).mean(axis=1), axis=0).max()  # noqa: E731
    assert jitter(smoothed) < 0.6 * jitter(raw)


def test_scale_is_smoothed_over_a_longer_window():
    widths = 50 + 8 * np.sin(np.arange(50) / 2.0)  # the mouth widens and narrows while speaking
    landmarks = np.stack([face_template(mouth_width=w) for w in widths])
    frames = np.zeros((50, 288, 360, 3), np.uint8)
    result = crop_mouth(frames, landmarks, MouthConfig(scale_smoothing=25))
    scales = np.hypot(result.transforms[:, 0, 0], result.transforms[:, 0, 1])
    assert scales.std() / scales.mean() < 0.25 * (widths.std() / widths.mean())


def test_boxes_instead_of_landmarks():
    boxes = np.array([[100 + t, 180, 160 + t, 210] for t in range(10)], dtype=np.float32)
    landmarks = np.stack([face_template(centre=(130 + t, 195), mouth_width=60) for t in range(10)])
    frames = np.stack([draw_frame(points) for points in landmarks])
    boxes[3] = np.nan
    result = crop_mouth(frames, boxes=boxes, config=MouthConfig())
    assert result.landmarks is None and result.boxes.shape == (10, 4) and not result.found[3]
    filled = result.boxes
    np.testing.assert_allclose(filled[3], [103, 180, 163, 210])  # interpolated between its neighbours
    centres = apply_transform(result.transforms, ((filled[:, :2] + filled[:, 2:]) / 2)[:, None])[:, 0]
    np.testing.assert_allclose(centres[2:-2], [[49.5, 24.5]] * 6, atol=0.05)  # frame 3 interpolated; ends lag
    assert red_mask(result.crops)[:, 22:28, 45:55].all()


def test_high_resolution_frames_match_a_direct_warp():
    """The per-frame patch (downscaled by a whole factor) must not move or blur the crop noticeably."""
    config = MouthConfig(smoothing=1, scale_smoothing=1)
    landmarks = np.stack([face_template(centre=(960, 700), mouth_width=330, angle=0.1)] * 2)
    yy, xx = np.mgrid[0:1080, 0:1920]
    frame = np.stack([128 + 60 * np.sin(xx / 37.0), 128 + 60 * np.cos(yy / 23.0), (xx + yy) % 256], -1).astype(np.uint8)
    result = crop_mouth(np.stack([frame, frame]), landmarks, config)
    direct = cv2.warpAffine(frame, result.transforms[0].astype(np.float64), (100, 50), flags=cv2.INTER_AREA)
    assert np.abs(result.crops[0].astype(int) - direct).mean() < 3


def test_cropper_keeps_only_patches():
    cropper = MouthCropper(MouthConfig())
    frame = np.zeros((1080, 1920, 3), np.uint8)
    cropper.add(frame, landmarks=face_template(centre=(960, 540), mouth_width=200))
    patch = cropper._patches[0].image
    assert patch.nbytes < frame.nbytes / 20


def test_interpolate_and_smooth_helpers():
    values = np.array([[0.0], [np.nan], [np.nan], [3.0], [np.nan]])
    found = np.isfinite(values[:, 0])
    np.testing.assert_allclose(interpolate_missing(values, found)[:, 0], [0, 1, 2, 3, 3])
    ramp = np.arange(10, dtype=float)[:, None]
    np.testing.assert_allclose(smooth(ramp, 5)[2:-2], ramp[2:-2])  # a moving average keeps a straight line
    np.testing.assert_allclose(smooth(np.full((4, 2), 7.0), 9), 7.0)  # window longer than the clip
    geometry = geometry_from_landmarks(face_template(mouth_width=40)[None])
    np.testing.assert_allclose(geometry[0], [180, 200, 40, 0], atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"height": 0}, "size"), ({"margin": 0.5}, "margin"), ({"smoothing": 0}, "smoothing"),
     ({"max_missing_share": 1.0}, "max_missing_share"), ({"max_gap": -1}, "max_gap")],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MouthConfig(**kwargs)


def test_mismatched_inputs_are_rejected():
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="3 frames but 2"):
        crop_mouth(frames, np.stack([face_template((30, 30), 20)] * 2))
    with pytest.raises(ValueError, match="exactly one"):
        crop_mouth(frames)
    cropper = MouthCropper()
    cropper.add(frames[0], landmarks=face_template((30, 30), 20))
    with pytest.raises(ValueError, match="throughout"):
        cropper.add(frames[1], box=np.array([1, 2, 30, 20]))


@pytest.mark.parametrize("grey", [False, True])
def test_bgr_frames_give_the_same_rgb_crops(grey):
    landmarks = np.stack([face_template()] * 3)
    frames = np.stack([draw_frame(points) for points in landmarks])
    config = MouthConfig(grey=grey)
    expected = crop_mouth(frames, landmarks, config).crops
    cropper = MouthCropper(config, bgr=True)
    for frame, points in zip(frames, landmarks):
        cropper.add(np.ascontiguousarray(frame[:, :, ::-1]), landmarks=points)
    np.testing.assert_array_equal(cropper.finish().crops, expected)
