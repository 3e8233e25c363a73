"""Mouth crops: frames + per-frame landmarks (or mouth boxes) -> fixed-size uint8 crops.

Pure numpy/OpenCV, no dlib, so all of it is testable with synthetic landmarks. Owns the crop geometry:

* frames where no face was found are filled by linear interpolation of the landmarks; a clip with
  too many such frames (``max_missing_share``) or too long a run of them (``max_gap``) raises
  ``NoFaceError`` instead of returning anything uncropped;
* landmarks are smoothed over time (a centred moving average; they jitter by a pixel or two);
* each crop is centred on the mean of the mouth landmarks 48-67, rotated so the mouth corners
  (48, 54) are level, and scaled so the corner-to-corner width fills ``1 - 2 * margin`` of the crop
  width (LipNet leaves 19% on each side); the scale is smoothed over a longer window so speech does
  not make the crop zoom in and out.

The work happens in two steps so a video never has to sit in memory at full resolution:
``MouthCropper.add`` keeps only a patch around the mouth of each frame, and ``MouthCropper.finish``
cuts the final crops once the whole clip's geometry is known. ``crop_mouth`` does both for frames
already in memory. Every coordinate here is (x, y) in source-frame pixels unless it says otherwise.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

logger = logging.getLogger(__name__)

MOUTH_HEIGHT = 50  # px, LipNet's crop size
MOUTH_WIDTH = 100  # px
NUM_LANDMARKS = 68  # iBUG 68-point markup (dlib's shape_predictor_68_face_landmarks)
MOUTH = slice(48, 68)  # outer lip 48-59, inner lip 60-67
LEFT_CORNER, RIGHT_CORNER = 48, 54  # mouth corners, left and right in the image
PATCH_EXTENT = 1.6  # patch kept per frame, in crop half-diagonals from the mouth centre (room for smoothing)
FALLBACK_SIDE = 640  # px; frames with no mouth estimate are kept downscaled to about this longest side


class NoFaceError(ValueError):
    """Too many frames of a clip have no face (or mouth box) to crop a mouth from."""


@dataclass(frozen=True)
class MouthConfig:
    """Crop size and geometry. Owned by this module; nested in ``PreprocessConfig``."""

    height: int = MOUTH_HEIGHT  # px of each crop
    width: int = MOUTH_WIDTH  # px of each crop
    grey: bool = False  # True: 1 channel (luma), False: 3 channels RGB
    margin: float = 0.19  # share of the crop width left on each side of the mouth corners
    smoothing: int = 5  # frames in the centred moving average over landmarks; 1 = off
    scale_smoothing: int = 25  # frames in the moving average over the crop scale (mouth width); 1 = off
    align: bool = True  # rotate so the mouth corners are level
    max_missing_share: float = 0.25  # fail the clip when more of its frames than this have no face
    max_gap: int = 15  # frames; fail the clip when a run of frames without a face is longer than this

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"MouthConfig crop size must be positive, got {self.height}x{self.width}")
        if not 0.0 <= self.margin < 0.5:
            raise ValueError(f"MouthConfig.margin must be in [0, 0.5), got {self.margin}")
        if self.smoothing < 1 or self.scale_smoothing < 1:
            raise ValueError("MouthConfig.smoothing and scale_smoothing must be >= 1 (1 = no smoothing)")
        if not 0.0 <= self.max_missing_share < 1.0:
            raise ValueError(f"MouthConfig.max_missing_share must be in [0, 1), got {self.max_missing_share}")
        if self.max_gap < 0:
            raise ValueError(f"MouthConfig.max_gap must be >= 0, got {self.max_gap}")

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3


@dataclass(frozen=True, eq=False)
class MouthCrops:
    """The crops of one clip and the geometry behind them."""

    crops: np.ndarray  # uint8 [T, height, width, C], C = 1 (grey) or 3 (RGB)
    landmarks: np.ndarray | None  # float32 [T, 68, 2] source px, gaps interpolated (not smoothed); None for boxes
    boxes: np.ndarray | None  # float32 [T, 4] mouth boxes (x0, y0, x1, y1) source px, gaps interpolated; None for landmarks
    found: np.ndarray  # bool [T]: True where the landmarks/box were measured, False where interpolated
    searched: np.ndarray  # bool [T]: False where the frame was skipped on purpose (so not found, but not missing)
    transforms: np.ndarray  # float32 [T, 2, 3] affine maps, source px -> crop px


def interpolate_missing(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Fills the rows where ``found`` is False by linear interpolation in time (nearest value at the ends).

    Args:
        values: float [T, ...]; rows not found may hold anything (NaN, say).
        found: bool [T], at least one True.

    Returns:
        float32 [T, ...], equal to ``values`` where found.
    """
    found = np.asarray(found, dtype=bool)
    if not found.any():
        raise ValueError("cannot interpolate: no frame has a value")
    flat = np.asarray(values, dtype=np.float64).reshape(len(found), -1)
    index = np.arange(len(found))
    known = index[found]
    filled = np.empty_like(flat)
    for column in range(flat.shape[1]):
        filled[:, column] = np.interp(index, known, flat[found, column])
    return filled.reshape(np.shape(values)).astype(np.float32)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over axis 0 with edge values repeated; ``window`` frames (odd is best).

    Args:
        values: float [T, ...] with no NaN.

    Returns:
        float32, same shape.
    """
    values = np.asarray(values, dtype=np.float64)
    window = min(window, len(values))
    if window <= 1:
        return values.astype(np.float32)
    before = window // 2
    after = window - 1 - before
    padded = np.concatenate([np.repeat(values[:1], before, axis=0), values, np.repeat(values[-1:], after, axis=0)])
    sums = np.cumsum(np.concatenate([np.zeros_like(values[:1]), padded]), axis=0)
    return ((sums[window:] - sums[:-window]) / window).astype(np.float32)


def check_missing(found: np.ndarray, config: MouthConfig, searched: np.ndarray | None = None) -> None:
    """Raises ``NoFaceError`` when too many frames lack a face, naming the counts and the limit.

    Args:
        found: bool [T], frames with a measured face/mouth box.
        searched: bool [T], frames where one was looked for (default all); frames skipped on purpose
            (``DetectorConfig.landmark_every``) count as neither found nor missing in the share.
    """
    found = np.asarray(found, dtype=bool)
    searched = np.ones_like(found) if searched is None else np.asarray(searched, dtype=bool)
    total = len(found)
    if total == 0:
        raise NoFaceError("the clip has no frames")
    missing = searched & ~found
    if not found.any():
        raise NoFaceError(f"no face found in any of the {total} frames")
    share = missing.sum() / max(1, searched.sum())
    if share > config.max_missing_share:
        first = int(np.argmax(missing))
        raise NoFaceError(
            f"no face in {int(missing.sum())} of {int(searched.sum())} searched frames ({share:.0%}, first at frame "
            f"{first}); the limit is {config.max_missing_share:.0%} (MouthConfig.max_missing_share)"
        )
    longest, run, run_start, longest_start = 0, 0, 0, 0
    for index, ok in enumerate(found):
        run = 0 if ok else run + 1
        if run == 1:
            run_start = index
        if run > longest:
            longest, longest_start = run, run_start
    if longest > config.max_gap:
        raise NoFaceError(
            f"no face for {longest} frames in a row (frames {longest_start}-{longest_start + longest - 1}); "
            f"the limit is {config.max_gap} (MouthConfig.max_gap)"
        )


def geometry_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Mouth geometry per frame: float32 [T, 4] = (centre x, centre y, corner-to-corner width px, angle rad).

    Args:
        landmarks: float [T, 68, 2] source px.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    centre = landmarks[:, MOUTH].mean(axis=1)
    span = landmarks[:, RIGHT_CORNER] - landmarks[:, LEFT_CORNER]
    width = np.hypot(span[:, 0], span[:, 1])
    angle = np.arctan2(span[:, 1], span[:, 0])
    return np.column_stack([centre, width, angle]).astype(np.float32)


def geometry_from_boxes(boxes: np.ndarray) -> np.ndarray:
    """Mouth geometry from boxes [T, 4] (x0, y0, x1, y1): centre, box width as the mouth width, angle 0."""
    boxes = np.asarray(boxes, dtype=np.float64)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    width = boxes[:, 2] - boxes[:, 0]
    return np.column_stack([centre, width, np.zeros(len(boxes))]).astype(np.float32)


def crop_transforms(geometry: np.ndarray, config: MouthConfig) -> np.ndarray:
    """Affine maps from source px to crop px that put each mouth centre in the middle of the crop.

    Args:
        geometry: float [T, 4] (centre x, centre y, mouth width px, angle rad), already smoothed.

    Returns:
        float32 [T, 2, 3]; ``crop_xy = M[:, :2] @ source_xy + M[:, 2]``.
    """
    geometry = np.asarray(geometry, dtype=np.float64)
    centre, width, angle = geometry[:, :2], geometry[:, 2], geometry[:, 3]
    scale = config.width * (1.0 - 2.0 * config.margin) / np.maximum(width, 1e-3)
    cos, sin = np.cos(-angle) * scale, np.sin(-angle) * scale
    transforms = np.empty((len(geometry), 2, 3))
    transforms[:, 0, 0], transforms[:, 0, 1] = cos, -sin
    transforms[:, 1, 0], transforms[:, 1, 1] = sin, cos
    middle = np.array([(config.width - 1) / 2.0, (config.height - 1) / 2.0])
    transforms[:, :, 2] = middle - np.einsum("tij,tj->ti", transforms[:, :, :2], centre)
    return transforms.astype(np.float32)


def apply_transform(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Maps points [T, N, 2] through per-frame affine maps [T, 2, 3]; returns [T, N, 2] float32."""
    transforms = np.asarray(transforms, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return (np.einsum("tij,tnj->tni", transforms[:, :, :2], points) + transforms[:, None, :, 2]).astype(np.float32)


@dataclass(frozen=True, eq=False)
class _Patch:
    image: np.ndarray  # uint8 [h, w, C], a region of the frame, possibly downscaled by an integer factor
    origin: tuple[float, float]  # source px of the patch's pixel (0, 0)
    factor: int  # source px per patch px


def _cut_patch(frame: np.ndarray, geometry: np.ndarray | None, config: MouthConfig) -> _Patch:
    height, width = frame.shape[:2]
    if geometry is None or not np.all(np.isfinite(geometry)) or geometry[2] <= 0:
        factor = max(1, math.ceil(max(height, width) / FALLBACK_SIDE))
        return _shrink(frame, 0, 0, width, height, factor)
    cx, cy, mouth_width = float(geometry[0]), float(geometry[1]), float(geometry[2])
    crop_width = mouth_width / (1.0 - 2.0 * config.margin)  # source px covered by the crop's width
    crop_height = crop_width * config.height / config.width
    reach = PATCH_EXTENT * 0.5 * math.hypot(crop_width, crop_height)
    x0, y0 = max(0, int(cx - reach)), max(0, int(cy - reach))
    x1, y1 = min(width, int(math.ceil(cx + reach)) + 1), min(height, int(math.ceil(cy + reach)) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:  # mouth estimate off the frame: keep it all
        factor = max(1, math.ceil(max(height, width) / FALLBACK_SIDE))
        return _shrink(frame, 0, 0, width, height, factor)
    # Shrink by a whole factor with INTER_AREA (fast for integer ratios) so the final warp never
    # downsamples by 2x or more, which would alias.
    factor = max(1, int(crop_width / config.width))
    return _shrink(frame, x0, y0, x1, y1, factor)


def _shrink(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int, factor: int) -> _Patch:
    if factor > 1:
        x1 = x0 + max(1, (x1 - x0) // factor) * factor
        y1 = y0 + max(1, (y1 - y0) // factor) * factor
        region = frame[y0:y1, x0:x1]
        image = cv2.resize(region, ((x1 - x0) // factor, (y1 - y0) // factor), interpolation=cv2.INTER_AREA)
    else:
        image = frame[y0:y1, x0:x1].copy()
    return _Patch(image, (float(x0), float(y0)), factor)


class MouthCropper:
    """Builds the crops of one clip from frames given one at a time.

    ``add`` each frame in order with what is known about it (landmarks, a mouth box, or nothing);
    ``finish`` checks for missing faces, interpolates, smooths and returns ``MouthCrops``. Only a
    patch around the mouth of each frame is kept, so memory does not grow with the frame size.
    A clip uses either landmarks or boxes throughout.
    """

    def __init__(self, config: MouthConfig | None = None, bgr: bool = False):
        self.config = config or MouthConfig()
        self.bgr = bgr  # frames come in OpenCV's BGR order; crops still come out RGB (or grey)
        self._patches: list[_Patch] = []
        self._values: list[np.ndarray | None] = []
        self._searched: list[bool] = []
        self._kind: str | None = None  # "landmarks" or "boxes"
        self._last: tuple[int, np.ndarray] | None = None  # (frame index, geometry) of the last measured frame
        self._channels: int | None = None

    def __len__(self) -> int:
        return len(self._patches)

    def add(
        self,
        frame: np.ndarray,
        landmarks: np.ndarray | None = None,
        box: np.ndarray | None = None,
        searched: bool = True,
    ) -> None:
        """Adds the next frame of the clip.

        Args:
            frame: uint8 [H, W, 3] RGB (BGR if the cropper was made with ``bgr=True``), or [H, W] grey.
            landmarks: float [68, 2] source px, or None when no face was found.
            box: float [4] mouth box (x0, y0, x1, y1) source px, instead of landmarks; NaN or None = none.
            searched: False when the frame was skipped on purpose (not counted as missing).
        """
        if landmarks is not None and box is not None:
            raise ValueError("give landmarks or a box for a frame, not both")
        value, kind = None, None
        if landmarks is not None:
            value, kind = np.asarray(landmarks, dtype=np.float32), "landmarks"
            if value.shape != (NUM_LANDMARKS, 2):
                raise ValueError(f"landmarks must have shape (68, 2), got {value.shape}")
        elif box is not None:
            value, kind = np.asarray(box, dtype=np.float32), "boxes"
            if value.shape != (4,):
                raise ValueError(f"a mouth box must have shape (4,) = (x0, y0, x1, y1), got {value.shape}")
        if value is not None and not np.all(np.isfinite(value)):
            value = None
        if value is not None and kind == "boxes" and not (value[2] > value[0] and value[3] > value[1]):
            raise ValueError(f"mouth box {value.tolist()} at frame {len(self)} has no area (want x0 < x1, y0 < y1)")
        if kind is not None:
            if self._kind not in (None, kind):
                raise ValueError(f"a clip uses landmarks or boxes throughout; frame {len(self)} switches to {kind}")
            self._kind = kind
        index = len(self._patches)
        if value is not None:
            geometry = (geometry_from_landmarks if kind == "landmarks" else geometry_from_boxes)(value[None])[0]
            self._last = (index, geometry)
        elif self._last is not None and index - self._last[0] <= 2:
            geometry = self._last[1]  # a skipped or briefly missed frame: the mouth is still close by
        else:
            geometry = None
        self._patches.append(_cut_patch(frame, geometry, self.config))
        self._values.append(value)
        self._searched.append(bool(searched))

    def finish(self) -> MouthCrops:
        """Crops every frame added so far.

        Returns:
            ``MouthCrops`` with crops uint8 [T, height, width, C].

        Raises:
            NoFaceError: too many frames without landmarks/box (``max_missing_share``, ``max_gap``), or none at all.
        """
        config = self.config
        found = np.array([v is not None for v in self._values], dtype=bool)
        check_missing(found, config, np.array(self._searched, dtype=bool))
        shape = (NUM_LANDMARKS, 2) if self._kind == "landmarks" else (4,)
        raw = np.stack([v if v is not None else np.full(shape, np.nan, np.float32) for v in self._values])
        filled = interpolate_missing(raw, found)
        smoothed = smooth(filled, config.smoothing)
        if self._kind == "landmarks":
            geometry = geometry_from_landmarks(smoothed)
        else:
            geometry = geometry_from_boxes(smoothed)
        geometry[:, 2] = smooth(geometry[:, 2], config.scale_smoothing)
        if config.align:
            geometry[:, 3] = np.unwrap(geometry[:, 3])
        else:
            geometry[:, 3] = 0.0
        transforms = crop_transforms(geometry, config)
        crops = np.empty((len(found), config.height, config.width, config.channels), dtype=np.uint8)
        for index, (patch, transform) in enumerate(zip(self._patches, transforms.astype(np.float64))):
            # Compose: source = factor * patch_px + origin + (factor - 1) / 2 (an INTER_AREA pixel is the
            # mean of a factor x factor block, centred in it), so crop = A @ source + b.
            linear = transform[:, :2]
            offset = np.array(patch.origin) + (patch.factor - 1) / 2.0
            composed = np.hstack([linear * patch.factor, (linear @ offset + transform[:, 2])[:, None]])
            crop = cv2.warpAffine(
                patch.image, composed, (config.width, config.height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            crops[index] = _to_channels(crop, config.grey, self.bgr)
        if (~found).any():
            logger.debug("interpolated the mouth in %d of %d frames", int((~found).sum()), len(found))
        return MouthCrops(
            crops=crops,
            landmarks=filled if self._kind == "landmarks" else None,
            boxes=filled if self._kind == "boxes" else None,
            found=found,
            searched=np.array(self._searched, dtype=bool),
            transforms=transforms,
        )


def _to_channels(crop: np.ndarray, grey: bool, bgr: bool = False) -> np.ndarray:
    if crop.ndim == 2:
        crop = crop[:, :, None]
    if grey and crop.shape[2] == 3:
        return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)[:, :, None]
    if not grey and crop.shape[2] == 1:
        return np.repeat(crop, 3, axis=2)
    return crop[:, :, ::-1] if bgr and crop.shape[2] == 3 else crop


def crop_mouth(
    frames: np.ndarray,
    landmarks: np.ndarray | None = None,
    config: MouthConfig | None = None,
    boxes: np.ndarray | None = None,
) -> MouthCrops:
    """Crops the mouth from frames in memory, given their landmarks or mouth boxes.

    Args:
        frames: uint8 [T, H, W, 3] RGB (or a sequence of [H, W, 3]).
        landmarks: float [T, 68, 2] source px, NaN rows where no face was found.
        config: crop settings (defaults: 100x50 RGB).
        boxes: float [T, 4] mouth boxes (x0, y0, x1, y1) source px, NaN rows where missing; instead of landmarks.

    Returns:
        ``MouthCrops``; ``crops`` is uint8 [T, height, width, C].

    Raises:
        NoFaceError: too many frames have no face (see ``MouthConfig``).
        ValueError: shapes do not match.
    """
    if (landmarks is None) == (boxes is None):
        raise ValueError("crop_mouth needs exactly one of landmarks or boxes")
    values = np.asarray(landmarks if landmarks is not None else boxes, dtype=np.float32)
    if len(values) != len(frames):
        raise ValueError(f"got {len(frames)} frames but {len(values)} rows of {'landmarks' if boxes is None else 'boxes'}")
    cropper = MouthCropper(config)
    for frame, value in zip(frames, values):
        ok = bool(np.all(np.isfinite(value)))
        if landmarks is not None:
            cropper.add(frame, landmarks=value if ok else None)
        else:
            cropper.add(frame, box=value if ok else None)
    return cropper.finish()
