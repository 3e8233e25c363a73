"""Synthetic Korean speaking-face corpus: ``lipnet-ko synth`` and :func:`generate_corpus`.

No real Korean lip video can be fetched where this project is developed, so it makes its own: real
face photographs (scikit-image's ``astronaut.png`` by default, or the user's ``--faces``) whose
mouths move with the jamo of Korean sentences. This module owns the corpus: the synthetic speakers
(each a random draw of mouth proportions, lip colour, lighting, head pose drift and jitter, camera
noise and compression, speaking rate and articulation strength, all from the seed), which sentences
each one says, and the files. Mouth motion comes from :mod:`lipnet_ko.synth.articulation`, pixels from
:mod:`lipnet_ko.synth.face`, the one-time face fit from :mod:`lipnet_ko.video.landmarks` (dlib).

The output uses the AIHub/OLKAVS layout, so ``synthetic:DIR`` goes through the same reader
(:func:`lipnet_ko.data.corpora.scan`), preprocessing and training as real data::

    DIR/synth.json                               the generation settings (the cache key) and the speakers
    DIR/split.json                               train/test clip ids, unseen speakers held out (corpora.read_split)
    DIR/C001/lip_J_{noise}_{F|M}_{age}_C001_A_001.mp4   one video per session of several sentences
    DIR/C001/lip_J_..._C001_A_001.json           AIHub label: Sentence_info times, per-frame face and lip boxes

Boxes are stored in the order real OLKAVS files use, ``[y_top, x_left, y_bottom, x_right]``. The
last ``held_out_speakers`` speaker ids are the unseen speakers (``split.json`` lists them). Every
label says ``"synthetic": true``. The same settings and seed give byte-identical labels and
identical frames; re-running over a finished corpus does nothing.
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
from lipnet_ko.files import write_json_atomic
from lipnet_ko.text.sentences import load_free_sentences, load_grammar, split_free_sentences
from lipnet_ko.text.tokenizer import JamoTokenizer

log = logging.getLogger(__name__)

# Bump when the same settings would render different files; part of the cache key and of the default folder
# name, so a corpus of an older version is never mixed in. What each version changed: data/synth/README.md.
SYNTH_VERSION = 3
MANIFEST_NAME = "synth.json"
SPLIT_NAME = "split.json"
SENTENCE_SETS = ("mixed", "grammar", "free-train", "free-test")
FREE_HELD_OUT_SHARE = 0.2  # share of the free sentences kept out of training (split_free_sentences, seed 0)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
LIP_BOX_MARGIN = 0.12  # lip box = outer-lip landmarks' box plus this share of the mouth width on each side
FACE_BOX_MARGIN = 0.05  # face box = all landmarks' box plus this share of its width on each side
NOISE_BANK = 8  # noise patterns drawn per session, cycled over its frames
HELD_OUT_SHARE = 0.2  # share of the speakers held out as unseen speakers when the count is not given (8 of 40)


@dataclass(frozen=True)
class SynthConfig:
    """What corpus to generate. Everything but ``jobs`` is part of the cache key (``synth.json``)."""

    speakers: int = 40  # synthetic speakers, ids C001, C002, ...
    sentences: int = 48  # sentences per speaker (the default corpus: 40 x 48 = 1,920 sentences)
    sentences_per_session: int = 8  # sentences per video file
    held_out_speakers: int = 8  # the last speaker ids, never in split.json's "train" (default_held_out_speakers(40))
    sentence_set: str = "mixed"  # mixed (grammar + free-train) | grammar | free-train | free-test
    free_share: float = 0.15  # in "mixed": share of sentences taken from the training free sentences
    seed: int = 0
    faces: str | None = None  # folder of face photos; None = scikit-image's astronaut.png
    mirror_faces: bool = True  # also use every face flipped left-right (twice the identities)
    frame_size: int = 160  # px, square frames
    face_share: float = 0.6  # jaw width as a share of the frame width (96 px: dlib's HOG detector finds it)
    fps: float = FPS
    # Number of the first session in the file names. The free-sentence test corpus starts at 101, so its
    # clip ids never equal the main corpus's (same speakers, same naming scheme).
    first_session: int = 1
    # Frames of rest between two sentences of a session, drawn in [low, high). Longer pauses make test
    # videos for utterance segmentation (the mouth rests while the head and the camera go on).
    pause_frames: tuple[int, int] = (2, 8)
    jobs: int = 1  # worker processes; not part of the cache key

    def __post_init__(self) -> None:
        for name in ("speakers", "sentences", "sentences_per_session", "frame_size", "first_session", "jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"SynthConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.held_out_speakers < self.speakers:
            raise ValueError(
                f"SynthConfig.held_out_speakers ({self.held_out_speakers}) must be >= 0 and leave at least one "
                f"training speaker of {self.speakers}"
            )
        if self.sentence_set not in SENTENCE_SETS:
            raise ValueError(f"SynthConfig.sentence_set must be one of {', '.join(SENTENCE_SETS)}, got {self.sentence_set!r}")
        object.__setattr__(self, "pause_frames", tuple(int(n) for n in self.pause_frames))  # JSON gives a list
        if len(self.pause_frames) != 2 or not 1 <= self.pause_frames[0] < self.pause_frames[1]:
            raise ValueError(f"SynthConfig.pause_frames must be (low, high) with 1 <= low < high, got {self.pause_frames}")
        if not 0.0 <= self.free_share <= 1.0:
            raise ValueError(f"SynthConfig.free_share must be in [0, 1], got {self.free_share}")
        if not 0.2 <= self.face_share <= 0.9:
            raise ValueError(f"SynthConfig.face_share must be in [0.2, 0.9], got {self.face_share}")
        if self.frame_size * self.face_share < 90:
            raise ValueError(
                f"faces would be {self.frame_size * self.face_share:.0f} px wide (frame_size x face_share); dlib's "
                "detector needs about 90 px or more: raise frame_size or face_share"
            )

    @property
    def sessions_per_speaker(self) -> int:
        return math.ceil(self.sentences / self.sentences_per_session)

    def cache_key(self) -> dict:
        """The settings that decide the files: all fields but ``jobs``, plus the generator version."""
        key = dataclasses.asdict(self)
        del key["jobs"]
        if key["first_session"] == 1:  # corpora made before the field existed keep their key
            del key["first_session"]
        if key["pause_frames"] == (2, 8):  # the same
            del key["pause_frames"]
        else:
            key["pause_frames"] = list(key["pause_frames"])  # as JSON reads it back
        return {"version": SYNTH_VERSION, **key}


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: identity for the file names, and everything that makes them look different."""

    speaker_id: str  # "C001"
    gender: str  # "F" or "M" (file name field only; the face photo decides what is seen)
    age: int
    face: int  # index into the corpus's faces
    noise_level: int  # 1-6, the AIHub file-name field, here the camera noise level
    rate: float  # speaking rate, 1 = articulation.DURATIONS_S
    strength: float  # articulation strength (how far from rest each target is reached)
    coarticulation: float  # seconds of dominance decay (slurring)
    style: FaceStyle
    camera: CameraStyle
    pose: tuple[float, ...]  # angle deg, scale, dx px, dy px: the speaker's mean head pose
    drift: tuple[float, ...]  # amplitude of the slow head motion: angle deg, scale, dx px, dy px
    jitter: float  # px, per-frame shake


