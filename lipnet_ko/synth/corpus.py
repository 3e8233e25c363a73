"""Synthetic Korean speaking-face corpus: ``lipnet-ko synth`` and :func:`generate_corpus`.

No real Korean lip video can be fetched where this project is developed, so it makes its own: real
face photographs that installed packages ship (scikit-image's ``astronaut.png`` for training,
matplotlib's ``grace_hopper.jpg`` held out; or the user's ``--faces``) whose mouths move with the jamo
of Korean sentences. This module owns the corpus: the synthetic speakers (each a random draw of face
geometry, skin, stubble, glasses (:mod:`lipnet_ko.synth.identity`), mouth proportions, lip colour,
teeth, lighting, head pose drift and jitter, camera noise and compression, speaking rate and
articulation strength, all from the seed), which sentences each one says in which split, and the
files. Mouth motion comes from :mod:`lipnet_ko.synth.articulation`, pixels from
:mod:`lipnet_ko.synth.face`, the one-time face fit from :mod:`lipnet_ko.video.landmarks` (dlib).

Splits (``split.json``, :func:`lipnet_ko.data.corpora.write_split`), for the default ``sentence_set="open"``:

- ``train``: training speakers reading ``sentence_pool.load_pool("train")``;
- ``val``: training speakers reading ``load_pool("val")``;
- ``unseen_sentences``: training speakers reading ``load_pool("test")``;
- ``unseen_speakers``: held-out speakers, made only from held-out photos (mirrors included), reading ``load_pool("test")``.

The output uses the AIHub/OLKAVS layout, so ``synthetic:DIR`` goes through the same reader
(:func:`lipnet_ko.data.corpora.scan`), preprocessing and training as real data::

    DIR/synth.json                               the generation settings (the cache key), photos and speakers
    DIR/split.json                               the four splits
    DIR/C001/lip_J_{noise}_{F|M}_{age}_C001_A_001.json   AIHub label: Sentence_info times, per-frame face and lip boxes
    DIR/C001/lip_J_..._C001_A_001.mp4            output="video": one video per session of several sentences
    DIR-crops/lip_J_..._C001_A_001_{ID}.npz      output="crops": the mouth crops of every sentence, no video

``output="crops"`` (the default corpus) renders each frame in memory and crops it with the one crop path
(:func:`lipnet_ko.video.extract.extract_mouth`, boxes from the renderer, ``PreprocessConfig()``), writing
the files :func:`lipnet_ko.data.crops.save_clip` writes, where training looks for them (:func:`crops_dir`):
``lipnet-ko preprocess`` / ``data.crops.run_batch`` then finds every clip done and opens no video. The
only difference from cropping the written video is the mp4 codec (tests/synth/test_corpus.py).

Boxes are stored in the order real OLKAVS files use, ``[y_top, x_left, y_bottom, x_right]``. Every
label says ``"synthetic": true``. The same settings and seed give byte-identical labels and identical
frames and crops; re-running over a finished corpus does nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lipnet_ko.data.clips import Clip
from lipnet_ko.data.batching import ctc_min_frames
from lipnet_ko.files import write_json_atomic
from lipnet_ko.synth.articulation import FPS, articulate, rest_params
from lipnet_ko.synth.face import (
    CameraStyle,
    Face,
    FaceRenderer,
    FaceStyle,
    apply_camera,
    mirror_face,
    pose_matrix,
    prepare_face,
    transform_points,
)
from lipnet_ko.synth.identity import IdentityStyle, apply_identity, sample_identity
from lipnet_ko.text.normalize import normalize_text
from lipnet_ko.text.sentences import load_grammar
from lipnet_ko.text.tokenizer import JamoTokenizer

log = logging.getLogger(__name__)

# Bump when the same settings would render different files; part of the cache key and of the default folder
# name, so a corpus of an older version is never mixed in. What each version changed: data/synth/README.md.
SYNTH_VERSION = 4
MANIFEST_NAME = "synth.json"
SPLIT_NAME = "split.json"
SPLITS = ("train", "val", "unseen_sentences", "unseen_speakers")
SENTENCE_SETS = ("open", "grammar")  # open = lipnet_ko.text.sentence_pool; grammar = the command grammar in every split
POOL_OF_SPLIT = {"train": "train", "val": "val", "unseen_sentences": "test", "unseen_speakers": "test"}
FIRST_SESSION = {"train": 1, "val": 401, "unseen_sentences": 601, "unseen_speakers": 1}  # file-name session numbers
OUTPUTS = ("crops", "video")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
LIP_BOX_MARGIN = 0.12  # lip box = outer-lip landmarks' box plus this share of the mouth width on each side
FACE_BOX_MARGIN = 0.05  # face box = all landmarks' box plus this share of its width on each side
NOISE_BANK = 8  # noise patterns drawn per session, cycled over its frames
SLOWER_TRIES = 4  # a sentence too long for CTC at the speaker's rate is said this many times slower (x 1/1.15 each)

# The default photos: (package, path inside it, licence). The last DEFAULT_HELD_OUT are held out for unseen speakers.
DEFAULT_FACES = (
    ("skimage", "data/astronaut.png", "Eileen Collins, NASA photograph: public domain (scikit-image data/README)"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
     "Grace Hopper, U.S. Navy photograph: public domain (matplotlib sample_data)"),
)  # fmt: skip


@dataclass(frozen=True)
class SynthConfig:
    """What corpus to generate; ``SynthConfig()`` is the default corpus (v4). Everything but ``jobs`` is the cache key."""

    speakers: int = 96  # training speakers (identities), ids C001..C096
    sentences: int = 64  # "train" sentences per training speaker (96 x 64 = 6,144)
    val_sentences: int = 3  # "val" sentences per training speaker (288)
    unseen_sentences: int = 3  # "unseen_sentences" per training speaker (288; the test pool has 332 of <= 18 characters)
    held_out_speakers: int = 12  # unseen speakers after the training ids (C097..C108), from held-out photos only
    unseen_speaker_sentences: int = 27  # "unseen_speakers" sentences per held-out speaker (324)
    sentences_per_session: int = 8  # sentences per session (one label file; one video in output="video")
    sentence_set: str = "open"  # open (sentence pool splits) | grammar (the command grammar in every split)
    max_syllables: int = 18  # pool sentences longer than this (characters but spaces) are left out: training speed
    seed: int = 0
    faces: str | None = None  # photo or folder of photos; None = DEFAULT_FACES
    held_out_photos: int = 1  # the last N photos (sorted by name; DEFAULT_FACES order) make only unseen speakers
    mirror_faces: bool = True  # also use every face flipped left-right (twice the identities)
    frame_size: int = 160  # px, square frames
    face_share: float = 0.6  # jaw width as a share of the frame width (96 px: dlib's HOG detector finds it)
    fps: float = FPS
    # Frames of rest between two sentences of a session, drawn in [low, high).
    pause_frames: tuple[int, int] = (2, 8)
    output: str = "crops"  # crops: mouth crops straight into crops_dir(DIR), no video | video: mp4 per session
    jobs: int = 1  # worker processes; not part of the cache key

    def __post_init__(self) -> None:
        for name in ("speakers", "sentences_per_session", "frame_size", "max_syllables", "jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"SynthConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("sentences", "val_sentences", "unseen_sentences", "held_out_speakers", "unseen_speaker_sentences",
                     "held_out_photos"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"SynthConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.held_out_speakers and not self.unseen_speaker_sentences:
            raise ValueError("SynthConfig.held_out_speakers needs unseen_speaker_sentences >= 1")
        if self.held_out_speakers and not self.held_out_photos:
            raise ValueError("SynthConfig.held_out_speakers needs held_out_photos >= 1: unseen speakers use held-out photos only")
        if self.sentence_set not in SENTENCE_SETS:
            raise ValueError(f"SynthConfig.sentence_set must be one of {', '.join(SENTENCE_SETS)}, got {self.sentence_set!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"SynthConfig.output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        object.__setattr__(self, "pause_frames", tuple(int(n) for n in self.pause_frames))  # JSON gives a list
        if len(self.pause_frames) != 2 or not 1 <= self.pause_frames[0] < self.pause_frames[1]:
            raise ValueError(f"SynthConfig.pause_frames must be (low, high) with 1 <= low < high, got {self.pause_frames}")
        if not 0.2 <= self.face_share <= 0.9:
            raise ValueError(f"SynthConfig.face_share must be in [0.2, 0.9], got {self.face_share}")
        if self.frame_size * self.face_share < 90:
            raise ValueError(
                f"faces would be {self.frame_size * self.face_share:.0f} px wide (frame_size x face_share); dlib's "
                "detector needs about 90 px or more: raise frame_size or face_share"
            )
        for split, count in self.split_sessions().items():
            if FIRST_SESSION[split] + count > {"train": 401, "val": 601}.get(split, 1000):
                raise ValueError(f"SynthConfig: {count} {split} sessions per speaker overflow the session numbers; "
                                 "raise sentences_per_session or speakers")  # fmt: skip

    def split_sessions(self) -> dict[str, int]:
        """Sessions per speaker of each split."""
        per_speaker = {"train": self.sentences, "val": self.val_sentences, "unseen_sentences": self.unseen_sentences,
                       "unseen_speakers": self.unseen_speaker_sentences}  # fmt: skip
        return {split: math.ceil(n / self.sentences_per_session) for split, n in per_speaker.items()}

    def cache_key(self) -> dict:
        """The settings that decide the files: all fields but ``jobs``, plus the generator version."""
        key = dataclasses.asdict(self)
        del key["jobs"]
        key["pause_frames"] = list(key["pause_frames"])  # as JSON reads it back
        return {"version": SYNTH_VERSION, **key}


def crops_dir(out_dir: str | Path) -> Path:
    """Where the crops of a corpus go: ``DIR-crops`` beside ``DIR`` (the cache training reads)."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + "-crops")


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: identity for the file names, and everything that makes them look different."""

    speaker_id: str  # "C001"
    gender: str  # "F" or "M" (file name field only; the face photo decides what is seen)
    age: int
    face: int  # index into the corpus's faces (training faces first, then held-out faces)
    held_out: bool  # an unseen speaker (held-out photo)
    noise_level: int  # 1-6, the AIHub file-name field, here the camera noise level
    rate: float  # speaking rate, 1 = articulation.DURATIONS_S
    strength: float  # articulation strength (how far from rest each target is reached)
    coarticulation: float  # seconds of dominance decay (slurring)
    style: FaceStyle
    identity: IdentityStyle
    camera: CameraStyle
    pose: tuple[float, ...]  # angle deg, scale, dx px, dy px: the speaker's mean head pose
    drift: tuple[float, ...]  # amplitude of the slow head motion: angle deg, scale, dx px, dy px
    jitter: float  # px, per-frame shake


def speaker_id(index: int) -> str:
    """1-based speaker index -> ``"C001"``."""
    return f"C{index:03d}"


def sample_speaker(index: int, seed: int, faces: range | list[int], frame_size: int, held_out: bool = False) -> Speaker:
    """The ``index``-th (1-based) speaker of a corpus, drawn from ``seed`` alone (adding speakers keeps the others).

    ``faces`` are the face indices this speaker may use (training or held-out faces); the speaker takes
    ``faces[(index - 1) % len(faces)]``.
    """
    rng = np.random.default_rng([seed, index, 1])
    noise = float(rng.choice([0.0, 1.0, 2.0, 3.5, 5.0, 7.0], p=[0.15, 0.25, 0.25, 0.15, 0.12, 0.08]))
    camera = CameraStyle(
        rgb_gain=tuple(float(g) for g in np.exp(rng.normal(0.0, 0.06, 3))),
        contrast=float(rng.uniform(0.75, 1.2)),
        brightness=float(rng.normal(0.0, 14.0)),
        gamma=float(np.exp(rng.normal(0.0, 0.15))),
        blur=float(rng.choice([0.0, rng.uniform(0.3, 1.0)], p=[0.5, 0.5])),
        noise=noise,
        jpeg_quality=int(rng.choice([0, int(rng.integers(30, 90))], p=[0.4, 0.6])),
    )
    style = FaceStyle(
        mouth_scale=float(rng.uniform(0.85, 1.12)),
        lip_thickness=float(rng.uniform(0.75, 1.3)),
        lower_lip=float(rng.uniform(0.85, 1.2)),
        opening=float(rng.uniform(0.8, 1.15)),
        roundness=float(rng.uniform(0.8, 1.2)),
        mouth_offset=float(rng.normal(0.0, 0.03)),
        lip_rgb=(float(rng.uniform(0.9, 1.3)), float(rng.uniform(0.65, 0.95)), float(rng.uniform(0.7, 1.0))),
        teeth_shade=float(rng.uniform(0.7, 1.05)),
        side_light=float(rng.uniform(-0.25, 0.25)),
    )
    return Speaker(
        speaker_id=speaker_id(index),
        gender=str(rng.choice(["F", "M"])),
        age=int(rng.integers(20, 70)),
        face=int(faces[(index - 1) % len(faces)]),
        held_out=held_out,
        noise_level=1 + int(np.searchsorted([0.5, 1.5, 3.0, 4.5, 6.0], noise)),
        rate=float(rng.uniform(0.8, 1.25)),
        strength=float(rng.uniform(1.0, 1.35)),  # careful read speech, as GRID speakers articulate
        coarticulation=float(rng.uniform(0.025, 0.035)),
        style=style,
        identity=sample_identity(rng),
        camera=camera,
        pose=(float(rng.normal(0, 3.0)), float(rng.uniform(0.92, 1.08)),
              float(rng.normal(0, 0.03 * frame_size)), float(rng.normal(0, 0.03 * frame_size))),  # fmt: skip
        drift=(float(rng.uniform(0.5, 3.0)), float(rng.uniform(0.0, 0.03)),
               float(rng.uniform(0.0, 0.025 * frame_size)), float(rng.uniform(0.0, 0.02 * frame_size))),  # fmt: skip
        jitter=float(rng.uniform(0.0, 0.5)),
    )


def speaker_face(speaker: Speaker, faces: list[Face], seed: int) -> Face:
    """The speaker's face: their photo (or its mirror) edited by their identity."""
    return apply_identity(faces[speaker.face], speaker.identity, seed=seed * 1000 + int(speaker.speaker_id[1:]))


