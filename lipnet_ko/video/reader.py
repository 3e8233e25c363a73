"""Video decoding: files -> RGB frames with their timestamps.

Owns everything that touches ``cv2.VideoCapture``: probing a file (``probe``), streaming its frames
inside an optional time range (``VideoReader``) and reading a whole clip into memory (``read_frames``).
Nothing here knows about faces or mouths.

Header values are treated as hints. The frame count is never trusted (files whose header lies are
read until the decoder stops), and each frame carries the timestamp the demuxer reports, so variable
frame rate files keep their real timing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

logger = logging.getLogger(__name__)

FPS = 25.0  # frames per second of GRID and of LipNet's training data; the fallback when a file has no usable rate
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mpg", ".mpeg", ".mov", ".mkv", ".webm", ".m4v")  # what folder inputs pick up
SEEK_THRESHOLD_S = 5.0  # seek instead of skipping frames one by one when the range starts later than this
SEEK_PREROLL_S = 1.0  # seek this much before the range start, then skip forward exactly
_MIN_FPS, _MAX_FPS = 1.0, 1000.0  # header rates outside this are treated as missing


class VideoError(RuntimeError):
    """A video file cannot be opened, is empty, or has no frames in the requested time range."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about a video (hints only; see the module docstring)."""

    path: Path
    fps: float  # frames per second from the header, or FPS when the header has none
    frame_count: int  # from the header; may be wrong or 0, never relied upon
    width: int  # pixels
    height: int  # pixels

    @property
    def duration(self) -> float:
        """Seconds, from the header's frame count and rate (a hint, like them)."""
        return self.frame_count / self.fps


@dataclass(frozen=True, eq=False)
class Video:
    """Frames of one clip, decoded into memory."""

    frames: np.ndarray  # uint8 [T, H, W, 3], RGB
    fps: float  # nominal frames per second (header, or estimated from timestamps)
    timestamps: np.ndarray  # float64 [T], seconds from the start of the file (not of the range)
    path: Path
    start: float | None  # requested range in seconds; None = from the beginning
    end: float | None  # None = to the end

    @property
    def frame_count(self) -> int:
        return int(self.frames.shape[0])


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise VideoError(f"video not found: {path}")
    if path.is_dir():
        raise VideoError(f"expected a video file, got a folder: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"video file is empty (0 bytes): {path}")
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"cannot open video (not a video, corrupt, or an unsupported codec): {path}")
    return capture


def _info(path: Path, capture: cv2.VideoCapture) -> VideoInfo:
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not (math.isfinite(fps) and _MIN_FPS <= fps <= _MAX_FPS):
        logger.warning("%s: header frame rate %r is unusable; assuming %.1f fps", path, fps, FPS)
        fps = FPS
    frame_count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return VideoInfo(
        path=path,
        fps=float(fps),
        frame_count=int(frame_count) if math.isfinite(frame_count) and frame_count > 0 else 0,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )


def probe(path: str | Path) -> VideoInfo:
    """Read a video's header: frame rate, frame count and size, without decoding frames.

    Raises:
        VideoError: the file is missing, empty or cannot be opened.
    """
    path = Path(path)
    capture = _open(path)
    try:
        info = _info(path, capture)
    finally:
        capture.release()
    if info.width <= 0 or info.height <= 0:
        raise VideoError(f"video has no picture size in its header (no video stream?): {path}")
    return info


def find_videos(folder: str | Path) -> list[Path]:
    """Every video file below ``folder`` (recursively, by ``VIDEO_EXTENSIONS``), sorted; hidden files skipped."""
    return sorted(
        p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")
    )


def _check_range(start: float | None, end: float | None) -> None:
    if start is not None and start < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start}")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end ({end} s) must be after start ({start} s)")


