"""lipnet_ko.video.reader: decoding, time ranges, lying headers and clear errors. No dlib."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipnet_ko.video import reader as video
from lipnet_ko.video.reader import VideoError, VideoReader, estimate_fps, probe, read_frames
from videos import write_video


def write_index_video(path: Path, count: int = 100, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> Path:
    """MJPG AVI whose frame i is a flat grey of level 2*i, so a frame's content tells its index."""
    frames = np.repeat((2 * np.arange(count, dtype=np.uint8))[:, None, None, None], 3, axis=3)
    return write_video(path, np.broadcast_to(frames, (count, size[1], size[0], 3)), fps)


def frame_indices(frames: np.ndarray) -> np.ndarray:
    return np.round(frames[:, :, :, 0].mean(axis=(1, 2)) / 2).astype(int)


def test_read_grid_clip(grid_videos):
    clip = read_frames(grid_videos[0])
    assert clip.frames.shape == (75, 288, 360, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == pytest.approx(25.0)
    np.testing.assert_allclose(np.diff(clip.timestamps), 0.04, atol=1e-6)
    # RGB, not OpenCV's BGR: compare with a direct decode.
    capture = cv2.VideoCapture(str(grid_videos[0]))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    np.testing.assert_array_equal(clip.frames[0], bgr[:, :, ::-1])


def test_probe_grid(grid_videos):
    info = probe(grid_videos[0])
    assert (info.width, info.height, info.frame_count) == (360, 288, 75)
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(3.0)


def test_time_range_on_grid(grid_videos):
    clip = read_frames(grid_videos[0], start=1.0, end=2.0)
    assert clip.frame_count == 25
    assert clip.timestamps[0] == pytest.approx(1.0) and clip.timestamps[-1] == pytest.approx(1.96)
    whole = read_frames(grid_videos[0])
    np.testing.assert_array_equal(clip.frames, whole.frames[25:50])


def test_late_range_seeks_to_the_exact_frame(tmp_path):
    path = write_index_video(tmp_path / "index.avi")
    assert 7.0 > video.SEEK_THRESHOLD_S  # so this exercises the seek path
    clip = read_frames(path, start=7.0, end=8.0)
    np.testing.assert_allclose(clip.timestamps, np.arange(70, 80) / 10.0, atol=1e-6)
    assert np.abs(frame_indices(clip.frames) - np.arange(70, 80)).max() <= 1  # MJPG is lossy by a grey level or two


def test_seek_and_skip_agree(grid_videos, monkeypatch):
    seeked = read_frames(grid_videos[1], start=1.5, end=2.5)
    monkeypatch.setattr(video, "SEEK_THRESHOLD_S", 0.5)
    skipped_seek = read_frames(grid_videos[1], start=1.5, end=2.5)
    monkeypatch.setattr(video, "SEEK_THRESHOLD_S", 100.0)
    skipped = read_frames(grid_videos[1], start=1.5, end=2.5)
    np.testing.assert_array_equal(seeked.timestamps, skipped.timestamps)
    np.testing.assert_array_equal(skipped_seek.frames, skipped.frames)


def test_header_that_lies_about_frame_count(tmp_path):
    path = write_index_video(tmp_path / "lie.avi", count=30)
    data = bytearray(path.read_bytes())
    for tag, offset in ((b"avih", 16), (b"strh", 32)):  # dwTotalFrames / dwLength
        at = data.find(tag) + 8 + offset
        data[at:at + 4] = struct.pack("<I", 1000)
    path.write_bytes(bytes(data))
    assert probe(path).frame_count == 1000
    clip = read_frames(path)
    assert clip.frame_count == 30
    assert np.abs(frame_indices(clip.frames) - np.arange(30)).max() <= 1


def test_reader_streams_same_frames_as_read_frames(grid_videos):
    whole = read_frames(grid_videos[2], start=0.5, end=1.0)
    with VideoReader(grid_videos[2], start=0.5, end=1.0) as reader:
        streamed = list(reader)
        assert reader.fps == pytest.approx(25.0)
        np.testing.assert_array_equal(np.asarray(reader.timestamps), whole.timestamps)
    np.testing.assert_array_equal(np.stack(streamed), whole.frames)


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: _file(d / "empty.mp4", b""), "empty"),
        (lambda d: _file(d / "garbage.mp4", b"\x00not a video" * 500), "cannot open"),
        (lambda d: d, "folder"),
    ],
    ids=["missing", "zero-length", "garbage", "folder"],
)
def test_unreadable_inputs_raise_video_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(VideoError, match=message):
        read_frames(path)
    with pytest.raises(VideoError, match=message):
        probe(path)


def test_range_past_the_end_is_a_video_error(tmp_path):
    path = write_index_video(tmp_path / "short.avi", count=10)
    with pytest.raises(VideoError, match="no frames"):
        read_frames(path, start=3.0, end=4.0)


@pytest.mark.parametrize("start, end", [(-1.0, None), (2.0, 1.0), (1.0, 1.0)])
def test_invalid_range_is_a_value_error(grid_videos, start, end):
    with pytest.raises(ValueError, match="start|end"):
        read_frames(grid_videos[0], start=start, end=end)


def test_video_error_is_a_runtime_error():
    assert issubclass(VideoError, RuntimeError)


def test_estimate_fps():
    assert estimate_fps(np.arange(10) / 30.0) == pytest.approx(30.0)
    assert estimate_fps(np.array([0.0])) == video.FPS
    jittery = np.cumsum(np.r_[0.0, np.full(20, 0.04), 0.08, np.full(20, 0.04)])  # one dropped frame
    assert estimate_fps(jittery) == pytest.approx(25.0)