def syllable_count(text: str) -> int:
    """Characters but spaces: the length cap of ``SynthConfig.max_syllables``."""
    return len(text.replace(" ", ""))


def sentence_pools(config: SynthConfig) -> dict[str, list[str]]:
    """Split name -> the sentences it may say (``sentence_set="open"``), at most ``max_syllables`` long.

    ``train`` and ``val`` read ``sentence_pool.load_pool("train")`` and ``("val")``; ``unseen_sentences``
    and ``unseen_speakers`` both ``("test")``. Empty lists for ``sentence_set="grammar"`` (sampled instead).

    Raises:
        ValueError: a pool needed by a split has no sentence short enough.
    """
    if config.sentence_set == "grammar":
        return {split: [] for split in SPLITS}
    from lipnet_ko.text.sentence_pool import load_pool

    loaded = {name: load_pool(name) for name in sorted(set(POOL_OF_SPLIT.values()))}
    pools = {}
    for split, name in POOL_OF_SPLIT.items():
        pools[split] = [s for s in loaded[name] if syllable_count(s) <= config.max_syllables]
    needed = {"train": config.sentences, "val": config.val_sentences, "unseen_sentences": config.unseen_sentences,
              "unseen_speakers": config.unseen_speaker_sentences * min(1, config.held_out_speakers)}  # fmt: skip
    for split, count in needed.items():
        if count and not pools[split]:
            raise ValueError(f"sentence pool {POOL_OF_SPLIT[split]!r} has no sentence of at most {config.max_syllables} "
                             "characters; raise max_syllables")  # fmt: skip
    return pools


