"""Utterance segmentation: mouth crops (or landmarks) of a long silent video -> speech spans.

``lipnet-ko transcribe`` recognises each utterance of a long video on its own and gives it subtitle
times. This module owns how the clip is cut, after the one preprocessing path (``MouthResult`` from
:mod:`lipnet_ko.data.crops`) and before the model:

* :func:`mouth_activity`: a per-frame mouth-movement signal, from lip-shape velocity when landmarks
  are known, otherwise from the frame-difference energy of the crops;
* :func:`split_utterances`: hysteresis thresholds relative to the clip's own quiet and busy levels,
  short pauses bridged, blips dropped, padding, and utterances longer than ``max_segment_s`` cut into
  overlapping windows (:class:`Span` says how much each window shares with its neighbours);
* :func:`find_utterances`: both, for one ``MouthResult``;
* :func:`merge_window_texts`: joins the decoded texts of such windows, dropping the words the
  overlap repeats.

numpy and scipy only (constants come from :mod:`lipnet_ko.video.mouth` and :mod:`lipnet_ko.video.reader`): no
TensorFlow, no dlib. Frame ranges are ``[start, end)`` frame indices.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lipnet_ko.video.mouth import LEFT_CORNER, MOUTH, NUM_LANDMARKS, RIGHT_CORNER
from lipnet_ko.video.reader import FPS

if TYPE_CHECKING:
    from lipnet_ko.video.extract import MouthResult

logger = logging.getLogger(__name__)

CENTRE_ROWS = (0.1, 0.9)  # share of the crop height kept for frame differences (the lips, not the border)
CENTRE_COLS = (0.15, 0.85)  # share of the crop width kept (mouth corners sit at 0.19 and 0.81)
# Motion is measured between frames this far apart, not neighbours: slow lip movements (held vowels,
# velars) then stand out of the camera noise, which does not grow with the distance.
DIFF_LAG_S = 0.12


@dataclass(frozen=True)
class SegmentationConfig:
    """How a clip is split into utterances. Owned by this module."""

    min_silence_s: float = 0.25  # pauses shorter than this inside speech are bridged
    min_speech_s: float = 0.3  # speech runs shorter than this (after bridging) are dropped
    max_segment_s: float = 6.0  # longer utterances are cut into overlapping windows of at most this
    window_overlap_s: float = 1.0  # seconds each window shares with the next (at least)
    pad_s: float = 0.1  # seconds added before and after each utterance (lips move before the first sound)
    smooth_s: float = 0.12  # moving-average window over the activity signal
    quiet_percentile: float = 10.0  # the clip's quiet level (its noise floor): this percentile of the activity
    busy_percentile: float = 90.0  # the clip's busy level (clear speech): this percentile of the activity
    high_threshold: float = 0.25  # speech reaches above quiet + this x (busy - quiet) ...
    low_threshold: float = 0.1  # ... and lasts while above quiet + this x (busy - quiet) ...
    noise_ratio: float = 0.5  # ... or above quiet x (1 + this), whichever is lower (hysteresis)
    min_contrast: float = 0.75  # no speech at all when busy - quiet <= this x quiet (a still face, camera noise)

    def __post_init__(self) -> None:
        for name in ("min_silence_s", "min_speech_s", "pad_s", "smooth_s", "window_overlap_s", "noise_ratio", "min_contrast"):
            if getattr(self, name) < 0:
                raise ValueError(f"SegmentationConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_segment_s <= 0:
            raise ValueError(f"SegmentationConfig.max_segment_s must be > 0, got {self.max_segment_s}")
        if self.window_overlap_s >= self.max_segment_s:
            raise ValueError(
                f"SegmentationConfig.window_overlap_s ({self.window_overlap_s}) must be less than max_segment_s "
                f"({self.max_segment_s}), or the windows never advance"
            )
        if not 0.0 <= self.quiet_percentile < self.busy_percentile <= 100.0:
            raise ValueError(
                f"SegmentationConfig percentiles need 0 <= quiet_percentile < busy_percentile <= 100, got "
                f"quiet_percentile={self.quiet_percentile}, busy_percentile={self.busy_percentile}"
            )
        if not 0.0 < self.low_threshold <= self.high_threshold < 1.0:
            raise ValueError(
                f"SegmentationConfig thresholds need 0 < low_threshold <= high_threshold < 1, got "
                f"low_threshold={self.low_threshold}, high_threshold={self.high_threshold}"
            )


@dataclass(frozen=True)
class Span:
    """Frames ``[start, end)`` to recognise as one piece.

    An utterance no longer than ``max_segment_s`` is one span with no overlaps. A longer one becomes
    several windows that share its ``utterance`` number; ``overlap_prev``/``overlap_next`` count the
    frames shared with the neighbouring windows, whose texts :func:`merge_window_texts` joins.
    """

    start: int  # first frame
    end: int  # one past the last frame
    utterance: int = 0  # index of the utterance in the clip; windows of one utterance share it
    overlap_prev: int = 0  # frames shared with the previous window of the same utterance
    overlap_next: int = 0  # frames shared with the next window of the same utterance

    @property
    def num_frames(self) -> int:
        return self.end - self.start

    def seconds(self, fps: float) -> tuple[float, float]:
        """``(start, end)`` in seconds from the first frame, at a constant ``fps``."""
        return self.start / fps, self.end / fps


def _frames(seconds: float, fps: float) -> int:
    return int(round(seconds * fps))


def _lag(fps: float, num_frames: int) -> int:
    return max(1, min(_frames(DIFF_LAG_S, fps), num_frames - 1))


def _centre(step: np.ndarray, lag: int, num_frames: int) -> np.ndarray:
    """[T - lag] changes from frame i to i + lag -> [T]: frame t gets the change from t - lag // 2 to t + lag - lag // 2."""
    if len(step) == 0:
        return np.zeros(num_frames)
    return step[np.clip(np.arange(num_frames) - lag // 2, 0, len(step) - 1)]


def _landmark_velocity(landmarks: np.ndarray, fps: float) -> np.ndarray:
    """float64 [T]: speed of the mouth shape, in mouth widths per second.

    Each frame's 20 mouth points are centred, rotated so the corners are level and divided by the
    corner-to-corner width, so head motion and distance to the camera drop out and what is left is
    the lips opening, spreading and rounding.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    mouth = landmarks[:, MOUTH] - landmarks[:, MOUTH].mean(axis=1, keepdims=True)  # [T, 20, 2]
    span = landmarks[:, RIGHT_CORNER] - landmarks[:, LEFT_CORNER]  # [T, 2]
    width = np.maximum(np.hypot(span[:, 0], span[:, 1]), 1e-6)
    cos, sin = span[:, 0] / width, span[:, 1] / width
    x = (cos[:, None] * mouth[..., 0] + sin[:, None] * mouth[..., 1]) / width[:, None]
    y = (-sin[:, None] * mouth[..., 0] + cos[:, None] * mouth[..., 1]) / width[:, None]
    shape = np.stack([x, y], axis=-1)  # [T, 20, 2] in mouth widths
    lag = _lag(fps, len(shape))
    step = np.sqrt(((shape[lag:] - shape[:-lag]) ** 2).sum(axis=-1).mean(axis=-1))  # [T - lag] rms point displacement
    return _centre(step, lag, len(shape)) * fps / lag


def _crop_energy(crops: np.ndarray, fps: float) -> np.ndarray:
    """float64 [T]: mean absolute grey-level change of the crop centre across ``DIFF_LAG_S``, per frame of lag.

    Each frame's mean is removed first, so lighting flicker and exposure changes do not count.
    """
    crops = np.asarray(crops)
    height, width = crops.shape[1:3]
    top, left = int(CENTRE_ROWS[0] * height), int(CENTRE_COLS[0] * width)
    rows = slice(top, max(int(CENTRE_ROWS[1] * height), top + 1))
    cols = slice(left, max(int(CENTRE_COLS[1] * width), left + 1))
    grey = crops[:, rows, cols].astype(np.float32)
    if grey.ndim == 4:
        grey = grey.mean(axis=-1)  # [T, h, w]
    grey -= grey.mean(axis=(1, 2), keepdims=True)
    lag = _lag(fps, len(grey))
    step = np.abs(grey[lag:] - grey[:-lag]).mean(axis=(1, 2)) / lag  # [T - lag]
    return _centre(step.astype(np.float64), lag, len(grey))


def mouth_activity(
    crops: np.ndarray,
    landmarks: np.ndarray | None = None,
    fps: float = FPS,
    *,
    config: SegmentationConfig | None = None,
) -> np.ndarray:
    """How much the mouth moves in each frame.

    Landmarks give the cleaner signal (lip-shape velocity, blind to lighting and head motion) and are
    used when every frame's mouth points are finite; otherwise (boxes were given instead of detection,
    so ``MouthResult.landmarks`` is all NaN) the frame-difference energy of the crops is used. Either
    way the signal is smoothed over ``config.smooth_s``. Only its shape over time matters:
    :func:`split_utterances` sets its thresholds from the clip's own levels.

    Args:
        crops: uint8 [T, H, W, C] (or [T, H, W]) mouth crops.
        landmarks: float [T, 68, 2] source px, or None.
        fps: frames per second of the clip.
        config: for ``smooth_s`` (default ``SegmentationConfig()``).

    Returns:
        float32 [T], >= 0: mouth widths per second (landmarks) or grey levels per frame (crops).
    """
    config = config or SegmentationConfig()
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    crops = np.asarray(crops)
    if crops.ndim not in (3, 4) or len(crops) == 0:
        raise ValueError(f"crops must be a non-empty [T, H, W] or [T, H, W, C] array, got shape {crops.shape}")
    use_landmarks = False
    if landmarks is not None:
        landmarks = np.asarray(landmarks)
        if landmarks.shape != (len(crops), NUM_LANDMARKS, 2):
            raise ValueError(f"landmarks must have shape ({len(crops)}, 68, 2) to match the crops, got {landmarks.shape}")
        use_landmarks = bool(np.all(np.isfinite(landmarks[:, MOUTH])))
        if not use_landmarks and np.any(np.isfinite(landmarks[:, MOUTH])):
            logger.debug("some mouth landmarks are missing: using frame differences of the crops instead")
    activity = _landmark_velocity(landmarks, fps) if use_landmarks else _crop_energy(crops, fps)
    window = max(1, _frames(config.smooth_s, fps))
    if window > 1:
        from scipy import ndimage  # here, not at the top: scipy.ndimage costs ~0.5 s to import

        activity = ndimage.uniform_filter1d(activity, window, mode="nearest")
    return np.maximum(activity, 0.0).astype(np.float32)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of True in a bool [T] array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _bridge(runs: list[tuple[int, int]], min_gap: int) -> list[tuple[int, int]]:
    """Joins runs separated by fewer than ``min_gap`` frames."""
    bridged: list[tuple[int, int]] = []
    for start, end in runs:
        if bridged and start - bridged[-1][1] < min_gap:
            bridged[-1] = (bridged[-1][0], end)
        else:
            bridged.append((start, end))
    return bridged


def _windows(start: int, end: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Equal windows of ``size`` frames covering ``[start, end)``, each sharing at least ``overlap`` with the next."""
    length = end - start
    if length <= size:
        return [(start, end)]
    count = math.ceil((length - overlap) / (size - overlap))
    starts = np.round(np.linspace(start, end - size, count)).astype(int)
    return [(int(s), int(s) + size) for s in starts]


def split_utterances(activity: np.ndarray, fps: float = FPS, config: SegmentationConfig | None = None) -> list[Span]:
    """Frame ranges of speech in a clip, from its mouth activity.

    Thresholds come from the clip's own levels, so neither the units of the signal nor the camera
    noise matter: ``quiet`` and ``busy`` are percentiles of the activity (``quiet_percentile``,
    ``busy_percentile``). Frames above ``low = min(quiet + low_threshold x (busy - quiet), quiet x
    (1 + noise_ratio))`` may be speech; runs of them separated by less than ``min_silence_s`` are
    joined, and a joined run is speech when it rises above ``quiet + high_threshold x (busy -
    quiet)`` somewhere (hysteresis) and lasts ``min_speech_s``. Joining before the high test keeps
    the faint start of an utterance (a sentence opening on a velar barely moves the lips) with the
    speech it leads into. Each utterance is then padded by ``pad_s`` and clipped to the clip
    (utterances the padding makes touch become one), and one longer than ``max_segment_s`` becomes
    overlapping windows.

    A clip whose busy level is not clearly above its quiet level (``min_contrast``), such as a
    still face, has no speech; a clip that is all speech gives one utterance as long as its quieter
    stretches are shorter than ``min_silence_s``. The default percentiles assume that at least a
    tenth of the clip is silence (or slow speech) and at least a tenth is speech: for a long video
    in which someone speaks only now and then, raise ``busy_percentile`` or segment shorter pieces.

    Args:
        activity: float [T] from :func:`mouth_activity`.
        fps: frames per second of the clip.
        config: thresholds and durations (default ``SegmentationConfig()``).

    Returns:
        ``Span``s in time order; ``[]`` when nothing is said.
    """
    config = config or SegmentationConfig()
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    activity = np.asarray(activity, dtype=np.float64)
    if activity.ndim != 1:
        raise ValueError(f"activity must be one value per frame, [T], got shape {activity.shape}")
    if activity.size == 0:
        return []
    if not np.all(np.isfinite(activity)):
        raise ValueError("activity has NaN or infinite values; mouth_activity never gives them")
    total = len(activity)
    quiet, busy = np.percentile(activity, [config.quiet_percentile, config.busy_percentile])
    if busy <= 0 or busy - quiet <= config.min_contrast * quiet:
        logger.debug("no speech: busy level %.4g vs quiet level %.4g", busy, quiet)
        return []
    spread = busy - quiet
    low = min(quiet + config.low_threshold * spread, quiet * (1.0 + config.noise_ratio))
    high = max(low, quiet + config.high_threshold * spread)
    min_speech, pad = _frames(config.min_speech_s, fps), _frames(config.pad_s, fps)
    runs = _bridge(_runs(activity > low), _frames(config.min_silence_s, fps))
    padded: list[tuple[int, int]] = []
    for start, end in runs:
        if end - start < min_speech or not (activity[start:end] > high).any():
            continue
        start, end = max(0, start - pad), min(total, end + pad)
        if padded and start <= padded[-1][1]:
            padded[-1] = (padded[-1][0], end)
        else:
            padded.append((start, end))
    size = max(1, int(math.floor(config.max_segment_s * fps)))
    overlap = min(size - 1, _frames(config.window_overlap_s, fps))
    spans = []
    for utterance, (start, end) in enumerate(padded):
        windows = _windows(start, end, size, overlap)
        for k, (w_start, w_end) in enumerate(windows):
            before = windows[k - 1][1] - w_start if k > 0 else 0
            after = w_end - windows[k + 1][0] if k + 1 < len(windows) else 0
            spans.append(Span(w_start, w_end, utterance, before, after))
    logger.debug("%d utterances, %d spans in %d frames", len(padded), len(spans), total)
    return spans


def find_utterances(result: "MouthResult", config: SegmentationConfig | None = None) -> list[Span]:
    """The speech spans of one clip: :func:`split_utterances` of :func:`mouth_activity`.

    Args:
        result: from ``lipnet_ko.video.extract.extract_mouth_from_video`` (or ``extract_mouth``); its
            landmarks are used when they were detected, its crops otherwise; ``result.fps`` or ``FPS``.
        config: default ``SegmentationConfig()``.

    Returns:
        ``Span``s in time order, frame indices into ``result.crops`` (``result.timestamps[span.start]``
        is the start time in the file).
    """
    fps = result.fps or FPS
    activity = mouth_activity(result.crops, result.landmarks, fps, config=config)
    return split_utterances(activity, fps, config)


def merge_window_texts(texts: Sequence[str]) -> str:
    """Joins the decoded texts of consecutive overlapping windows into one text.

    The end of each window and the start of the next saw the same frames, so they usually decode to
    the same words. For each next text, the longest run of words that ends the text so far and also
    starts the next text is said once. Words are compared exactly (after whitespace splitting); when
    the decoder got the overlap slightly differently twice, nothing matches and both are kept.

    Args:
        texts: decoded texts of the windows of one utterance, in time order.

    Returns:
        The joined text, words separated by single spaces.
    """
    merged: list[str] = []
    for text in texts:
        words = text.split()
        longest = 0
        for k in range(min(len(merged), len(words)), 0, -1):
            if merged[-k:] == words[:k]:
                longest = k
                break
        merged.extend(words[longest:])
    return " ".join(merged)