def default_held_out_speakers(speakers: int) -> int:
    """How many of ``speakers`` to hold out as unseen speakers when the count is not given.

    :data:`HELD_OUT_SHARE` of them, rounded, but at least one and leaving at least one training speaker;
    none for a single speaker. The default 40 speakers give 8.
    """
    if speakers < 2:
        return 0
    return min(max(1, round(speakers * HELD_OUT_SHARE)), speakers - 1)


def speaker_id(index: int) -> str:
    """1-based speaker index -> ``"C001"``."""
    return f"C{index:03d}"


def sample_speaker(index: int, seed: int, num_faces: int, frame_size: int) -> Speaker:
    """The ``index``-th (1-based) speaker of a corpus, drawn from ``seed`` alone (adding speakers keeps the others)."""
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
        lip_rgb=(float(rng.uniform(0.95, 1.25)), float(rng.uniform(0.7, 0.95)), float(rng.uniform(0.75, 1.0))),
        teeth_shade=float(rng.uniform(0.8, 1.05)),
        side_light=float(rng.uniform(-0.25, 0.25)),
    )
    return Speaker(
        speaker_id=speaker_id(index),
        gender=str(rng.choice(["F", "M"])),
        age=int(rng.integers(20, 70)),
        face=(index - 1) % num_faces,
        noise_level=1 + int(np.searchsorted([0.5, 1.5, 3.0, 4.5, 6.0], noise)),
        rate=float(rng.uniform(0.8, 1.25)),
        strength=float(rng.uniform(1.0, 1.35)),  # careful read speech, as GRID speakers articulate
        coarticulation=float(rng.uniform(0.025, 0.035)),
        style=style,
        camera=camera,
        pose=(float(rng.normal(0, 3.0)), float(rng.uniform(0.95, 1.06)),
              float(rng.normal(0, 0.025 * frame_size)), float(rng.normal(0, 0.025 * frame_size))),  # fmt: skip
        drift=(float(rng.uniform(0.5, 3.0)), float(rng.uniform(0.0, 0.03)),
               float(rng.uniform(0.0, 0.025 * frame_size)), float(rng.uniform(0.0, 0.02 * frame_size))),  # fmt: skip
        jitter=float(rng.uniform(0.0, 0.5)),
    )


