"""lipnet_ko.video.extract: a clip that fails says why (faces upside down, turned, too small), and a small face
in a large frame is cropped; on real GRID clips written as video files, as preprocess and transcribe read them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lipnet_ko.video.extract import extract_mouth, extract_mouth_from_video
from lipnet_ko.video.landmarks import load_models
from lipnet_ko.video.mouth import MOUTH, NoFaceError, apply_transform
from lipnet_ko.video.reader import read_frames
from videos import write_video


class BlindTracker:
    """Stands in for LandmarkTracker: never finds a face, and explains that with ``hint``."""

    def __init__(self, hint: str):
        self.hint = hint
        self.timings = {"detect": 0.0, "landmarks": 0.0}
        self.explained = 0

    def reset(self) -> None:
        pass

    def update(self, frame, predict=True):
        return None

    def explain_missing(self) -> str:
        self.explained += 1
        return self.hint


def test_a_failing_clip_carries_the_trackers_reason():
    frames = np.zeros((5, 48, 64, 3), np.uint8)
    tracker = BlindTracker("in 5 frame(s) the face is upside down (rotated more than about 90 degrees)")
    with pytest.raises(NoFaceError) as caught:
        extract_mouth(frames, tracker=tracker)
    assert str(caught.value) == (
        "no face found in any of the 5 frames; in 5 frame(s) the face is upside down (rotated more than about 90 degrees)"
    )
    assert tracker.explained == 1


def test_no_reason_leaves_the_message_as_it_was():
    with pytest.raises(NoFaceError) as caught:
        extract_mouth(np.zeros((5, 48, 64, 3), np.uint8), tracker=BlindTracker(""))
    assert str(caught.value) == "no face found in any of the 5 frames"


def test_mouth_boxes_fail_without_asking_a_tracker():
    tracker = BlindTracker("must not be asked")
    with pytest.raises(NoFaceError) as caught:
        extract_mouth(np.zeros((5, 48, 64, 3), np.uint8), boxes=np.full((5, 4), np.nan), tracker=tracker)
    assert str(caught.value) == "no face found in any of the 5 frames" and tracker.explained == 0


def small_face_video(path: Path, source: Path, face_px: float, frames: int = 75) -> tuple[Path, float]:
    """The GRID clip scaled so dlib's face box is ``face_px`` wide, placed at (300, 200) in a 640x480 frame."""
    detector, _ = load_models()
    clip = read_frames(source).frames[:frames]
    factor = face_px / detector(clip[0], 0)[0].width()
    canvas = []
    for frame in clip:
        small = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        canvas.append(cv2.copyMakeBorder(small, 200, 480 - 200 - h, 300, 640 - 300 - w, cv2.BORDER_REPLICATE))
    return write_video(path, np.stack(canvas)), factor


@pytest.mark.dlib
@pytest.mark.parametrize("clip", [0, 5])  # bbaf2n: dlib finds the flipped face now and then; lrwp9a: in every frame
def test_an_upside_down_video_fails_with_the_reason_and_the_fix(grid_videos, tmp_path, clip):
    frames = read_frames(grid_videos[clip]).frames
    video = write_video(tmp_path / "flipped.avi", np.ascontiguousarray(frames[:, ::-1]))  # np.flipud of each frame
    with pytest.raises(NoFaceError) as caught:
        extract_mouth_from_video(video)
    message = str(caught.value)
    assert message.startswith("no face found in any of the 75 frames; in ")
    assert "frame(s) the face is upside down" in message
    assert "frame 0 shows an upright face when turned by 180 degrees" in message and "-vf hflip,vflip" in message


@pytest.mark.dlib
def test_a_video_turned_90_degrees_names_the_turn(grid_videos, tmp_path):
    frames = read_frames(grid_videos[2], end=1.0).frames
    video = write_video(tmp_path / "turned.avi", np.stack([cv2.rotate(f, cv2.ROTATE_90_CLOCKWISE) for f in frames]))
    with pytest.raises(NoFaceError, match=r"no face found in any of the 25 frames; frame 0 shows an upright face when "
                                          r"turned 90 degrees counter-clockwise: .*-vf transpose=2"):
        extract_mouth_from_video(video)


@pytest.mark.dlib
def test_a_36_px_face_in_a_640x480_video_is_cropped(grid_videos, tmp_path):
    video, factor = small_face_video(tmp_path / "small.avi", grid_videos[0], face_px=36)
    result = extract_mouth_from_video(video)
    assert result.crops.shape == (75, 50, 100, 3)
    assert result.found[result.searched].all()
    # The mouth is where the GRID clip's mouth is, scaled and moved like the picture.
    upright = extract_mouth_from_video(grid_videos[0]).landmarks[:, MOUTH].mean(axis=1) * factor + [300, 200]
    measured = result.found
    error = np.linalg.norm(result.landmarks[measured, MOUTH].mean(axis=1) - upright[measured], axis=-1)
    assert error.mean() < 1.5
    centre = apply_transform(result.transforms, result.landmarks[:, MOUTH]).mean(axis=1)
    # and in the middle of every crop (up to the smoothing: a source px is about 6 crop px here; an eye would be 30 off)
    np.testing.assert_allclose(centre, [[49.5, 24.5]] * 75, atol=3.0)


@pytest.mark.dlib
def test_a_face_too_small_even_for_the_retry_names_the_option(grid_videos, tmp_path):
    video, _ = small_face_video(tmp_path / "tiny.avi", grid_videos[0], face_px=25, frames=20)
    with pytest.raises(NoFaceError, match=r"no face found in any of the 20 frames; frame 0 has a face of only about 2\d px, "
                                          r"found with DetectorConfig\(upsample=2\).*higher resolution"):
        extract_mouth_from_video(video)
