"""Face landmarks: RGB frames -> 68 iBUG landmarks per frame. The only module that imports dlib.

Two paths:

* ``LandmarkTracker`` (the fast one): dlib's HOG face detector runs on a downscaled frame, and only
  when tracking is lost (the face region stops looking like the detected face: it left, was covered,
  or the scene cut) or every ``detect_every`` frames. In between, the face box
  is placed from the previous frame's landmarks and the 68-point shape predictor runs on the
  full-resolution frame (its cost does not depend on the image size).
* ``detect_landmarks_naive``: full-resolution detection on every frame, as common LipNet
  preprocessing does; the benchmark baseline and the reference for the agreement test.

Landmarks are float32 ``[68, 2]`` arrays of (x, y) in pixels of the frame given; a frame without a
face gives NaN rows in the stacked ``[T, 68, 2]`` form. Frames may be RGB or BGR: dlib's HOG features
and its predictor's pixel intensities are symmetric in the colour channels, so the order does not matter.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

logger = logging.getLogger(__name__)

NUM_LANDMARKS = 68  # iBUG 300-W markup: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
ROI_MARGIN = 0.3  # the predictor gets the face box plus this share of its size on each side
INSTALL_HINT = "pip install dlib-bin face-recognition-models  (or: pip install 'lipnet-ko')"


class LandmarkModelError(RuntimeError):
    """dlib or the 68-point landmark model is not installed."""


@dataclass(frozen=True)
class DetectorConfig:
    """How faces are found and tracked. Owned by this module; nested in ``PreprocessConfig``."""

    detect_every: int = 50  # frames between re-detections while tracking (re-anchors the box, finds a bigger face)
    detect_width: int = 320  # px; frames are downscaled to this width for the first detection attempt
    max_detect_width: int = 640  # px; with no face at detect_width, retry at twice the width up to this (or the source)
    face_size: int = 100  # px; while tracking, re-detection scales the frame so the tracked face is about this wide
    upsample: int = 0  # dlib's upsample_num_times for each detection (each step costs about 4x)
    landmark_every: int = 2  # run the predictor on every n-th frame only; mouth.py interpolates the others (see BENCHMARKS.md)
    min_similarity: float = 0.5  # correlation of the face region with its look at the last detection; below it = lost
    min_visible: float = 0.6  # share of the landmarks' box that must lie inside the frame to count as a face

    def __post_init__(self) -> None:
        for name in ("detect_every", "detect_width", "max_detect_width", "face_size", "landmark_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"DetectorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_detect_width < self.detect_width:
            raise ValueError(
                f"DetectorConfig.max_detect_width ({self.max_detect_width}) must be >= detect_width ({self.detect_width})"
            )
        if self.upsample < 0:
            raise ValueError(f"DetectorConfig.upsample must be >= 0, got {self.upsample}")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"DetectorConfig.min_similarity must be in [-1, 1], got {self.min_similarity}")
        if not 0.0 < self.min_visible <= 1.0:
            raise ValueError(f"DetectorConfig.min_visible must be in (0, 1], got {self.min_visible}")


def predictor_path() -> Path:
    """Path of the 68-point model file shipped by the ``face-recognition-models`` package.

    Found with ``importlib.util.find_spec`` so the package itself (which imports pkg_resources) is never imported.

    Raises:
        LandmarkModelError: the package or the file is missing, with an install hint.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LandmarkModelError(f"the 68-point landmark model is missing: install it with `{INSTALL_HINT}`")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise LandmarkModelError(f"landmark model file not found at {path}; reinstall with `{INSTALL_HINT}`")
    return path


def _import_dlib():
    try:
        import dlib
    except ImportError as error:
        raise LandmarkModelError(f"dlib is required for face detection: install it with `{INSTALL_HINT}`") from error
    return dlib


@functools.lru_cache(maxsize=1)
def load_models():
    """(detector, predictor), loaded once per process (the predictor file is ~100 MB and takes ~0.5 s)."""
    dlib = _import_dlib()
    path = predictor_path()
    logger.debug("loading dlib face detector and %s", path)
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