def fits_ctc(text: str, num_frames: int, tokenizer: JamoTokenizer | None = None) -> bool:
    """True when CTC can align the jamo label of ``text`` to ``num_frames`` frames.

    CTC needs one frame per label token plus one blank between each pair of repeated tokens
    (:func:`lipnet_ko.data.batching.ctc_min_frames`); the clip must have more frames than that.
    """
    return ctc_min_frames((tokenizer or JamoTokenizer()).encode(text)) < num_frames


@dataclass(frozen=True)
class SessionPlan:
    """One session (one label file; one video in output="video")."""

    speaker: Speaker
    session: int  # the number in the file name
    split: str  # one of SPLITS
    texts: tuple[str, ...]  # the sentences, in order

    @property
    def num_sentences(self) -> int:
        return len(self.texts)

    @property
    def stem(self) -> str:
        s = self.speaker
        return f"lip_J_{s.noise_level}_{s.gender}_{s.age:02d}_{s.speaker_id}_A_{self.session:03d}"


def _deal(pool: list[str], count: int, rng: np.random.Generator) -> list[str]:
    """``count`` sentences of ``pool``: shuffled copies one after another, so each repeats as little as possible."""
    out: list[str] = []
    while len(out) < count:
        out += [pool[i] for i in rng.permutation(len(pool))]
    return out[:count]


