"""Face landmarks: RGB frames -> 68 iBUG landmarks per frame. The only module that imports dlib.

Two paths:

* ``LandmarkTracker`` (the fast one): dlib's HOG face detector runs on a downscaled frame, and only
  when tracking is lost (the face region stops looking like the detected face: it left, was covered,
  or the scene cut) or every ``detect_every`` frames. In between, the face box
  is placed from the previous frame's landmarks and the 68-point shape predictor runs on the
  full-resolution frame (its cost does not depend on the image size).
* ``detect_landmarks_naive``: full-resolution detection on every frame, as common LipNet
  preprocessing does; the benchmark baseline and the reference for the agreement test.

The tracker only hands out landmarks that look like an upright face, because the predictor always
returns an upright-looking 68-point shape, even on an upside-down face (its "mouth" then lies on an
eye). The detector misses faces turned by more than about 45-60 degrees, but fires on some
upside-down ones with a low score: a newly found face that scores below ``UPRIGHT_SURE_SCORE`` is
scored again on its region as it is and turned by 180 degrees, and an upside-down face scores higher
turned. Every landmark set must have the eyes level within ``MAX_ROLL_DEGREES`` and the nose and
mouth below them in the face's own frame, with a face's proportions. Frames that fail count as
frames without a face; when the clip fails, ``explain_missing`` says why for the ``NoFaceError``
message (and tries the clip's first faceless frame turned by 90 and 180 degrees, to name the turn).
Small faces: when nothing is found, detection is retried with one more upsampling step (about 4x
the cost, so only then, and at most every ``RETRY_UPSAMPLE_EVERY`` frames); once that finds a face,
the clip keeps the upsampled detector.

Landmarks are float32 ``[68, 2]`` arrays of (x, y) in pixels of the frame given; a frame without a
face gives NaN rows in the stacked ``[T, 68, 2]`` form. Frames may be RGB or BGR: dlib's HOG features
and its predictor's pixel intensities are symmetric in the colour channels, so the order does not matter.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
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
RETRY_UPSAMPLE_EVERY = 10  # frames; with no face found, the upsampled retry (about 4x a detection) runs at most this often;
# under MouthConfig.max_gap (15), so a small face that appears mid-clip is found before its gap fails the clip
HOG_WINDOW = 80  # px; dlib's frontal detector scans 80x80 windows: faces under about this need upsampling (half per step)
ORIENTATION_FACE = HOG_WINDOW  # px; the upright check scores the face box scaled to this
ORIENTATION_MARGIN = 0.25  # share of the face box added on each side of the region the upright check scores
# The upright check's detector scores (dlib's SVM margin) of that region, as it is and turned by 180 degrees. On the 8
# GRID clips (upright, tilted +-15-20 degrees, shrunk to a 30-36 px face) as it is >= 0.68 and at least 1.09 above
# turned; upside-down ones (flipped, 160-200 degrees) score at most 0.24 more as they are than turned, and spurious
# finds in faces turned 120 degrees score at most -0.09 as they are.
UPRIGHT_MIN_SCORE = 0.2  # as it is, at least this
UPRIGHT_MARGIN = 0.6  # as it is, at least this much above turned
UPRIGHT_SURE_SCORE = 1.2  # a find (or its region as it is) scoring this is upright: GRID upside-down finds scored <= 0.48
# (regions <= 0.51), upright ones >= 1.25 at the 320 px first detection, so a normal clip pays nothing for the check
MAX_ROLL_DEGREES = 60  # landmarks whose eye line is tilted more than this from level are not taken as a face
MOUTH_DEPTH_RANGE = (0.5, 3.0)  # mouth centre below the eyes' midpoint, in eye distances (GRID: 1.1-1.4)
MOUTH_WIDTH_RANGE = (0.25, 2.5)  # mouth corner-to-corner width, in eye distances (GRID: 0.7-0.9)
REJECTION_REASONS = {  # why a found face was not used, as the NoFaceError hint words it
    "upside down": "the face is upside down (rotated more than about 90 degrees)",
    "not upright": "the face found does not look upright (rotated more than about 60 degrees, or not a face)",
    "rotated": f"the face is rotated more than {MAX_ROLL_DEGREES} degrees",
    "proportions": "the landmarks lack a face's proportions (eyes above the nose above the mouth)",
}
TURNS = (  # (cv2.rotate code, words, ffmpeg filter that applies the same turn to a video)
    (cv2.ROTATE_180, "by 180 degrees", "hflip,vflip"),
    (cv2.ROTATE_90_CLOCKWISE, "90 degrees clockwise", "transpose=1"),
    (cv2.ROTATE_90_COUNTERCLOCKWISE, "90 degrees counter-clockwise", "transpose=2"),
)
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
    upsample: int = 0  # dlib's upsample_num_times per detection (each step ~4x the cost); one more is retried when none is found
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


def _geometry_weights() -> np.ndarray:
    """[5, 68] averaging weights: rows give left eye, right eye, nose tip, mouth centre, mouth span (54 - 48)."""
    weights = np.zeros((5, NUM_LANDMARKS), np.float32)
    weights[0, 36:42] = 1 / 6
    weights[1, 42:48] = 1 / 6
    weights[2, 30] = 1.0
    weights[3, 48:68] = 1 / 20
    weights[4, 54], weights[4, 48] = 1.0, -1.0
    return weights


_GEOMETRY = _geometry_weights()


def implausible_face(points: np.ndarray) -> str | None:
    """Why a landmark set is not an upright face, as a key of ``REJECTION_REASONS``; None when it is one.

    Measured in the face's own frame (x along the eye line, y perpendicular to it, in eye distances):
    the eye line is tilted at most ``MAX_ROLL_DEGREES``; the nose tip lies below the eyes and above
    the mouth centre; the mouth is ``MOUTH_DEPTH_RANGE`` below the eyes and ``MOUTH_WIDTH_RANGE`` wide.
    A face turned upside down with its landmarks has its eye line at about 180 degrees.

    Args:
        points: float [68, 2] (x, y) image px.
    """
    (lx, ly), (rx, ry), (nx, ny), (mx, my), (sx, sy) = (_GEOMETRY @ points).tolist()
    ex, ey = rx - lx, ry - ly
    distance = math.hypot(ex, ey)
    if not distance >= 1.0:  # also catches NaN
        return "proportions"
    if abs(math.degrees(math.atan2(ey, ex))) > MAX_ROLL_DEGREES:
        return "rotated"
    cx, cy = (lx + rx) / 2, (ly + ry) / 2
    down_x, down_y = -ey / distance, ex / distance  # the face's "down", perpendicular to the eye line
    mouth_depth = ((mx - cx) * down_x + (my - cy) * down_y) / distance
    nose_depth = ((nx - cx) * down_x + (ny - cy) * down_y) / distance
    mouth_width = math.hypot(sx, sy) / distance
    plausible = (
        MOUTH_DEPTH_RANGE[0] <= mouth_depth <= MOUTH_DEPTH_RANGE[1]
        and 0.0 < nose_depth < mouth_depth
        and MOUTH_WIDTH_RANGE[0] <= mouth_width <= MOUTH_WIDTH_RANGE[1]
    )
    return None if plausible else "proportions"


def _landmark_frame(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (x, y) and size (px) of a landmark set; the reference frame for placing boxes."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (lo + hi) / 2.0, float(max(hi - lo))


class LandmarkTracker:
    """Stateful per-clip face tracker; feed it a clip's frames in order with ``update``.

    The detector and predictor are loaded once per process and shared by all trackers. Call ``reset()``
    (or make a new tracker) between clips. ``timings`` accumulates seconds spent in ``detect`` and
    ``landmarks``; ``detections`` counts detector runs. ``rejected`` counts this clip's frames whose
    face was found but not used, by reason (``REJECTION_REASONS``); ``explain_missing`` turns that
    into words when the clip fails.
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
        self._upsample = self.config.upsample  # one more once the upsampled retry has found this clip's (small) face
        self._next_retry = 0  # frame index from which the upsampled retry may run again
        self._probe: tuple[int, np.ndarray] | None = None  # the clip's first frame without a face, for explain_missing
        self.rejected = {reason: 0 for reason in REJECTION_REASONS}

    def _fresh_widths(self, width: int) -> list[int]:
        """Detection widths (px) when no face is tracked: ``detect_width``, doubling up to ``max_detect_width``."""
        widths, w = [], self.config.detect_width
        while True:
            widths.append(min(w, width))
            if w >= min(width, self.config.max_detect_width):
                break
            w = min(w * 2, self.config.max_detect_width)
        return widths

    def _run_detector(self, frame: np.ndarray, widths: Iterable[float], upsample: int) -> list[tuple[np.ndarray, float]]:
        """(box [x0, y0, x1, y1] in frame px, detector score) of each face found at the first of ``widths`` (downscaled
        copies of the frame) that finds any."""
        height, width = frame.shape[:2]
        for target in dict.fromkeys(int(round(w)) for w in widths):
            scale = target / width
            if scale >= 1.0:
                small = frame
            else:
                small = cv2.resize(frame, (target, max(1, int(round(height * scale)))), interpolation=cv2.INTER_AREA)
            rects, scores, _ = self._detector.run(small, upsample, 0.0)  # as detector(small, upsample), with scores
            self.detections += 1
            if rects:
                factor = min(scale, 1.0)
                return [
                    (np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64) / factor, float(score))
                    for r, score in zip(rects, scores)
                ]
        return []

    def _detect(self, frame: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """(box [x0, y0, x1, y1] in frame px, score) of the faces found in a downscaled copy of the frame.

        With no face tracked and none found, the largest width is tried once more with one more
        upsampling step (a face of 36 px in a 640x480 frame needs it); at most every
        ``RETRY_UPSAMPLE_EVERY`` frames, because it costs about 4x. When it finds a face, the rest of the
        clip is detected that way.
        """
        t0 = time.perf_counter()
        width = frame.shape[1]
        small_faces = self._upsample > self.config.upsample
        if self._points is not None:
            _, size = _landmark_frame(self._points)
            widths = [min(width, max(self.config.detect_width / 2, width * self.config.face_size / max(size, 1.0)))]
        else:
            widths = self._fresh_widths(width)
            widths = widths[-1:] if small_faces else widths
        finds = self._run_detector(frame, widths, self._upsample)
        if not finds and self._points is None and not small_faces and self._index >= self._next_retry:
            finds = self._run_detector(frame, widths[-1:], self._upsample + 1)
            if finds:
                self._upsample += 1
                size = float(np.mean([box[2] - box[0] for box, _ in finds]))
                logger.info("face of %.0f px found only with upsample=%d; detecting this clip that way", size, self._upsample)
            else:
                self._next_retry = self._index + RETRY_UPSAMPLE_EVERY
        self.timings["detect"] += time.perf_counter() - t0
        return finds

    def _best_score(self, image: np.ndarray) -> float:
        _, scores, _ = self._detector.run(np.ascontiguousarray(image), 0, -1.0)
        return max(scores) if len(scores) else -math.inf

    def _orientation(self, frame: np.ndarray, box: np.ndarray, score: float) -> str | None:
        """None when the face in ``box`` (found with detector ``score``) is upright; else "upside down" or "not upright".

        dlib's frontal detector sometimes fires on an upside-down face (often with a box of the wrong
        size), and the predictor then returns an upright-looking shape whose mouth is an eye. Those
        finds score low (GRID: at most 0.48, upright faces at least 1.25), so a find scoring
        ``UPRIGHT_SURE_SCORE`` is taken as it is; for the others, scoring the box's region as it is and
        turned by 180 degrees tells them apart (``UPRIGHT_*`` has the figures), in about 1-2 ms.
        """
        if score >= UPRIGHT_SURE_SCORE:
            return None
        t0 = time.perf_counter()
        height, width = frame.shape[:2]
        size = float(max(box[2] - box[0], box[3] - box[1], 1.0))
        margin = ORIENTATION_MARGIN * size
        x0, y0 = max(0, int(box[0] - margin)), max(0, int(box[1] - margin))
        x1, y1 = min(width, int(box[2] + margin) + 1), min(height, int(box[3] + margin) + 1)
        reason = None
        if x1 - x0 >= 8 and y1 - y0 >= 8:  # else too little of it is in the frame to tell; the visibility check decides
            scale = ORIENTATION_FACE / size
            target = (max(1, int(round((x1 - x0) * scale))), max(1, int(round((y1 - y0) * scale))))
            region = cv2.resize(frame[y0:y1, x0:x1], target, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            as_is = self._best_score(region)
            if as_is < UPRIGHT_SURE_SCORE:
                turned = self._best_score(region[::-1, ::-1])
                if turned > as_is:
                    reason = "upside down"
                elif as_is < UPRIGHT_MIN_SCORE or as_is - turned < UPRIGHT_MARGIN:
                    reason = "not upright"
        self.timings["detect"] += time.perf_counter() - t0
        return reason

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

    def _choose(self, boxes: list[np.ndarray]) -> int:
        """Index of the box to track: the one on the tracked face, else the largest."""
        if self._points is not None:
            tracked = self._box_from_points(self._points)
            overlaps = [_iou(tracked, b) for b in boxes]
            best = int(np.argmax(overlaps))
            if overlaps[best] > 0.3:
                return best
        return max(range(len(boxes)), key=lambda i: _area(boxes[i]))

    def update(self, frame: np.ndarray, predict: bool = True) -> np.ndarray | None:
        """Landmarks of the tracked face in the next frame of the clip.

        Args:
            frame: uint8 [H, W, 3] (RGB or BGR) or [H, W] grey, full resolution.
            predict: False skips the predictor on this frame (``landmark_every``); the tracker still
                checks that the face is there, so a lost face is noticed.

        Returns:
            float32 [68, 2] (x, y) in frame pixels, or None when no face is found (or ``predict`` is False).
            A face that is upside down, rotated more than ``MAX_ROLL_DEGREES`` or not face-shaped counts as
            none (and in ``rejected``).
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
            if not self._visible(points, frame.shape) or implausible_face(points) is not None:
                points, need_detect = None, True
        if need_detect:
            points, reason = self._acquire(frame, lost)
            if points is None:
                self._points, self._template = None, None
                if reason is not None:
                    self.rejected[reason] += 1
                if self._probe is None:
                    self._probe = (self._index, frame.copy())
                return None
        self._points = points
        return points if predict else None

    def _acquire(self, frame: np.ndarray, lost: bool) -> tuple[np.ndarray | None, str | None]:
        """Detects the face to track: (landmarks, None), or (None, why the face found was rejected / None)."""
        finds = self._detect(frame)
        self._since_detect = 0
        if not finds:
            return None, None
        chosen = self._choose([box for box, _ in finds])
        box, score = finds[chosen]
        same_face = not lost and self._points is not None and _iou(self._box_from_points(self._points), box) > 0.3
        reason = None if same_face else self._orientation(frame, box, score)  # a face tracked upright needs no new check
        if reason is not None:
            upright = [b for i, (b, s) in enumerate(finds) if i != chosen and self._orientation(frame, b, s) is None]
            if not upright:
                return None, reason
            box = max(upright, key=_area)
        points = self._predict(frame, box)
        if not self._visible(points, frame.shape):
            return None, None
        reason = implausible_face(points)
        if reason is not None:
            return None, reason
        centre, size = _landmark_frame(points)
        self._box_offset = ((box[:2] + box[2:]) / 2.0 - centre) / size
        self._box_scale = (box[2:] - box[:2]) / size
        self._template = self._face_thumbnail(frame, points)
        return points, None

    def explain_missing(self) -> str:
        """Why this clip's frames had no usable face, as far as the tracker can tell ('' when it cannot).

        Counts the faces rejected (upside down, rotated, not face-shaped), then tries the clip's first
        frame without a face turned by 180 and 90 degrees and with one more upsampling step, to name
        the fix. Costs a few detections (up to about 0.5 s on a 640x480 frame): call it only when the
        clip is about to fail.
        """
        parts = [f"in {count} frame(s) {REJECTION_REASONS[reason]}" for reason, count in self.rejected.items() if count]
        if self._probe is not None:
            index, frame = self._probe
            for code, words, ffmpeg_filter in TURNS:
                turned = np.ascontiguousarray(cv2.rotate(frame, code))
                finds = self._run_detector(turned, self._fresh_widths(turned.shape[1]), self._upsample)
                if any(self._orientation(turned, box, score) is None for box, score in finds):
                    parts.append(
                        f"frame {index} shows an upright face when turned {words}: turn the video upright first "
                        f"(e.g. ffmpeg -i IN -vf {ffmpeg_filter} OUT)"
                    )
                    break
            else:
                upsample = max(self._upsample, self.config.upsample + 1) + 1
                width = self._fresh_widths(frame.shape[1])[-1]
                scale = min(1.0, width / frame.shape[1])
                # Only faces that this step alone can find (under 40 px at upsample 2) are "too small"; a larger
                # find is a face the retry saw and rejected or one only partly in the frame.
                smallest = HOG_WINDOW / 2 ** (upsample - 1)  # px at the detection width, found one step lower
                finds = self._run_detector(frame, [width], upsample)
                boxes = [b for b, s in finds if (b[2] - b[0]) * scale < smallest and self._orientation(frame, b, s) is None]
                if boxes:
                    size = max(b[2] - b[0] for b in boxes)
                    parts.append(
                        f"frame {index} has a face of only about {size:.0f} px, found with DetectorConfig(upsample={upsample}) "
                        f"(each step costs about 4x); give the video at a higher resolution or with the face larger"
                    )
        return "; ".join(parts)


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