def _to_array(shape) -> np.ndarray:
    part = shape.part
    return np.array([(part(i).x, part(i).y) for i in range(NUM_LANDMARKS)], dtype=np.float32)  # [68, 2]


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = _area(np.array([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])]))
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def _landmark_frame(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (x, y) and size (px) of a landmark set; the reference frame for placing boxes."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (lo + hi) / 2.0, float(max(hi - lo))


class LandmarkTracker:
    """Stateful per-clip face tracker; feed it a clip's frames in order with ``update``.

    The detector and predictor are loaded once per process and shared by all trackers. Call ``reset()``
    (or make a new tracker) between clips. ``timings`` accumulates seconds spent in ``detect`` and
    ``landmarks``; ``detections`` counts detector runs.
    """

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self._detector, self._predictor = load_models()
        self._dlib = _import_dlib()
        self.timings = {"detect": 0.0, "landmarks": 0.0}
        self.detections = 0
        self.reset()

    def reset(self) -> None:
        """Forgets the tracked face (start of a new clip); keeps the accumulated timings."""
        self._points: np.ndarray | None = None  # landmarks of the last frame with a face
        self._box_offset = np.zeros(2)  # detector box centre relative to the landmark frame, in units of its size
        self._box_scale = np.ones(2)  # detector box (w, h) in units of the landmark frame size
        self._since_detect = 0
        self._template: np.ndarray | None = None  # normalised grey thumbnail of the face at the last detection
        self._index = -1

    def _detect(self, frame: np.ndarray) -> list[np.ndarray]:
        """Face boxes [x0, y0, x1, y1] in frame pixels, from a downscaled copy of the frame."""
        t0 = time.perf_counter()
        height, width = frame.shape[:2]
        if self._points is not None:
            _, size = _landmark_frame(self._points)
            widths = [min(width, max(self.config.detect_width / 2, width * self.config.face_size / max(size, 1.0)))]
        else:
            widths, w = [], self.config.detect_width
            while True:
                widths.append(min(w, width))
                if w >= min(width, self.config.max_detect_width):
                    break
                w = min(w * 2, self.config.max_detect_width)
        boxes: list[np.ndarray] = []
        for target in dict.fromkeys(int(round(w)) for w in widths):
            scale = target / width
            if scale >= 1.0:
                small = frame
            else:
                small = cv2.resize(frame, (target, max(1, int(round(height * scale)))), interpolation=cv2.INTER_AREA)
            rects = self._detector(small, self.config.upsample)
            self.detections += 1
            if rects:
                boxes = [np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64) / min(scale, 1.0) for r in rects]
                break
        self.timings["detect"] += time.perf_counter() - t0
        return boxes

    def _predict(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The predictor on a contiguous copy of the face region when the frame is much larger than it.

        Same landmarks (the predictor samples pixels near the box only, and sees 0 outside the image
        either way), but about half the time on a 1080p frame, where reading a 6 MB image with a large
        stride misses the cache (figures in BENCHMARKS.md, transcription).
        """
        t0 = time.perf_counter()
        height, width = frame.shape[:2]
        margin = ROI_MARGIN * float(max(box[2] - box[0], box[3] - box[1]))
        x0, y0 = max(0, int(box[0] - margin)), max(0, int(box[1] - margin))
        x1, y1 = min(width, int(box[2] + margin) + 1), min(height, int(box[3] + margin) + 1)
        if x1 - x0 < 2 or y1 - y0 < 2 or (x1 - x0) * (y1 - y0) * 4 > width * height:
            x0, y0, x1, y1 = 0, 0, width, height  # a small frame (or a box off it): the copy would not pay
        region = frame if (x1 - x0, y1 - y0) == (width, height) else np.ascontiguousarray(frame[y0:y1, x0:x1])
        rect = self._dlib.rectangle(*(int(round(v)) for v in (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)))
        points = _to_array(self._predictor(region, rect))
        points += np.array([x0, y0], dtype=np.float32)
        self.timings["landmarks"] += time.perf_counter() - t0
        return points

    def _box_from_points(self, points: np.ndarray) -> np.ndarray:
        centre, size = _landmark_frame(points)
        c = centre + self._box_offset * size
        half = self._box_scale * size / 2.0
        return np.concatenate([c - half, c + half])

    def _visible(self, points: np.ndarray, frame_shape: tuple[int, ...]) -> bool:
        height, width = frame_shape[:2]
        lo, hi = points.min(axis=0), points.max(axis=0)
        box = np.concatenate([lo, hi])
        inside = _area(np.array([max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height)]))
        mouth_centre = points[48:68].mean(axis=0)
        mouth_inside = 0 <= mouth_centre[0] < width and 0 <= mouth_centre[1] < height
        return mouth_inside and _area(box) > 0 and inside / _area(box) >= self.config.min_visible

    @staticmethod
    def _face_thumbnail(frame: np.ndarray, points: np.ndarray) -> np.ndarray | None:
        """The landmarks' box as a 16x16 grey thumbnail, zero mean and unit norm (None if flat or off-frame)."""
        height, width = frame.shape[:2]
        lo, hi = np.floor(points.min(axis=0)).astype(int), np.ceil(points.max(axis=0)).astype(int)
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0] + 1, width), min(hi[1] + 1, height)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        step = max(1, min(x1 - x0, y1 - y0) // 32)  # subsample first: INTER_AREA over a big region is slow
        thumb = cv2.resize(frame[y0:y1:step, x0:x1:step], (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
        if thumb.ndim == 3:
            thumb = thumb.mean(axis=2)
        thumb -= thumb.mean()
        norm = float(np.linalg.norm(thumb))
        return thumb / norm if norm > 1.0 else None

    def _is_lost(self, frame: np.ndarray) -> bool:
        """True when the tracked face's region no longer looks like the face seen at the last detection.

        The shape predictor always returns 68 points, face or not, so tracking needs its own check: a
        normalised correlation of tiny thumbnails (about 0.05 ms). Over a whole GRID clip a tracked face
        stays above 0.89 against its first frame; a face that has left, or a scene cut, drops to about 0.
        """
        if self._template is None or self._points is None:
            return True
        thumb = self._face_thumbnail(frame, self._points)
        return thumb is None or float((thumb * self._template).sum()) < self.config.min_similarity

    def _choose(self, boxes: list[np.ndarray]) -> np.ndarray:
        if self._points is not None:
            tracked = self._box_from_points(self._points)
            overlaps = [_iou(tracked, b) for b in boxes]
            best = int(np.argmax(overlaps))
            if overlaps[best] > 0.3:
                return boxes[best]
        return max(boxes, key=_area)

    def update(self, frame: np.ndarray, predict: bool = True) -> np.ndarray | None:
        """Landmarks of the tracked face in the next frame of the clip.

        Args:
            frame: uint8 [H, W, 3] (RGB or BGR) or [H, W] grey, full resolution.
            predict: False skips the predictor on this frame (``landmark_every``); the tracker still
                checks that the face is there, so a lost face is noticed.

        Returns:
            float32 [68, 2] (x, y) in frame pixels, or None when no face is found (or ``predict`` is False).
        """
        self._index += 1
        self._since_detect += 1
        lost = self._is_lost(frame)
        if not predict and not lost:
            return None
        points = None
        need_detect = lost or self._since_detect >= self.config.detect_every
        if not need_detect:
            points = self._predict(frame, self._box_from_points(self._points))
            if not self._visible(points, frame.shape):
                points, need_detect = None, True
        if need_detect:
            boxes = self._detect(frame)
            self._since_detect = 0
            if not boxes:
                self._points, self._template = None, None
                return None
            box = self._choose(boxes)
            points = self._predict(frame, box)
            if not self._visible(points, frame.shape):
                self._points, self._template = None, None
                return None
            centre, size = _landmark_frame(points)
            self._box_offset = ((box[:2] + box[2:]) / 2.0 - centre) / size
            self._box_scale = (box[2:] - box[:2]) / size
            self._template = self._face_thumbnail(frame, points)
        self._points = points
        return points if predict else None


def track_landmarks(frames: Iterable[np.ndarray], config: DetectorConfig | None = None) -> np.ndarray:
    """Landmarks of every frame of one clip with the fast tracked path.

    Args:
        frames: uint8 frames [H, W, 3] (an array [T, H, W, 3] or any iterable), in clip order.
        config: detection settings; ``landmark_every`` > 1 leaves the skipped frames NaN.

    Returns:
        float32 [T, 68, 2], (x, y) in frame pixels; NaN rows where no face was found.
    """
    config = config or DetectorConfig()
    tracker = LandmarkTracker(config)
    rows = []
    for index, frame in enumerate(frames):
        points = tracker.update(frame, predict=index % config.landmark_every == 0)
        rows.append(np.full((NUM_LANDMARKS, 2), np.nan, np.float32) if points is None else points)
    return np.stack(rows) if rows else np.zeros((0, NUM_LANDMARKS, 2), np.float32)


def detect_landmarks_naive(frames: Iterable[np.ndarray], upsample: int = 1) -> np.ndarray:
    """Baseline: full-resolution HOG detection (upsampled ``upsample`` times) and the predictor on every frame.

    The largest face is used. This is what common LipNet preprocessing does; it is about 10-25x slower
    than ``track_landmarks`` and exists for the benchmark and as the reference in tests.

    Returns:
        float32 [T, 68, 2], (x, y) in frame pixels; NaN rows where no face was found.
    """
    detector, predictor = load_models()
    dlib = _import_dlib()
    rows = []
    for frame in frames:
        rects = detector(frame, upsample)
        if not rects:
            rows.append(np.full((NUM_LANDMARKS, 2), np.nan, np.float32))
            continue
        rect = max(rects, key=lambda r: r.area())
        rows.append(_to_array(predictor(frame, dlib.rectangle(rect.left(), rect.top(), rect.right(), rect.bottom()))))
    return np.stack(rows) if rows else np.zeros((0, NUM_LANDMARKS, 2), np.float32)