def plan_corpus(config: SynthConfig, num_faces: tuple[int, int], pools: dict[str, list[str]] | None = None) -> list[SessionPlan]:
    """Every session of the corpus, split by split, speaker by speaker.

    Args:
        config: the corpus.
        num_faces: (training faces, held-out faces) as ``load_faces`` returns them (mirrors counted).
        pools: ``sentence_pools(config)`` (loaded when None).
    """
    train_faces, held_faces = num_faces
    if config.held_out_speakers and not held_faces:
        raise ValueError("unseen speakers need a held-out photo: give at least held_out_photos + 1 usable photos, "
                         "or set held_out_speakers to 0")  # fmt: skip
    pools = sentence_pools(config) if pools is None else pools
    grammar = load_grammar() if config.sentence_set == "grammar" else None
    trained = [sample_speaker(i, config.seed, range(train_faces), config.frame_size) for i in range(1, config.speakers + 1)]
    unseen = [sample_speaker(config.speakers + i, config.seed, range(train_faces, train_faces + held_faces), config.frame_size,
                             held_out=True) for i in range(1, config.held_out_speakers + 1)]  # fmt: skip
    per_speaker = {"train": config.sentences, "val": config.val_sentences, "unseen_sentences": config.unseen_sentences,
                   "unseen_speakers": config.unseen_speaker_sentences}  # fmt: skip
    plans = []
    for number, split in enumerate(SPLITS):
        speakers = unseen if split == "unseen_speakers" else trained
        count = per_speaker[split]
        rng = np.random.default_rng([config.seed, number, 3])
        total = count * len(speakers)
        if grammar is not None:
            texts = grammar.sample(rng, total) if total else []
        else:
            texts = _deal(pools[split], total, rng)
            repeats = math.ceil(total / len(pools[split])) if total else 0
            if repeats > 2:
                log.warning("split %s: %d sentences from a pool of %d: each is said up to %d times", split, total,
                            len(pools[split]), repeats)  # fmt: skip
        for k, speaker in enumerate(speakers):
            mine = texts[k * count:(k + 1) * count]
            for j in range(0, count, config.sentences_per_session):
                session = FIRST_SESSION[split] + j // config.sentences_per_session
                plans.append(SessionPlan(speaker, session, split, tuple(mine[j:j + config.sentences_per_session])))
    return plans


