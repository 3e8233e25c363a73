"""Mouth-region extraction: the one path from video to mouth crops.

``extract_mouth`` (frames in memory) and ``extract_mouth_from_video`` (a file, streamed) join the stages
video -> landmarks -> mouth. Training data preparation, ``lipnet-ko preprocess`` and ``transcribe`` all call
them, with one ``PreprocessConfig``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lipnet_ko.video.landmarks import DetectorConfig, LandmarkTracker
from lipnet_ko.video.mouth import MouthConfig, MouthCropper, NoFaceError
from lipnet_ko.video.reader import VideoError, VideoReader

logger = logging.getLogger(__name__)

_TRACKER: LandmarkTracker | None = None  # one per process: loading the predictor takes ~0.5 s


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that decides what a crop looks like: the one config for preprocess, training and transcribe."""

    mouth: MouthConfig = field(default_factory=MouthConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "PreprocessConfig":
        data = json.loads(text)
        return cls(mouth=MouthConfig(**data["mouth"]), detector=DetectorConfig(**data["detector"]))


@dataclass(frozen=True, eq=False)
class MouthResult:
    """Mouth crops of one clip with what produced them."""

    crops: np.ndarray  # uint8 [T, H, W, C]
    landmarks: np.ndarray  # float32 [T, 68, 2] source-frame px, gaps interpolated; all NaN when boxes were given
    boxes: np.ndarray | None  # float32 [T, 4] mouth boxes used (x0, y0, x1, y1) source px; None when detected
    found: np.ndarray  # bool [T]: face/box measured in that frame (False: interpolated)
    searched: np.ndarray  # bool [T]: False where the predictor skipped the frame on purpose (landmark_every)
    transforms: np.ndarray  # float32 [T, 2, 3] affine maps source px -> crop px
    fps: float | None  # frames per second of the source, when known
    timestamps: np.ndarray | None  # float64 [T] seconds from the start of the file, when read from a file
    timings: dict[str, float]  # seconds per stage: decode, detect, landmarks, crop, total


def process_tracker(config: DetectorConfig) -> LandmarkTracker:
    """This process's landmark tracker for ``config``, made once and reused across clips."""
    global _TRACKER
    if _TRACKER is None or _TRACKER.config != config:
        _TRACKER = LandmarkTracker(config)
    return _TRACKER


def _extract(
    frames: Iterator[np.ndarray],
    config: PreprocessConfig,
    boxes: np.ndarray | None,
    tracker: LandmarkTracker | None,
    bgr: bool = False,
) -> tuple[MouthResult, int]:
    timings = {"decode": 0.0, "detect": 0.0, "landmarks": 0.0, "crop": 0.0}
    t_start = time.perf_counter()
    cropper = MouthCropper(config.mouth, bgr=bgr)  # dlib does not care about channel order; only crops are swapped
    if boxes is None:
        tracker = tracker or process_tracker(config.detector)
        tracker.reset()
        before = dict(tracker.timings)
    else:
        boxes = np.asarray(boxes, dtype=np.float32)
    every = config.detector.landmark_every
    index = 0
    while True:
        t0 = time.perf_counter()
        frame = next(frames, None)
        timings["decode"] += time.perf_counter() - t0
        if frame is None:
            break
        t1 = time.perf_counter()
        if boxes is None:
            searched = index % every == 0
            points = tracker.update(frame, predict=searched)
            t1 = time.perf_counter()  # the tracker times detect/landmarks itself; crop starts here
            cropper.add(frame, landmarks=points, searched=searched)
        else:
            box = boxes[index] if index < len(boxes) else None
            cropper.add(frame, box=box)
        timings["crop"] += time.perf_counter() - t1
        index += 1
    if boxes is not None and abs(len(boxes) - index) > 1:
        logger.warning("got %d mouth boxes for %d frames; frames without a box count as missing", len(boxes), index)
    t2 = time.perf_counter()
    try:
        crops = cropper.finish()
    except NoFaceError as error:
        hint = tracker.explain_missing() if boxes is None else ""
        if not hint:
            raise
        raise NoFaceError(f"{error}; {hint}") from error
    timings["crop"] += time.perf_counter() - t2
    if boxes is None:
        for stage in ("detect", "landmarks"):
            timings[stage] = tracker.timings[stage] - before[stage]
    timings["total"] = time.perf_counter() - t_start
    landmarks = crops.landmarks if crops.landmarks is not None else np.full((index, 68, 2), np.nan, np.float32)
    result = MouthResult(crops.crops, landmarks, crops.boxes, crops.found, crops.searched, crops.transforms, None, None, timings)
    return result, index


def extract_mouth(
    frames: np.ndarray | Iterable[np.ndarray],
    config: PreprocessConfig | None = None,
    *,
    boxes: np.ndarray | None = None,
    fps: float | None = None,
    tracker: LandmarkTracker | None = None,
) -> MouthResult:
    """Mouth crops of one clip whose frames are already in memory.

    Args:
        frames: uint8 [T, H, W, 3] RGB, or an iterable of [H, W, 3] frames in clip order.
        config: crop and detection settings (default ``PreprocessConfig()``).
        boxes: float [T, 4] mouth boxes (x0, y0, x1, y1) in frame px, NaN rows where unknown; when given,
            no face detector runs.
        fps: the frames' rate, copied into the result.
        tracker: a ``LandmarkTracker`` to reuse (default: one per process).

    Returns:
        ``MouthResult`` with crops uint8 [T, H, W, C].

    Raises:
        NoFaceError: too many frames without a face (``MouthConfig.max_missing_share`` / ``max_gap``); the
            message adds what the tracker saw (faces upside down, rotated, too small) and the fix.
        LandmarkModelError: dlib or its model is missing (only when ``boxes`` is None).
    """
    config = config or PreprocessConfig()
    result, _ = _extract(iter(frames), config, boxes, tracker)
    return dataclasses.replace(result, fps=fps)


def extract_mouth_from_video(
    path: str | Path,
    start: float | None = None,
    end: float | None = None,
    config: PreprocessConfig | None = None,
    *,
    boxes: np.ndarray | None = None,
    tracker: LandmarkTracker | None = None,
) -> MouthResult:
    """Mouth crops of a video file (or of ``[start, end)`` seconds of it), decoded as a stream.

    Same crops as ``extract_mouth(read_frames(path, start, end).frames)``, but only a patch around the
    mouth of each frame is kept in memory, so long and 1080p videos are cheap.

    Args:
        path: video file (mp4, avi, mpg, mov, ...).
        start, end: time range in seconds; None = from the beginning / to the end.
        config: crop and detection settings (default ``PreprocessConfig()``).
        boxes: float [T, 4] mouth boxes per frame of the range (x0, y0, x1, y1) in source px; skips detection.
        tracker: a ``LandmarkTracker`` to reuse (default: one per process).

    Returns:
        ``MouthResult`` with ``fps`` and ``timestamps`` filled in.

    Raises:
        VideoError: the file cannot be read or has no frames in the range.
        NoFaceError: too many frames without a face (with the reason, as for ``extract_mouth``).
    """
    config = config or PreprocessConfig()
    with VideoReader(path, start, end, rgb=False) as reader:
        result, _ = _extract(_frames_or_error(reader), config, boxes, tracker, bgr=True)
        timestamps = np.asarray(reader.timestamps, dtype=np.float64)
        fps = reader.fps
    return dataclasses.replace(result, fps=fps, timestamps=timestamps)


def _frames_or_error(reader: VideoReader) -> Iterator[np.ndarray]:
    """The reader's frames; raises VideoError at the end if there were none."""
    yield from reader
    if not reader.timestamps:
        where = "" if reader.start is None and reader.end is None else (
            f" between {reader.start or 0.0:.3f} s and {'the end' if reader.end is None else f'{reader.end:.3f} s'}"
        )
        raise VideoError(f"no frames could be decoded{where}: {reader.path}")