def free_sentence_pool(sentence_set: str) -> list[str]:
    """The free sentences a sentence set may draw from (the grammar is sampled, not listed).

    ``mixed`` and ``free-train`` use the training part of ``split_free_sentences(load_free_sentences(),
    0.2, seed=0)``; ``free-test`` only the held-out part, which therefore never reaches a training
    corpus; ``grammar`` none.
    """
    if sentence_set == "grammar":
        return []
    free_train, free_test = split_free_sentences(load_free_sentences(), FREE_HELD_OUT_SHARE, seed=0)
    return free_test if sentence_set == "free-test" else free_train


def fits_ctc(text: str, num_frames: int, tokenizer: JamoTokenizer | None = None) -> bool:
    """True when CTC can align the jamo label of ``text`` to ``num_frames`` frames.

    CTC needs one frame per label token plus one blank between each pair of repeated tokens.
    """
    ids = (tokenizer or JamoTokenizer()).encode(text)
    repeats = sum(1 for a, b in zip(ids, ids[1:]) if a == b)
    return len(ids) + repeats < num_frames


@dataclass(frozen=True)
class SessionPlan:
    """One video file to write."""

    speaker: Speaker
    session: int  # the number in the file name, from SynthConfig.first_session
    num_sentences: int

    @property
    def stem(self) -> str:
        s = self.speaker
        return f"lip_J_{s.noise_level}_{s.gender}_{s.age:02d}_{s.speaker_id}_A_{self.session:03d}"


def plan_corpus(config: SynthConfig, num_faces: int) -> list[SessionPlan]:
    """Every session of the corpus, speaker by speaker."""
    plans = []
    for index in range(1, config.speakers + 1):
        speaker = sample_speaker(index, config.seed, num_faces, config.frame_size)
        left = config.sentences
        for session in range(config.first_session, config.first_session + config.sessions_per_speaker):
            count = min(config.sentences_per_session, left)
            plans.append(SessionPlan(speaker, session, count))
            left -= count
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