def _pose_track(speaker: Speaker, num_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """float64 [T, 4] (angle deg, scale, dx, dy): the speaker's pose, a slow drift of two sines per axis, and jitter."""
    t = np.arange(num_frames)[:, None] / fps  # [T, 1]
    frequency = rng.uniform(0.03, 0.25, (2, 4))  # Hz
    phase = rng.uniform(0, 2 * np.pi, (2, 4))
    weights = rng.uniform(0.3, 1.0, (2, 4))
    drift = sum(weights[k] * np.sin(2 * np.pi * frequency[k] * t + phase[k]) for k in range(2)) / 1.3  # [T, 4] in about [-1, 1]
    track = np.array(speaker.pose)[None] + np.array(speaker.drift)[None] * drift
    track[:, 2:] += rng.normal(0.0, speaker.jitter, (num_frames, 2))
    track[:, 0] += rng.normal(0.0, 0.1 * speaker.jitter, num_frames)
    return track


def _box(points: np.ndarray, margin: float, size: int) -> list[float]:
    """[y_top, x_left, y_bottom, x_right] around points, widened by ``margin`` x width, inside the frame."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * float(hi[0] - lo[0])
    x0, y0 = max(0.0, float(lo[0]) - pad), max(0.0, float(lo[1]) - pad)
    x1, y1 = min(size - 1.0, float(hi[0]) + pad), min(size - 1.0, float(hi[1]) + pad)
    return [round(y0, 1), round(x0, 1), round(y1, 1), round(x1, 1)]


def sentence_frames(label: dict) -> list[tuple[int, int]]:
    """[first, last) frame numbers of each sentence of a label, as the corpus reader cuts them."""
    fps = float(label["Video_info"]["FPS"])
    return [(int(round(s["start_time"] * fps)), int(round(s["end_time"] * fps))) for s in label["Sentence_info"]]


def render_session(plan: SessionPlan, face: Face, config: SynthConfig):
    """Frames and label of one session.

    Args:
        face: the speaker's face (``speaker_face``: photo plus identity).

    Returns:
        ``(frames, label)``: ``frames(keep=None)`` returns a generator of uint8 [H, W, 3] RGB frames
        (rendered on demand, so a session never sits in memory), ``None`` for frames where ``keep``
        (bool [T]) is False (not rendered; their boxes are still computed); label is the AIHub JSON
        record (a dict) whose boxes are filled in as frames are made (complete once the generator is
        exhausted). The frames' count, the times and the texts are in the label from the start.
    """
    speaker = plan.speaker
    rng = np.random.default_rng([config.seed, int(speaker.speaker_id[1:]), plan.session, 2])
    tokenizer = JamoTokenizer()
    fps = config.fps
    tracks, sentences = [rest_params(int(rng.integers(4, 10)))], []
    frame = tracks[0].shape[0]
    for number, text in enumerate(plan.texts, 1):
        lead_in, lead_out = float(rng.uniform(0.16, 0.32)), float(rng.uniform(0.16, 0.32))
        rate = speaker.rate
        for _ in range(SLOWER_TRIES + 1):
            motion = articulate(text, rate=rate, strength=speaker.strength, coarticulation=speaker.coarticulation, rng=rng,
                                lead_in=lead_in, lead_out=lead_out, fps=fps)  # fmt: skip
            if fits_ctc(text, motion.num_frames, tokenizer):
                break
            rate /= 1.15
        else:
            raise RuntimeError(f"{text!r} does not fit a CTC clip even at rate {rate:.2f}; lower max_syllables")
        sentences.append({"ID": number, "topic": config.sentence_set, "sentence_text": text, "start_time": round(frame / fps, 4),
                          "end_time": round((frame + motion.num_frames) / fps, 4)})  # fmt: skip
        tracks.append(motion.params)
        frame += motion.num_frames
        gap = rest_params(int(rng.integers(*config.pause_frames)))
        tracks.append(gap)
        frame += gap.shape[0]
    params = np.concatenate(tracks)  # [T, 6]
    poses = _pose_track(speaker, len(params), fps, rng)
    noise = rng.standard_normal((NOISE_BANK, config.frame_size, config.frame_size, 3), dtype=np.float32)
    noise_order = rng.integers(0, NOISE_BANK, len(params))
    size = config.frame_size
    lip_boxes: list[list[float]] = []
    face_boxes: list[list[float]] = []
    label = {
        "Video_info": {"video_Name": f"{plan.stem}.mp4", "FPS": fps, "Resolution": f"{size}*{size}",
                       "video_Duration": round(len(params) / fps, 4)},  # fmt: skip
        "Sentence_info": sentences,
        "speaker_info": {"speaker_ID": speaker.speaker_id, "gender": speaker.gender, "age": speaker.age,
                         "synthetic": True, "face": face.name, "split": plan.split},  # fmt: skip
        "Bounding_box_info": {"Face_bounding_box": {"xtl_ytl_xbr_ybr": face_boxes},
                              "Lip_bounding_box": {"xtl_ytl_xbr_ybr": lip_boxes}},  # fmt: skip
        "synthetic": {"generator": "lipnet-ko synth", "version": SYNTH_VERSION, "seed": config.seed, "output": config.output,
                      "box_order": "y_top, x_left, y_bottom, x_right"},  # fmt: skip
    }

    def frames(keep: np.ndarray | None = None):
        renderer = FaceRenderer(face, speaker.style)
        last_key, last = None, None
        for k in range(len(params)):
            key = params[k].tobytes()
            wanted = keep is None or bool(keep[k])
            if wanted and (key != last_key or last[0] is None):  # rests repeat the same parameters
                last_key, last = key, renderer.render(params[k])
            elif key != last_key:
                last_key, last = key, (None, renderer.landmarks_for(params[k]))
            image, landmarks = last
            matrix = pose_matrix(poses[k, 0], poses[k, 1], (poses[k, 2], poses[k, 3]), (size, size))
            points = transform_points(landmarks, matrix)
            lip_boxes.append(_box(points[48:60], LIP_BOX_MARGIN, size))
            face_boxes.append(_box(points, FACE_BOX_MARGIN, size))
            yield apply_camera(image, matrix, speaker.camera, noise[noise_order[k]]) if wanted else None

    return frames, label


def _write_label(path: Path, label: dict) -> None:
    write_json_atomic(path, [label])


def write_session(plan: SessionPlan, face: Face, config: SynthConfig, out_dir: Path) -> dict:
    """Render one session to ``out_dir/SPEAKER/STEM.{mp4,json}``, atomically; skip it when both exist.

    Returns:
        ``{"stem", "frames", "sentences", "skipped"}``.
    """
    folder = out_dir / plan.speaker.speaker_id
    video, label_path = folder / f"{plan.stem}.mp4", folder / f"{plan.stem}.json"
    if video.is_file() and label_path.is_file():
        return {"stem": plan.stem, "frames": 0, "sentences": plan.num_sentences, "skipped": True}
    folder.mkdir(parents=True, exist_ok=True)
    partial = out_dir / ".partial"
    partial.mkdir(exist_ok=True)
    tmp_video = partial / f"{plan.stem}.mp4"
    frames, label = render_session(plan, face, config)
    size = config.frame_size
    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), config.fps, (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4 ({tmp_video}); reinstall opencv-python-headless, which bundles FFmpeg")
    count = 0
    try:
        for image in frames():
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        writer.release()
    os.replace(tmp_video, video)
    _write_label(label_path, label)  # the label last: a session counts as done once its label exists
    return {"stem": plan.stem, "frames": count, "sentences": plan.num_sentences, "skipped": False}


def session_clips(label: dict, video: Path) -> list[Clip]:
    """The clips ``corpora.scan`` reads from a complete label (times, normalised text, boxes x0 y0 x1 y1, clip ids)."""
    stem = video.stem
    boxes = np.asarray(label["Bounding_box_info"]["Lip_bounding_box"]["xtl_ytl_xbr_ybr"], np.float32)[:, [1, 0, 3, 2]]
    clips = []
    for sentence, (first, last) in zip(label["Sentence_info"], sentence_frames(label)):
        clips.append(Clip(video=video, start=float(sentence["start_time"]), end=float(sentence["end_time"]),
                          text=normalize_text(sentence["sentence_text"]), speaker=label["speaker_info"]["speaker_ID"],
                          mouth_boxes=boxes[first:last], clip_id=f"{stem}_{sentence['ID']}"))  # fmt: skip
    return clips


def crop_session(plan: SessionPlan, face: Face, config: SynthConfig, out_dir: Path, preprocess=None) -> dict:
    """Render one session straight to mouth crops: ``crops_dir(out_dir)/<clip_id>.npz`` per sentence, then the label.

    The frames inside the sentences are rendered in memory and cropped by ``extract_mouth`` with the
    label's lip boxes, exactly as ``lipnet-ko preprocess`` would crop the session's video (but for the
    mp4 codec); frames between sentences are not rendered. Skipped when the label exists and every
    crop file is done for ``preprocess``.

    Returns:
        ``{"stem", "frames", "sentences", "skipped"}``.
    """
    from lipnet_ko.data.crops import is_done, output_path, save_clip
    from lipnet_ko.video.extract import PreprocessConfig, extract_mouth

    preprocess = preprocess or PreprocessConfig()
    cache = crops_dir(out_dir)
    folder = out_dir / plan.speaker.speaker_id
    label_path, video = folder / f"{plan.stem}.json", folder / f"{plan.stem}.mp4"
    if label_path.is_file():
        clips = session_clips(json.loads(label_path.read_text(encoding="utf-8"))[0], video)
        if all(is_done(output_path(cache, clip), preprocess) for clip in clips):
            return {"stem": plan.stem, "frames": 0, "sentences": plan.num_sentences, "skipped": True}
    frames, label = render_session(plan, face, config)
    ranges = sentence_frames(label)
    total = int(round(label["Video_info"]["video_Duration"] * config.fps))
    keep = np.zeros(total, bool)
    for first, last in ranges:
        keep[first:last] = True
    rendered: list[np.ndarray] = []
    count, current = 0, 0
    for k, image in enumerate(frames(keep)):
        if image is not None:
            rendered.append(image)
            count += 1
        while current < len(ranges) and k == ranges[current][1] - 1:
            first, last = ranges[current]
            clip = session_clips(label, video)[current]  # the boxes of this sentence are all in the label now
            result = extract_mouth(np.stack(rendered[-(last - first):]), preprocess, boxes=clip.mouth_boxes, fps=config.fps)
            result = dataclasses.replace(result, timestamps=np.arange(first, last, dtype=np.float64) / config.fps)
            save_clip(output_path(cache, clip), result, clip, preprocess, compress=False)  # noisy pixels: deflate gains little
            rendered.clear()
            current += 1
    folder.mkdir(parents=True, exist_ok=True)
    _write_label(label_path, label)  # the label last: a session counts as done once its label and crops exist
    return {"stem": plan.stem, "frames": count, "sentences": plan.num_sentences, "skipped": False}


def package_file(package: str, relative: str) -> Path:
    """A data file of an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the default face photos come with {package}: pip install {package}, or pass --faces DIR")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall {package} or pass --faces DIR")
    return path


