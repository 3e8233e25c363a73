"""lipnet_ko.video.landmarks: the tracked path on real GRID faces, agreement with per-frame detection, and the
cases with no face, a face that leaves, and two faces."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lipnet_ko.video import landmarks as landmarks_module
from lipnet_ko.video.landmarks import (
    DetectorConfig,
    LandmarkModelError,
    LandmarkTracker,
    detect_landmarks_naive,
    predictor_path,
    track_landmarks,
)
from lipnet_ko.video.mouth import interpolate_missing
from lipnet_ko.video.reader import read_frames


def shift_right(frame: np.ndarray, pixels: int) -> np.ndarray:
    """The frame moved ``pixels`` to the right, the uncovered strip filled with its first column."""
    if pixels <= 0:
        return frame
    shifted = np.empty_like(frame)
    pixels = min(pixels, frame.shape[1])
    shifted[:, pixels:] = frame[:, : frame.shape[1] - pixels]
    shifted[:, :pixels] = frame[:, :1]
    return shifted


def face_leaves(frames: np.ndarray, start: int, speed: int = 40) -> np.ndarray:
    """From frame ``start`` on, the picture slides right by ``speed`` px a frame until the face is gone."""
    return np.stack([shift_right(f, (t - start + 1) * speed if t >= start else 0) for t, f in enumerate(frames)])


@pytest.fixture(scope="module")
def grid_frames(grid_videos) -> list[np.ndarray]:
    return [read_frames(path).frames for path in grid_videos]


def test_predictor_file_is_found():
    path = predictor_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat" and path.stat().st_size > 50_000_000


def test_missing_model_gives_install_hint(monkeypatch):
    monkeypatch.setattr(landmarks_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LandmarkModelError, match="pip install"):
        predictor_path()


def test_missing_dlib_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(LandmarkModelError, match="pip install dlib"):
        landmarks_module._import_dlib()


@pytest.mark.parametrize("kwargs", [{"detect_every": 0}, {"landmark_every": 0}, {"detect_width": 800}, {"upsample": -1}])
def test_config_validation(kwargs):
    with pytest.raises(ValueError, match="DetectorConfig"):
        DetectorConfig(**kwargs)


@pytest.mark.dlib
def test_tracker_finds_a_face_in_every_grid_frame(grid_frames):
    tracker = LandmarkTracker()
    for frames in grid_frames:
        tracker.reset()
        points = np.stack([tracker.update(frame) for frame in frames])  # np.stack fails on a None
        assert points.shape == (75, 68, 2)
        height, width = frames.shape[1:3]
        assert (points[..., 0] >= 0).all() and (points[..., 0] < width).all()
        assert (points[..., 1] >= 0).all() and (points[..., 1] < height).all()
    # Tracking: about one detection per detect_every frames, not one per frame.
    assert tracker.detections <= len(grid_frames) * (75 // DetectorConfig().detect_every + 2)


@pytest.mark.dlib
@pytest.mark.parametrize("clip, every", [(0, 1), (4, 1), (0, 2)])
def test_tracked_landmarks_agree_with_per_frame_detection(grid_frames, clip, every):
    frames = grid_frames[clip]
    tracked = track_landmarks(frames, DetectorConfig(landmark_every=every))
    measured = np.isfinite(tracked).all(axis=(1, 2))
    assert measured.sum() == len(range(0, 75, every))
    tracked = interpolate_missing(tracked, measured)  # as mouth.py fills the skipped frames
    naive = detect_landmarks_naive(frames, upsample=0)
    assert np.isfinite(naive).all()
    error = np.linalg.norm(tracked[:, 48:68] - naive[:, 48:68], axis=-1)  # px, per mouth point
    assert error.mean() < 1.5 * every and error.max() < 6 * every
    centre_error = np.linalg.norm(tracked[:, 48:68].mean(1) - naive[:, 48:68].mean(1), axis=-1)
    assert centre_error.max() < 3


@pytest.mark.dlib
def test_no_face_in_a_gradient():
    ramp = np.linspace(0, 255, 360, dtype=np.float32)
    frames = np.stack([np.stack([np.tile(ramp, (288, 1))] * 3, -1).astype(np.uint8)] * 5)
    assert np.isnan(track_landmarks(frames)).all()
    assert np.isnan(detect_landmarks_naive(frames[:1], upsample=0)).all()


@pytest.mark.dlib
def test_face_leaving_the_frame_is_lost(grid_frames):
    frames = face_leaves(grid_frames[1], start=37)
    points = track_landmarks(frames, DetectorConfig(landmark_every=1))
    found = np.isfinite(points).all(axis=(1, 2))
    assert found[:37].all()
    assert not found[45:].any()  # gone for good once it has slid out (shift >= 360 px from frame 45)
    # While it is partly out, any landmarks still given keep the mouth inside the picture.
    mouth_x = points[found, 48:68, 0].mean(axis=1)
    assert (mouth_x < 360).all()


@pytest.mark.dlib
def test_two_faces_keep_the_tracked_one(grid_frames):
    import cv2

    face = grid_frames[2][0]
    small = cv2.resize(face, (252, 202), interpolation=cv2.INTER_AREA)  # 70% size
    canvas = np.full((288, 720, 3), face[0, 0], np.uint8)
    alone = canvas.copy()
    alone[40:242, 420:672] = small  # the smaller face on the right, alone
    both = alone.copy()
    both[:, :360] = face  # then a larger face enters on the left
    frames = np.stack([alone] * 5 + [both] * 10)
    tracker = LandmarkTracker(DetectorConfig(detect_every=3))
    xs = [tracker.update(frame)[48:68, 0].mean() for frame in frames]
    assert min(xs) > 420  # stayed on the right-hand face through three re-detections
    fresh = LandmarkTracker()
    assert fresh.update(both)[48:68, 0].mean() < 360  # with nothing tracked yet, the largest face wins


@pytest.mark.dlib
def test_landmark_every_skips_predictor_frames(grid_frames):
    points = track_landmarks(grid_frames[3][:20], DetectorConfig(landmark_every=2))
    found = np.isfinite(points).all(axis=(1, 2))
    np.testing.assert_array_equal(found, np.arange(20) % 2 == 0)