def _sentence_source(config: SynthConfig):
    grammar = load_grammar()
    free = free_sentence_pool(config.sentence_set)
    use_grammar = config.sentence_set in ("mixed", "grammar")
    share = {"mixed": config.free_share, "grammar": 0.0}.get(config.sentence_set, 1.0)

    def draw(rng: np.random.Generator) -> tuple[str, str]:
        if free and (not use_grammar or rng.random() < share):
            return free[int(rng.integers(len(free)))], "free"
        return grammar.sample(rng, 1)[0], "grammar"

    return draw


def _box(points: np.ndarray, margin: float, size: int) -> list[float]:
    """[y_top, x_left, y_bottom, x_right] around points, widened by ``margin`` x width, inside the frame."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = margin * float(hi[0] - lo[0])
    x0, y0 = max(0.0, float(lo[0]) - pad), max(0.0, float(lo[1]) - pad)
    x1, y1 = min(size - 1.0, float(hi[0]) + pad), min(size - 1.0, float(hi[1]) + pad)
    return [round(y0, 1), round(x0, 1), round(y1, 1), round(x1, 1)]


def render_session(plan: SessionPlan, face: Face, config: SynthConfig):
    """Frames and label of one session video.

    Returns:
        ``(frames, label)``: frames is a generator of uint8 [H, W, 3] RGB frames (render on demand, so
        a session never sits in memory); label is the AIHub JSON record (a dict), complete once the
        generator is exhausted (the boxes are filled in as frames are made).
    """
    speaker = plan.speaker
    rng = np.random.default_rng([config.seed, int(speaker.speaker_id[1:]), plan.session, 2])
    draw = _sentence_source(config)
    tokenizer = JamoTokenizer()
    fps = config.fps
    tracks, sentences = [rest_params(int(rng.integers(4, 10)))], []
    frame = tracks[0].shape[0]
    for number in range(1, plan.num_sentences + 1):
        for _ in range(50):
            text, topic = draw(rng)
            motion = articulate(text, rate=speaker.rate, strength=speaker.strength, coarticulation=speaker.coarticulation,
                                rng=rng, lead_in=float(rng.uniform(0.16, 0.32)), lead_out=float(rng.uniform(0.16, 0.32)),
                                fps=fps)  # fmt: skip
            if fits_ctc(text, motion.num_frames, tokenizer):
                break
        else:
            raise RuntimeError(f"no sentence of set {config.sentence_set!r} fits a CTC clip at rate {speaker.rate:.2f}")
        sentences.append({"ID": number, "topic": topic, "sentence_text": text, "start_time": round(frame / fps, 4),
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
                         "synthetic": True, "face": face.name},  # fmt: skip
        "Bounding_box_info": {"Face_bounding_box": {"xtl_ytl_xbr_ybr": face_boxes},
                              "Lip_bounding_box": {"xtl_ytl_xbr_ybr": lip_boxes}},  # fmt: skip
        "synthetic": {"generator": "lipnet-ko synth", "version": SYNTH_VERSION, "seed": config.seed,
                      "box_order": "y_top, x_left, y_bottom, x_right"},  # fmt: skip
    }

    def frames():
        renderer = FaceRenderer(face, speaker.style)
        last_key, last = None, None
        for k in range(len(params)):
            key = params[k].tobytes()
            if key != last_key:  # rests repeat the same parameters
                last_key, last = key, renderer.render(params[k])
            image, landmarks = last
            matrix = pose_matrix(poses[k, 0], poses[k, 1], (poses[k, 2], poses[k, 3]), (size, size))
            points = transform_points(landmarks, matrix)
            lip_boxes.append(_box(points[48:60], LIP_BOX_MARGIN, size))
            face_boxes.append(_box(points, FACE_BOX_MARGIN, size))
            yield apply_camera(image, matrix, speaker.camera, noise[noise_order[k]])

    return frames(), label


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
    tmp_video, tmp_label = partial / f"{plan.stem}.mp4", partial / f"{plan.stem}.json"
    frames, label = render_session(plan, face, config)
    size = config.frame_size
    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), config.fps, (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4 ({tmp_video}); reinstall opencv-python-headless, which bundles FFmpeg")
    count = 0
    try:
        for image in frames:
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        writer.release()
    tmp_label.write_text(json.dumps([label], ensure_ascii=False), encoding="utf-8")
    os.replace(tmp_video, video)
    os.replace(tmp_label, label_path)  # the label last: a session counts as done once its label exists
    return {"stem": plan.stem, "frames": count, "sentences": plan.num_sentences, "skipped": False}


def default_face_path() -> Path:
    """scikit-image's ``data/astronaut.png`` (Eileen Collins, NASA, public domain), found without importing skimage."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the default face photo comes with scikit-image: pip install scikit-image, or pass --faces DIR")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "astronaut.png"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall scikit-image or pass --faces DIR")
    return path