def default_face_path() -> Path:
    """scikit-image's ``data/astronaut.png`` (Eileen Collins, NASA, public domain): the first default photo."""
    return package_file(*DEFAULT_FACES[0][:2])


def face_paths(faces: str | None) -> list[Path]:
    """The photos a ``faces`` setting names: DEFAULT_FACES, an image file, or the images in a folder (sorted)."""
    if faces is None:
        return [package_file(package, relative) for package, relative, _ in DEFAULT_FACES]
    path = Path(faces)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"--faces {faces}: no such file or folder")
    paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(f"--faces {faces}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
    return paths


def load_faces(config: SynthConfig) -> tuple[list[Face], list[dict], int]:
    """Fit every face photo once with dlib and crop it to the frame.

    The last ``config.held_out_photos`` photos are held out: their faces (and mirrors) come after the
    training faces and make only unseen speakers. With fewer photos than that plus one, none is held out.

    Returns:
        ``(faces, info, num_train_faces)``: the faces (each followed by its mirror image when
        ``mirror_faces``), training faces first; per photo ``{"name", "sha256", "used", "held_out"}``
        for the manifest; how many of the faces are training faces.

    Raises:
        ValueError: when no photo has a face that dlib still finds after cropping.
    """
    from lipnet_ko.video.landmarks import detect_landmarks_naive, load_models

    detector, _ = load_models()
    paths = face_paths(config.faces)
    held = config.held_out_photos if len(paths) > config.held_out_photos else 0
    train_faces, held_faces, info = [], [], []
    for number, path in enumerate(paths):
        held_out = number >= len(paths) - held
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        used = False
        if image is None:
            log.warning("skipping face %s: not a readable image", path)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            landmarks = detect_landmarks_naive([image], upsample=1)[0]
            if np.isnan(landmarks).any():
                log.warning("skipping face %s: dlib finds no face in it", path)
            else:
                face = prepare_face(image, landmarks, config.frame_size, config.face_share, name=path.stem)
                if not detector(face.image, 0):
                    log.warning("skipping face %s: dlib no longer finds it at %d px", path, config.frame_size)
                else:
                    (held_faces if held_out else train_faces).extend([face, mirror_face(face)] if config.mirror_faces else [face])
                    used = True
        info.append({"name": path.name, "sha256": digest, "used": used, "held_out": held_out})
    if not train_faces:
        raise ValueError(
            f"no usable training face photo in {config.faces or 'the default photos'}: each needs one frontal face dlib "
            "can find (held-out photos make only unseen speakers)"
        )
    return train_faces + held_faces, info, len(train_faces)


_WORKER: dict = {}


def _init_worker(faces: list[Face], config: SynthConfig, out_dir: Path, preprocess) -> None:
    cv2.setNumThreads(1)
    _WORKER.update(faces=faces, config=config, out_dir=out_dir, preprocess=preprocess, cache={})


def _session(plan: SessionPlan, faces: list[Face], config: SynthConfig, out_dir: Path, preprocess, cache: dict) -> dict:
    key = plan.speaker.speaker_id
    if key not in cache:
        cache.clear()  # plans come speaker by speaker: one face in memory
        cache[key] = speaker_face(plan.speaker, faces, config.seed)
    if config.output == "crops":
        return crop_session(plan, cache[key], config, out_dir, preprocess)
    return write_session(plan, cache[key], config, out_dir)


def _work(plan: SessionPlan) -> dict:
    w = _WORKER
    return _session(plan, w["faces"], w["config"], w["out_dir"], w["preprocess"], w["cache"])


def _check_manifest(out_dir: Path, manifest: dict) -> None:
    path = out_dir / MANIFEST_NAME
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("config") != manifest["config"] or old.get("faces") != manifest["faces"]:
            raise ValueError(
                f"{out_dir} holds a synthetic corpus made with other settings ({path}); "
                "choose another --out, or delete the folder to regenerate"
            )
    elif out_dir.exists() and any(p.name != ".partial" for p in out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty and has no {MANIFEST_NAME}; choose an empty or new --out folder")


def generate_corpus(out_dir: str | Path, config: SynthConfig | None = None, *, progress: bool = False,
                    preprocess=None) -> dict:
    """Generate (or finish) a synthetic corpus in the AIHub layout.

    Sessions already on disk are kept, so an interrupted run resumes and a repeated run does nothing.

    Args:
        out_dir: folder to write; empty, new, or holding a corpus made with the same settings. With
            ``output="crops"`` the crops go to ``crops_dir(out_dir)``.
        config: what to generate; ``SynthConfig()`` is the default corpus.
        progress: show a tqdm progress bar.
        preprocess: the ``PreprocessConfig`` of the crops (``output="crops"``); default ``PreprocessConfig()``.
            The crops are not part of the cache key: with another config, sessions are rendered again.

    Returns:
        A summary dict: ``out``, ``crops`` (folder or None), ``sessions``, ``written``, ``skipped``,
        ``sentences``, ``clips`` (per split), ``frames`` (rendered this run), ``seconds``,
        ``frames_per_second``, ``train_speakers``, ``test_speakers`` (unseen speakers).

    Raises:
        ValueError: ``out_dir`` holds something else, no face photo is usable, or a sentence pool is empty.
    """
    config = config or SynthConfig()
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # frames are small: OpenCV's own threads cost more than they give (workers set it too)
    try:
        return _generate(out_dir, config, progress, t0, preprocess)
    finally:
        cv2.setNumThreads(threads)


def _generate(out_dir: Path, config: SynthConfig, progress: bool, t0: float, preprocess) -> dict:
    faces, face_info, num_train = load_faces(config)
    plans = plan_corpus(config, (num_train, len(faces) - num_train))
    speakers = list({p.speaker.speaker_id: p.speaker for p in plans}.values())
    test_speakers = [s.speaker_id for s in speakers if s.held_out]
    manifest = {
        "generator": "lipnet-ko synth",
        "note": "synthetic: real face photographs with warped mouths driven by Korean viseme classes; not real speech",
        "config": config.cache_key(),
        "faces": face_info,
        "train_speakers": [s.speaker_id for s in speakers if not s.held_out],
        "test_speakers": test_speakers,
        "speakers": [dataclasses.asdict(s) for s in speakers],
    }
    _check_manifest(out_dir, manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / MANIFEST_NAME, manifest)
    results = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plans), unit="session", desc="synth")
    if config.jobs == 1:
        cache: dict = {}
        for plan in plans:
            results.append(_session(plan, faces, config, out_dir, preprocess, cache))
            if bar:
                bar.update()
    else:
        with ProcessPoolExecutor(config.jobs, initializer=_init_worker, initargs=(faces, config, out_dir, preprocess)) as pool:
            for result in pool.map(_work, plans, chunksize=4):
                results.append(result)
                if bar:
                    bar.update()
    if bar:
        bar.close()
    shutil.rmtree(out_dir / ".partial", ignore_errors=True)
    counts = _write_split(out_dir, plans, test_speakers, config, face_info)
    seconds = time.perf_counter() - t0
    frames = sum(r["frames"] for r in results)
    return {
        "out": str(out_dir),
        "crops": str(crops_dir(out_dir)) if config.output == "crops" else None,
        "sessions": len(plans),
        "written": sum(not r["skipped"] for r in results),
        "skipped": sum(r["skipped"] for r in results),
        "sentences": sum(r["sentences"] for r in results),
        "clips": counts,
        "frames": frames,
        "seconds": round(seconds, 2),
        "frames_per_second": round(frames / seconds, 1) if frames else None,
        "train_speakers": len(manifest["train_speakers"]),
        "test_speakers": len(test_speakers),
    }