class VideoReader:
    """Streams the RGB frames of one video inside ``[start, end)`` seconds.

    Iterating yields uint8 ``[H, W, 3]`` RGB frames (BGR, as decoded, with ``rgb=False``: converting a
    1080p frame costs about a fifth of decoding it), one at a time, so long or high-resolution videos
    never have to fit in memory. After (or during) iteration, ``timestamps`` holds the time in seconds
    of every frame yielded so far. Frames before ``start`` are skipped with ``grab()`` (demux and decode,
    no colour conversion); a range that starts late seeks first.

    Use as a context manager, or call ``close()``::

        with VideoReader("talk.mp4", start=12.0, end=15.5) as reader:
            for frame in reader:
                ...
    """

    def __init__(self, path: str | Path, start: float | None = None, end: float | None = None, rgb: bool = True):
        _check_range(start, end)
        self.path = Path(path)
        self.rgb = rgb
        self.start = start
        self.end = end
        self._capture = _open(self.path)
        self.info = _info(self.path, self._capture)
        header_fps = self._capture.get(cv2.CAP_PROP_FPS)
        self._header_fps_ok = math.isfinite(header_fps) and _MIN_FPS <= header_fps <= _MAX_FPS
        self.timestamps: list[float] = []
        self._started = False

    @property
    def fps(self) -> float:
        """Nominal frame rate: the header's, else the median spacing of the timestamps read so far."""
        if self._header_fps_ok:
            return self.info.fps
        return estimate_fps(np.asarray(self.timestamps), default=self.info.fps)

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _timestamp(self, index: int, previous: float | None) -> float:
        """Time of the frame just grabbed, in seconds; index/fps when the container gives none."""
        msec = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        t = msec / 1000.0 if math.isfinite(msec) else float("nan")
        if not math.isfinite(t) or (previous is not None and t <= previous):
            # Missing or non-increasing pts (some AVI/raw streams): fall back to the nominal rate.
            t = index / self.info.fps if previous is None else previous + 1.0 / self.info.fps
        return t

    def _grab_to_start(self) -> tuple[bool, int, float | None]:
        """Positions the capture on the first frame at or after ``start``; returns (grabbed, index, t)."""
        start = self.start or 0.0
        eps = 1e-4  # seconds; absorbs rounding in the demuxer's millisecond timestamps
        if start > SEEK_THRESHOLD_S:
            self._capture.set(cv2.CAP_PROP_POS_MSEC, (start - SEEK_PREROLL_S) * 1000.0)
            if self._capture.grab():
                t = self._timestamp(0, None)
                if t <= start + eps:
                    index = max(0, int(round(t * self.info.fps)))
                    while t < start - eps:
                        if not self._capture.grab():
                            return False, index, None
                        index += 1
                        t = self._timestamp(index, t)
                    return True, index, t
            # The seek overshot or failed: reopen and skip forward frame by frame, which is always exact.
            logger.debug("%s: seek to %.3f s was inexact; skipping frames from the start", self.path, start)
            self._capture.release()
            self._capture = _open(self.path)
        index, t = -1, None
        while True:
            if not self._capture.grab():
                return False, index, None
            index += 1
            t = self._timestamp(index, t)
            if t >= start - eps:
                return True, index, t

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError("a VideoReader can be iterated only once; open a new one")
        self._started = True
        grabbed, index, t = self._grab_to_start()
        while grabbed and (self.end is None or t < self.end):
            ok, bgr = self._capture.retrieve()
            if not ok or bgr is None:
                logger.warning("%s: frame %d could not be decoded; stopping there", self.path, index)
                break
            self.timestamps.append(t)
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if self.rgb else bgr
            grabbed = self._capture.grab()
            index += 1
            if grabbed:
                t = self._timestamp(index, t)
        if self.info.frame_count and self.start is None and self.end is None:
            if abs(len(self.timestamps) - self.info.frame_count) > 1:
                logger.debug(
                    "%s: header says %d frames, decoded %d", self.path, self.info.frame_count, len(self.timestamps)
                )


def estimate_fps(timestamps: np.ndarray, default: float = FPS) -> float:
    """Frames per second from frame times in seconds (median spacing, robust to a few dropped frames)."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.size < 2:
        return default
    spacing = float(np.median(np.diff(timestamps)))
    return 1.0 / spacing if spacing > 0 else default


def read_frames(path: str | Path, start: float | None = None, end: float | None = None) -> Video:
    """Decodes a video (or the part of it in ``[start, end)`` seconds) into memory.

    Args:
        path: any file FFmpeg can read (mp4, avi, mpg, mov, ...).
        start: seconds from the beginning of the file; None = 0.
        end: seconds, exclusive; None = to the end of the file.

    Returns:
        A ``Video`` with ``frames`` uint8 [T, H, W, 3] RGB, ``timestamps`` float64 [T] in seconds and ``fps``.

    Raises:
        VideoError: the file is missing, empty, unreadable, or has no frame in the range.
        ValueError: the range itself is invalid (negative start, end before start).
    """
    with VideoReader(path, start, end) as reader:
        frames = list(reader)
        timestamps = np.asarray(reader.timestamps, dtype=np.float64)
        fps = reader.fps
    if not frames:
        until = "the end" if end is None else end
        where = "" if start is None and end is None else f" between {start or 0.0:.3f} s and {until}"
        raise VideoError(f"no frames could be decoded{where}: {path}")
    return Video(np.stack(frames), fps, timestamps, Path(path), start, end)