def face_paths(faces: str | None) -> list[Path]:
    """The photos a ``faces`` setting names: the default photo, an image file, or the images in a folder."""
    if faces is None:
        return [default_face_path()]
    path = Path(faces)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"--faces {faces}: no such file or folder")
    paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(f"--faces {faces}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
    return paths


def load_faces(config: SynthConfig) -> tuple[list[Face], list[dict]]:
    """Fit every face photo once with dlib and crop it to the frame.

    Returns:
        ``(faces, info)``: the faces (each followed by its mirror image when ``mirror_faces``), and per
        photo ``{"name", "sha256", "used"}`` for the manifest.

    Raises:
        ValueError: when no photo has a face that dlib still finds after cropping.
    """
    from lipnet_ko.video.landmarks import detect_landmarks_naive, load_models

    detector, _ = load_models()
    faces, info = [], []
    for path in face_paths(config.faces):
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
                    faces += [face, mirror_face(face)] if config.mirror_faces else [face]
                    used = True
        info.append({"name": path.name, "sha256": digest, "used": used})
    if not faces:
        raise ValueError(
            f"no usable face photo in {config.faces or default_face_path()}: each needs one frontal face dlib can find"
        )
    return faces, info


_WORKER: dict = {}


def _init_worker(faces: list[Face], config: SynthConfig, out_dir: Path) -> None:
    cv2.setNumThreads(1)
    _WORKER.update(faces=faces, config=config, out_dir=out_dir)


def _work(plan: SessionPlan) -> dict:
    return write_session(plan, _WORKER["faces"][plan.speaker.face], _WORKER["config"], _WORKER["out_dir"])


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


def generate_corpus(out_dir: str | Path, config: SynthConfig | None = None, *, progress: bool = False) -> dict:
    """Generate (or finish) a synthetic corpus in the AIHub layout.

    Sessions already on disk are kept, so an interrupted run resumes and a repeated run does nothing.

    Args:
        out_dir: folder to write; empty, new, or holding a corpus made with the same settings.
        config: what to generate; ``SynthConfig()`` is the default corpus.
        progress: show a tqdm progress bar.

    Returns:
        A summary dict: ``out``, ``sessions``, ``written``, ``skipped``, ``sentences``, ``frames``
        (rendered this run), ``seconds``, ``frames_per_second``, ``train_speakers``, ``test_speakers``.

    Raises:
        ValueError: ``out_dir`` holds something else, or no face photo is usable.
    """
    config = config or SynthConfig()
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # frames are small: OpenCV's own threads cost more than they give (workers set it too)
    try:
        return _generate(out_dir, config, progress, t0)
    finally:
        cv2.setNumThreads(threads)


def _generate(out_dir: Path, config: SynthConfig, progress: bool, t0: float) -> dict:
    faces, face_info = load_faces(config)
    plans = plan_corpus(config, len(faces))
    speakers = [p.speaker for p in plans if p.session == config.first_session]
    held_out = speakers[len(speakers) - config.held_out_speakers:] if config.held_out_speakers else []
    test_speakers = [s.speaker_id for s in held_out]
    manifest = {
        "generator": "lipnet-ko synth",
        "note": "synthetic: real face photographs with warped mouths driven by Korean viseme classes; not real speech",
        "config": config.cache_key(),
        "faces": face_info,
        "train_speakers": [s.speaker_id for s in speakers if s.speaker_id not in test_speakers],
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
        for plan in plans:
            results.append(write_session(plan, faces[plan.speaker.face], config, out_dir))
            if bar:
                bar.update()
    else:
        with ProcessPoolExecutor(config.jobs, initializer=_init_worker, initargs=(faces, config, out_dir)) as pool:
            for result in pool.map(_work, plans):
                results.append(result)
                if bar:
                    bar.update()
    if bar:
        bar.close()
    shutil.rmtree(out_dir / ".partial", ignore_errors=True)
    _write_split(out_dir, test_speakers, config)
    seconds = time.perf_counter() - t0
    frames = sum(r["frames"] for r in results)
    return {
        "out": str(out_dir),
        "sessions": len(plans),
        "written": sum(not r["skipped"] for r in results),
        "skipped": sum(r["skipped"] for r in results),
        "sentences": sum(r["sentences"] for r in results),
        "frames": frames,
        "seconds": round(seconds, 2),
        "frames_per_second": round(frames / seconds, 1) if frames else None,
        "train_speakers": len(manifest["train_speakers"]),
        "test_speakers": len(test_speakers),
    }


def _write_split(out_dir: Path, test_speakers: list[str], config: SynthConfig) -> None:
    """split.json in the format of ``lipnet_ko.data.corpora.write_split``: unseen speakers in "test"."""
    from lipnet_ko.data.corpora import scan, split_by_speaker, write_split

    result = scan(f"synthetic:{out_dir}")
    if test_speakers:
        split = split_by_speaker(result.clips, test_speakers)
    else:
        split = {"train": list(result.clips), "test": []}
    write_split(out_dir / SPLIT_NAME, split, spec=f"synthetic:{out_dir}", by="speaker", held_out=test_speakers, seed=config.seed)


# ---------------------------------------------------------------- preview


def write_preview(out_dir: str | Path, config: SynthConfig | None = None, *, speakers: int = 4, columns: int = 12) -> list[Path]:
    """A contact sheet and a GIF of the corpus for a person to look at.

    ``preview.png``: one row per viseme class target of the first speaker (rendered directly, with
    the class name), then, for the first ``speakers`` speakers, frames across the first sentence of
    their first video as written (compression included). ``preview.gif``: that first sentence of
    the first speaker at 25 fps.

    Returns:
        The paths written.
    """
    from lipnet_ko.video.reader import read_frames
    from lipnet_ko.text.visemes import MOUTH_SHAPES, REST_SHAPE

    config = config or SynthConfig()
    out_dir = Path(out_dir)
    faces, _ = load_faces(config)
    plans = [p for p in plan_corpus(config, len(faces)) if p.session == config.first_session][:speakers]
    tile = config.frame_size
    renderer = FaceRenderer(faces[plans[0].speaker.face], plans[0].speaker.style)
    gallery = []
    for name, shape in [("rest", REST_SHAPE), *MOUTH_SHAPES.items()]:
        image, _ = renderer.render(np.array(shape.astuple()))
        image = image.copy()
        cv2.putText(image, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        gallery.append(image)
    rows = [gallery[i:i + columns] for i in range(0, len(gallery), columns)]
    gif_frames = None
    for plan in plans:
        stem = out_dir / plan.speaker.speaker_id / plan.stem
        label = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))[0]
        first = label["Sentence_info"][0]
        video = read_frames(stem.with_suffix(".mp4"), first["start_time"], first["end_time"])
        if gif_frames is None:
            gif_frames = video.frames
        picks = np.linspace(0, len(video.frames) - 1, columns).round().astype(int)
        row = []
        for k in picks:
            image = video.frames[k].copy()
            cv2.putText(image, f"{plan.speaker.speaker_id} f{k}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1,
                        cv2.LINE_AA)  # fmt: skip
            row.append(image)
        rows.append(row)
    blank = np.zeros((tile, tile, 3), np.uint8)
    sheet = np.concatenate([np.concatenate(row + [blank] * (columns - len(row)), axis=1) for row in rows], axis=0)
    paths = [out_dir / "preview.png"]
    cv2.imwrite(str(paths[0]), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if gif_frames is not None:
        from PIL import Image

        images = [Image.fromarray(f) for f in gif_frames]
        paths.append(out_dir / "preview.gif")
        images[0].save(paths[1], save_all=True, append_images=images[1:], duration=int(1000 / config.fps), loop=0)
    return paths


# ---------------------------------------------------------------- CLI: lipnet-ko synth


def configure_parser(parser) -> None:
    defaults = SynthConfig()
    parser.add_argument("--out", required=True, help="folder to write (new, empty, or a corpus made with the same options)")
    parser.add_argument("--speakers", type=int, default=defaults.speakers, help="number of synthetic speakers")
    parser.add_argument("--sentences", type=int, default=defaults.sentences, help="sentences per speaker")
    parser.add_argument("--sentences-per-session", type=int, default=defaults.sentences_per_session,
                        help="sentences per video file")  # fmt: skip
    parser.add_argument("--held-out-speakers", type=int, default=None,
                        help=f"the last N speakers are unseen speakers (split.json 'test'); default: "
                             f"{HELD_OUT_SHARE * 100:.0f}%% of --speakers, at least 1 and leaving 1 for training "
                             f"({defaults.held_out_speakers} of {defaults.speakers}; none of 1)")  # fmt: skip
    parser.add_argument("--sentence-set", choices=SENTENCE_SETS, default=defaults.sentence_set,
                        help="mixed = grammar + training free sentences (default); "
                             "free-test = the held-out free sentences, for evaluation only")  # fmt: skip
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--faces", default=None, help="face photo or folder of photos (default: scikit-image's astronaut.png)")
    parser.add_argument("--no-mirror", action="store_true", help="do not also use each face flipped left-right")
    parser.add_argument("--frame-size", type=int, default=defaults.frame_size, help="px, square frames")
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 8), help="worker processes")
    parser.add_argument("--preview", action="store_true", help="also write preview.png (contact sheet) and preview.gif")


def _fail(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


# What a user can fix (settings, files, a missing install: dlib, OpenCV's mp4 writer); anything else is a bug.
_USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError)


def run(args) -> int:
    """``lipnet-ko synth``: the summary goes to standard output, every error to standard error (exit code 2)."""
    held_out = args.held_out_speakers
    if held_out is None:
        held_out = default_held_out_speakers(args.speakers)
        if args.speakers == 1:
            log.warning("one speaker: no unseen speaker is held out (split.json 'test' is empty)")
    try:
        config = SynthConfig(
            speakers=args.speakers, sentences=args.sentences, sentences_per_session=args.sentences_per_session,
            held_out_speakers=held_out, sentence_set=args.sentence_set, seed=args.seed,
            faces=args.faces, mirror_faces=not args.no_mirror, frame_size=args.frame_size, jobs=args.jobs,
        )  # fmt: skip
        summary = generate_corpus(args.out, config, progress=True)
    except _USER_ERRORS as error:
        return _fail(error)
    unseen = f"the last {summary['test_speakers']}" if summary["test_speakers"] else "none"
    print(json.dumps(summary, ensure_ascii=False))
    print(f"{summary['sentences']} sentences in {summary['sessions']} videos ({summary['written']} written, "
          f"{summary['skipped']} already there) in {summary['seconds']:.1f} s -> {summary['out']}; "
          f"unseen speakers: {unseen} (see {SPLIT_NAME})")  # fmt: skip
    if args.preview:
        try:
            paths = write_preview(args.out, config)
        except _USER_ERRORS as error:
            return _fail(error)
        for path in paths:
            print(f"preview: {path}")
    return 0
