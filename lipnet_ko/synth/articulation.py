"""Articulation: Korean text -> per-frame mouth parameters for the synthetic face renderer.

Owns the timing and the coarticulation of the synthetic corpus. Each jamo becomes a segment with the
:data:`~lipnet_ko.text.visemes.MOUTH_SHAPES` target of its viseme class, a duration that depends only on
its class (consonant and vowel phases, scaled by the speaker's rate), and a *dominance* per mouth
parameter: how strongly the segment pulls that parameter towards its target. The parameter track is
the dominance-weighted mean of all targets at each instant, with dominance decaying exponentially
outside a segment (the Cohen-Massaro coarticulation model, Cohen & Massaro 1993, "Modeling
coarticulation in synthetic visual speech"). So a velar consonant barely moves the lips and takes
the shape of its vowel, a bilabial closes them whatever surrounds it, and 와 starts rounded (a w-glide
onset from :data:`~lipnet_ko.text.visemes.GLIDE_ONSETS`) before it opens.

Everything depends on the viseme classes only, never on the jamo itself: two texts with the same
viseme string give identical tracks for the same random draws. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipnet_ko.text.visemes import GLIDE_ONSETS, MOUTH_FIELDS, MOUTH_SHAPES, REST_SHAPE, WORD_BOUNDARY, viseme_sequence

FPS = 25.0  # frames per second of the synthetic corpus (GRID's and most lipreading corpora's rate)
NUM_PARAMS = len(MOUTH_FIELDS)  # 6: jaw_open, lip_width, lip_protrusion, lip_closure, teeth_visible, tongue_visible
CLOSURE = MOUTH_FIELDS.index("lip_closure")  # the one parameter articulation strength does not scale

REST = "rest"  # segment label of the relaxed mouth before and after a sentence
PAUSE = "pause"  # segment label of the short break between words

# Seconds per segment at speaking rate 1.0, by class. About 0.21 s per syllable (4.8 syllables/s), a
# careful read-speech rate; vowels carry most of the time, as in Korean syllable timing.
DURATIONS_S: dict[str, float] = {
    "I:velar": 0.055,
    "I:coronal": 0.06,
    "I:bilabial": 0.075,
    "I:sibilant": 0.08,
    "M:": 0.13,  # every vowel class
    "F:velar": 0.07,
    "F:coronal": 0.07,
    "F:liquid": 0.08,
    "F:bilabial": 0.09,
    PAUSE: 0.05,
}
GLIDE_SHARE = 0.4  # share of a w-vowel spent on its rounded onset
GLIDE_STRETCH = 1.2  # w-vowels (onset + vowel) last this much longer than plain vowels

# Dominance of each class over each parameter, in MOUTH_FIELDS order (jaw_open, lip_width,
# lip_protrusion, lip_closure, teeth_visible, tongue_visible). Vowels are the reference (1). Velars
# hardly impose anything; bilabials own the closure and the jaw; coronals and sibilants the teeth and tongue.
DOMINANCE: dict[str, tuple[float, ...]] = {
    "I:velar": (0.25, 0.15, 0.15, 0.5, 0.3, 0.3),
    "I:coronal": (0.6, 0.3, 0.3, 0.5, 1.0, 1.0),
    "I:bilabial": (3.0, 0.5, 0.5, 8.0, 3.0, 3.0),
    "I:sibilant": (1.2, 0.5, 0.8, 0.5, 1.5, 0.8),
    "M:": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    "F:velar": (0.5, 0.3, 0.3, 0.5, 0.4, 0.4),
    "F:coronal": (0.7, 0.3, 0.3, 0.5, 1.0, 1.0),
    "F:liquid": (0.7, 0.3, 0.3, 0.5, 1.0, 1.2),
    "F:bilabial": (3.0, 0.5, 0.5, 8.0, 3.0, 3.0),
    REST: (1.5, 1.5, 1.5, 1.5, 1.5, 1.5),
    PAUSE: (0.15, 0.15, 0.15, 0.15, 0.15, 0.15),
}


@dataclass(frozen=True)
class Segment:
    """One timed articulation target."""

    label: str  # viseme class ("M:a"), REST or PAUSE
    start: float  # seconds from the start of the track
    end: float  # seconds
    target: tuple[float, ...]  # MouthShape fields in MOUTH_FIELDS order
    dominance: tuple[float, ...]  # one weight per field


@dataclass(frozen=True, eq=False)
class Articulation:
    """The mouth motion of one sentence, with rest at both ends."""

    params: np.ndarray  # float32 [T, NUM_PARAMS], each in [0, 1], MOUTH_FIELDS order, one row per frame
    segments: tuple[Segment, ...]  # in time order, the rests included
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.params.shape[0])

    def label_at(self, frame: int) -> str:
        """The segment label playing at the middle of ``frame`` (for previews)."""
        t = (frame + 0.5) / self.fps
        return next((s.label for s in self.segments if s.start <= t < s.end), self.segments[-1].label)


def _key(label: str) -> str:
    return "M:" if label.startswith("M:") else label


def plan_segments(text: str, *, rate: float = 1.0, rng: np.random.Generator | None = None,
                  timing_jitter: float = 0.1, lead_in: float = 0.24, lead_out: float = 0.24) -> list[Segment]:  # fmt: skip
    """Text -> timed segments: rest, one segment per jamo (two for w-vowels), pauses at spaces, rest.

    Args:
        text: normalised Korean (Hangul syllables and single spaces).
        rate: speaking rate; 1.25 speaks 25% faster (all jamo durations divided by it).
        rng: draws the per-segment duration jitter; None means no jitter.
        timing_jitter: standard deviation of the log duration factor of each segment.
        lead_in, lead_out: seconds of rest before and after the sentence.

    Raises:
        ValueError: for text that is not Hangul and spaces, or a non-positive rate.
    """
    if rate <= 0:
        raise ValueError(f"speaking rate must be positive, got {rate}")
    rest = REST_SHAPE.astuple()
    segments = [Segment(REST, 0.0, lead_in, rest, DOMINANCE[REST])]
    t = lead_in
    for label in viseme_sequence(text):
        key = PAUSE if label == WORD_BOUNDARY else _key(label)
        duration = DURATIONS_S[key] / rate
        if rng is not None and timing_jitter > 0:
            duration *= float(np.exp(rng.normal(0.0, timing_jitter)))
        if key == PAUSE:
            segments.append(Segment(PAUSE, t, t + duration, rest, DOMINANCE[PAUSE]))
        elif label in GLIDE_ONSETS:
            duration *= GLIDE_STRETCH
            onset = duration * GLIDE_SHARE
            segments.append(Segment(label, t, t + onset, GLIDE_ONSETS[label].astuple(), DOMINANCE[key]))
            segments.append(Segment(label, t + onset, t + duration, MOUTH_SHAPES[label].astuple(), DOMINANCE[key]))
        else:
            segments.append(Segment(label, t, t + duration, MOUTH_SHAPES[label].astuple(), DOMINANCE[key]))
        t += duration
    segments.append(Segment(REST, t, t + lead_out, rest, DOMINANCE[REST]))
    return segments


def track(segments: list[Segment], *, fps: float = FPS, coarticulation: float = 0.04,
          strength: float = 1.0) -> np.ndarray:  # fmt: skip
    """Segments -> per-frame parameters by dominance-weighted blending of the targets.

    Args:
        segments: from :func:`plan_segments`.
        fps: frames per second; frame ``k`` is sampled at its middle, ``(k + 0.5) / fps``.
        coarticulation: seconds over which a segment's dominance decays by 1/e outside it; larger
            is more slurred speech.
        strength: articulation strength; scales every parameter's distance from the rest shape
            except the lip closure (a bilabial closes the lips whatever the speaker's style).

    Returns:
        float32 [T, NUM_PARAMS] in [0, 1], with ``T = round(end of the last segment * fps)``.
    """
    num_frames = max(1, int(round(segments[-1].end * fps)))
    t = (np.arange(num_frames) + 0.5) / fps  # [T]
    starts = np.array([s.start for s in segments])  # [S]
    ends = np.array([s.end for s in segments])
    targets = np.array([s.target for s in segments])  # [S, P]
    dominance = np.array([s.dominance for s in segments])  # [S, P]
    outside = np.maximum(0.0, np.maximum(starts[None, :] - t[:, None], t[:, None] - ends[None, :]))  # [T, S] seconds
    weight = np.exp(-outside / coarticulation)[:, :, None] * dominance[None]  # [T, S, P]
    params = (weight * targets[None]).sum(axis=1) / weight.sum(axis=1)  # [T, P]
    rest = np.array(REST_SHAPE.astuple())
    scaled = rest + strength * (params - rest)
    scaled[:, CLOSURE] = params[:, CLOSURE]
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def articulate(text: str, *, rate: float = 1.0, strength: float = 1.0, coarticulation: float = 0.04,
               rng: np.random.Generator | None = None, timing_jitter: float = 0.1, lead_in: float = 0.24,
               lead_out: float = 0.24, fps: float = FPS) -> Articulation:  # fmt: skip
    """Korean text -> the mouth motion of a speaker saying it, with rest before and after.

    Args:
        text: normalised Korean (Hangul syllables and single spaces).
        rate, rng, timing_jitter, lead_in, lead_out: see :func:`plan_segments`.
        strength, coarticulation, fps: see :func:`track`.

    Returns:
        An :class:`Articulation`; ``params`` is float32 [T, 6] in MOUTH_FIELDS order.
    """
    segments = plan_segments(text, rate=rate, rng=rng, timing_jitter=timing_jitter, lead_in=lead_in, lead_out=lead_out)
    params = track(segments, fps=fps, coarticulation=coarticulation, strength=strength)
    return Articulation(params=params, segments=tuple(segments), fps=fps)


def rest_params(num_frames: int) -> np.ndarray:
    """float32 [num_frames, 6]: the rest shape held (silence between sentences)."""
    return np.tile(np.array(REST_SHAPE.astuple(), dtype=np.float32), (num_frames, 1))


VISIBLE_CHANGE = 0.15  # Euclidean distance between two frames' parameters that a viewer can be expected to see


def distinct_frames(text_a: str, text_b: str, *, threshold: float = VISIBLE_CHANGE) -> int:
    """How many frames tell two texts apart on the lips, after aligning their mouth motion in time.

    Both texts are articulated with the neutral speaker (rate 1, no jitter, short rests) and the two
    tracks are aligned by dynamic time warping (Euclidean frame distance), so a text that is only
    slower or faster is not counted as different. The count is the number of aligned frame pairs
    whose parameters differ by more than ``threshold``. Texts with equal viseme strings give 0;
    a difference that lasts one or two frames (40-80 ms at 25 fps) is nearly invisible in rendered
    video. The grammar's slots keep every pair of options at least
    ``sentences.MIN_DISTINCT_FRAMES`` apart (``tests/text/test_sentences.py``).
    """
    a = articulate(text_a, lead_in=0.08, lead_out=0.08).params.astype(np.float64)
    b = articulate(text_b, lead_in=0.08, lead_out=0.08).params.astype(np.float64)
    dist = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)  # [Ta, Tb]
    cost = np.full((len(a) + 1, len(b) + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost[i, j] = dist[i - 1, j - 1] + min(cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1])
    i, j, count = len(a), len(b), 0
    while i > 0 and j > 0:  # walk the cheapest path back, counting the visibly different pairs on it
        count += int(dist[i - 1, j - 1] > threshold)
        step = int(np.argmin((cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1])))
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    return count