def _write_split(out_dir: Path, plans: list[SessionPlan], test_speakers: list[str], config: SynthConfig,
                 face_info: list[dict]) -> dict[str, int]:  # fmt: skip
    """split.json in the format of ``lipnet_ko.data.corpora.write_split``: the four SPLITS; returns their sizes."""
    from lipnet_ko.data.corpora import scan, write_split

    result = scan(f"synthetic:{out_dir}")
    split_of = {p.stem: p.split for p in plans}
    split = {name: [] for name in SPLITS}
    for clip in result.clips:
        split[split_of[clip.clip_id.rsplit("_", 1)[0]]].append(clip)
    held_photos = [f["sha256"] for f in face_info if f["held_out"]]
    write_split(out_dir / SPLIT_NAME, split, spec=f"synthetic:{out_dir}", by="synth-v4", held_out=test_speakers,
                held_out_photos=held_photos, seed=config.seed)  # fmt: skip
    return {name: len(clips) for name, clips in split.items()}


# ---------------------------------------------------------------- preview


def write_preview(out_dir: str | Path, config: SynthConfig | None = None, *, speakers: int = 48, columns: int = 12) -> list[Path]:
    """A contact sheet and a GIF of the corpus for a person to look at; needs no video (any output mode).

    ``preview.png``: one row per viseme class target of the first speaker (with the class name), then
    one tile per speaker for the first ``speakers`` training speakers and every unseen speaker (marked
    ``*``), each a mid-sentence frame of their first session rendered as the corpus renders it (pose and
    camera included). ``preview.gif``: the first sentence of the first speaker at the corpus frame rate.

    Returns:
        The paths written.
    """
    from lipnet_ko.text.visemes import MOUTH_SHAPES, REST_SHAPE

    config = config or SynthConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    faces, _, num_train = load_faces(config)
    plans = plan_corpus(config, (num_train, len(faces) - num_train))
    firsts = list({p.speaker.speaker_id: p for p in plans}.values())
    shown = [p for p in firsts if not p.speaker.held_out][:speakers] + [p for p in firsts if p.speaker.held_out]
    renderer = FaceRenderer(speaker_face(shown[0].speaker, faces, config.seed), shown[0].speaker.style)
    gallery = []
    for name, shape in [("rest", REST_SHAPE), *MOUTH_SHAPES.items()]:
        image = renderer.render(np.array(shape.astuple()))[0].copy()
        cv2.putText(image, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        gallery.append(image)
    tiles, gif_frames = [], None
    for plan in shown:
        single = dataclasses.replace(plan, texts=plan.texts[:1])
        frames, label = render_session(single, speaker_face(plan.speaker, faces, config.seed), config)
        first, last = sentence_frames(label)[0]
        keep = np.zeros(int(round(label["Video_info"]["video_Duration"] * config.fps)), bool)
        if gif_frames is None:
            keep[first:last] = True
            gif_frames = [f for f in frames(keep) if f is not None]
            image = gif_frames[len(gif_frames) // 2].copy()
        else:
            keep[(first + last) // 2] = True
            image = next(f for f in frames(keep) if f is not None).copy()
        mark = "*" if plan.speaker.held_out else ""
        cv2.putText(image, f"{plan.speaker.speaker_id}{mark}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
        tiles.append(image)
    rows = [gallery[i:i + columns] for i in range(0, len(gallery), columns)]
    rows += [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    blank = np.zeros((config.frame_size, config.frame_size, 3), np.uint8)
    sheet = np.concatenate([np.concatenate(row + [blank] * (columns - len(row)), axis=1) for row in rows], axis=0)
    paths = [out_dir / "preview.png"]
    if not cv2.imwrite(str(paths[0]), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {paths[0]}")
    if gif_frames:
        from PIL import Image

        pictures = [Image.fromarray(f) for f in gif_frames]
        paths.append(out_dir / "preview.gif")
        pictures[0].save(paths[1], save_all=True, append_images=pictures[1:], duration=int(1000 / config.fps), loop=0)
    return paths


# ---------------------------------------------------------------- CLI: lipnet-ko synth


def configure_parser(parser) -> None:
    defaults = SynthConfig()
    parser.add_argument("--out", required=True, help="folder to write (new, empty, or a corpus made with the same options)")
    parser.add_argument("--speakers", type=int, default=defaults.speakers, help="training speakers (identities)")
    parser.add_argument("--sentences", type=int, default=defaults.sentences, help="'train' sentences per training speaker")
    parser.add_argument("--val-sentences", type=int, default=defaults.val_sentences, help="'val' sentences per training speaker")
    parser.add_argument("--unseen-sentences", type=int, default=defaults.unseen_sentences,
                        help="'unseen_sentences' (test-pool sentences) per training speaker")  # fmt: skip
    parser.add_argument("--held-out-speakers", type=int, default=defaults.held_out_speakers,
                        help="unseen speakers, made from the held-out photos only (ids after the training speakers)")  # fmt: skip
    parser.add_argument("--unseen-speaker-sentences", type=int, default=defaults.unseen_speaker_sentences,
                        help="'unseen_speakers' sentences per held-out speaker")  # fmt: skip
    parser.add_argument("--sentences-per-session", type=int, default=defaults.sentences_per_session,
                        help="sentences per session (one label file, one video)")  # fmt: skip
    parser.add_argument("--sentence-set", choices=SENTENCE_SETS, default=defaults.sentence_set,
                        help="open = the sentence pool's train/val/test splits (default); "
                             "grammar = the command grammar")  # fmt: skip
    parser.add_argument("--max-syllables", type=int, default=defaults.max_syllables,
                        help="leave out pool sentences longer than this (characters but spaces)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--faces", default=None,
                        help="face photo or folder of photos (default: scikit-image's astronaut.png for training, "
                             "matplotlib's grace_hopper.jpg held out)")  # fmt: skip
    parser.add_argument("--held-out-photos", type=int, default=defaults.held_out_photos,
                        help="the last N photos make only unseen speakers")  # fmt: skip
    parser.add_argument("--no-mirror", action="store_true", help="do not also use each face flipped left-right")
    parser.add_argument("--frame-size", type=int, default=defaults.frame_size, help="px, square frames")
    parser.add_argument("--output", choices=OUTPUTS, default="video",
                        help="video = mp4 per session (default); crops = mouth crops straight into OUT-crops/ "
                             "(what lipnet-ko preprocess would write), no video: the fast path training uses")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 8), help="worker processes")
    parser.add_argument("--preview", action="store_true", help="also write preview.png (contact sheet) and preview.gif")


def _fail(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


# What a user can fix (settings, files, a missing install: dlib, OpenCV's mp4 writer); anything else is a bug.
_USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError, NotImplementedError)


def run(args) -> int:
    """``lipnet-ko synth``: the summary goes to standard output, every error to standard error (exit code 2)."""
    try:
        config = SynthConfig(
            speakers=args.speakers, sentences=args.sentences, val_sentences=args.val_sentences,
            unseen_sentences=args.unseen_sentences, held_out_speakers=args.held_out_speakers,
            unseen_speaker_sentences=args.unseen_speaker_sentences, sentences_per_session=args.sentences_per_session,
            sentence_set=args.sentence_set, max_syllables=args.max_syllables, seed=args.seed, faces=args.faces,
            held_out_photos=args.held_out_photos, mirror_faces=not args.no_mirror, frame_size=args.frame_size,
            output=args.output, jobs=args.jobs,
        )  # fmt: skip
        summary = generate_corpus(args.out, config, progress=True)
    except _USER_ERRORS as error:
        return _fail(error)
    print(json.dumps(summary, ensure_ascii=False))
    clips = ", ".join(f"{name} {n}" for name, n in summary["clips"].items())
    where = f" (crops in {summary['crops']})" if summary["crops"] else ""
    print(f"{summary['sentences']} sentences in {summary['sessions']} sessions ({summary['written']} written, "
          f"{summary['skipped']} already there) in {summary['seconds']:.1f} s -> {summary['out']}{where}; "
          f"splits: {clips} (see {SPLIT_NAME})")  # fmt: skip
    if args.preview:
        try:
            paths = write_preview(args.out, config)
        except (*_USER_ERRORS, OSError) as error:
            return _fail(error)
        for path in paths:
            print(f"preview: {path}")
    return 0
