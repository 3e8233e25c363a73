"""Corpus readers: AIHub (OLKAVS), GRID, mouth-crop folders and manifests -> one list of :class:`~lipnet_ko.data.clips.Clip`.

A corpus is named by a spec string, ``KIND:PATH``: ``aihub:DIR``, ``grid:DIR``, ``manifest:FILE``,
``crops:DIR`` (clips that are already mouth crops, LipNet's ``clips/<clip>/mouth_*.png`` + ``labels.csv``;
read by :mod:`lipnet_ko.data.crop_folders`, no face detection)
and ``synthetic:DIR`` (the output of ``lipnet-ko synth``, which uses the AIHub layout). :func:`scan` returns a
:class:`CorpusScan`: the usable clips, every skipped file or sentence with its reason, and for AIHub
which lip-box order was detected. Nothing here decodes video frames.

Also here: speaker-independent and utterance splits, reproducible from a seed and written to JSON so
evaluation uses exactly the clips training left out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from lipnet_ko.data.clips import Clip, ManifestError, normalized_transcript, read_manifest
from lipnet_ko.data.crop_folders import read_crop_corpus
from lipnet_ko.files import write_json_atomic
from lipnet_ko.text.normalize import normalize_english
from lipnet_ko.video.reader import VIDEO_EXTENSIONS, VideoError, find_videos, probe

log = logging.getLogger(__name__)

SPEC_KINDS = ("aihub", "grid", "manifest", "synthetic", "crops")

# lip_{J indoor|K outdoor}_{noise 1-6}_{F|M}_{age}_{C|E}{speaker}_{angle A-I}_{session}, e.g. lip_K_5_M_06_C920_A_001
AIHUB_STEM = re.compile(
    r"^lip_(?P<place>[JK])_(?P<noise>[1-6])_(?P<gender>[FM])_(?P<age>\d+)_(?P<speaker>[CE]\d+)_(?P<angle>[A-I])_(?P<session>\d+)$"
)

# GRID file names spell the sentence: command, colour, preposition, letter, digit, adverb.
GRID_WORDS = (
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    {c: c for c in "abcdefghijklmnopqrstuvxyz"},  # GRID letters (no w)
    {
        "z": "zero",
        "1": "one",
        "2": "two",
        "3": "three",
        "4": "four",
        "5": "five",
        "6": "six",
        "7": "seven",
        "8": "eight",
        "9": "nine",
    },
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
)
MISSING_VIDEO = "video file does not exist"  # skip reason of a manifest clip whose video is not there
EXAMPLES_SHOWN = 3  # paths quoted when many files share one problem

GRID_SILENCE = ("sil", "sp")
GRID_ALIGN_UNITS_PER_SECOND = 25_000  # .align times: 1000 units = one frame at 25 fps


@dataclass
class CorpusScan:
    """What a corpus reader found."""

    spec: str
    clips: list[Clip] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"path": str, "reason": str}
    box_orders: Counter = field(default_factory=Counter)  # AIHub: labels whose lip boxes read as "yxyx" / "xyxy"
    filtered: int = 0  # AIHub: videos left out on purpose by the angle/noise/speaker filters (not failures)
    problem: str = ""  # when no clip was found: what was looked for and what was found instead

    def skip(self, path: str | Path, reason: str, *, log_it: bool = True) -> None:
        self.skipped.append({"path": str(path), "reason": reason})
        if log_it:
            log.warning("skipping %s: %s", path, reason)

    @property
    def missing_videos(self) -> list[str]:
        """Video files that manifest clips name but that do not exist, each once, in manifest order."""
        return list(dict.fromkeys(s["path"] for s in self.skipped if s["reason"] == MISSING_VIDEO))

    @property
    def box_order(self) -> str | None:
        """The lip-box order most labels used ("yxyx" or "xyxy"); None when no boxes were read."""
        return self.box_orders.most_common(1)[0][0] if self.box_orders else None

    @property
    def speakers(self) -> list[str]:
        return sorted({c.speaker for c in self.clips})

    def seconds(self) -> float:
        """Total clip duration: from the time ranges, or the video header for whole-file clips."""
        total = 0.0
        for clip in self.clips:
            if clip.start is not None and clip.end is not None:
                total += clip.end - clip.start
            else:
                try:
                    info = probe(clip.video)
                except VideoError:
                    continue
                total += info.duration - (clip.start or 0.0)
        return total

    def summary(self) -> dict:
        return {
            "spec": self.spec,
            "clips": len(self.clips),
            "speakers": len(self.speakers),
            "seconds": round(self.seconds(), 3),
            "skipped": self.skipped,
            "box_order": self.box_order,
            "box_order_counts": dict(self.box_orders),
            "missing_videos": len(self.missing_videos),
            "filtered_out": self.filtered,
            "problem": self.problem or None,
        }


def parse_spec(spec: str) -> tuple[str, Path]:
    """``"aihub:/data/olkavs"`` -> ``("aihub", Path("/data/olkavs"))``; ValueError naming the kinds otherwise."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in SPEC_KINDS or not path:
        raise ValueError(f"bad data spec {spec!r}: expected KIND:PATH with KIND one of {', '.join(SPEC_KINDS)}")
    return kind, Path(path)


def is_spec(text: str) -> bool:
    kind, sep, path = text.partition(":")
    return bool(sep) and kind in SPEC_KINDS and bool(path)


def scan(spec: str, **options) -> CorpusScan:
    """Read the corpus a spec names. Options go to the reader (e.g. ``angles`` for AIHub)."""
    kind, path = parse_spec(spec)
    if not path.exists():
        raise FileNotFoundError(f"{spec}: {path} does not exist")
    if kind != "manifest" and not path.is_dir():
        raise ValueError(f"{spec}: {path} is a file; {kind}:PATH takes the corpus folder")
    if kind == "aihub":
        return scan_aihub(path, **options)
    if kind == "grid":
        return scan_grid(path, **options)
    if kind == "crops":
        return scan_crops(path, **options)
    if kind == "synthetic":  # `lipnet-ko synth` writes the AIHub layout, every camera angle kept
        result = scan_synthetic(path, **options) if synthetic_output(path) == "crops" else \
            scan_aihub(path, **{"angles": None, **options})  # fmt: skip
        result.spec = spec
        return result
    return scan_manifest(path / "manifest.jsonl" if path.is_dir() else path, spec)


def scan_manifest(manifest: Path, spec: str | None = None) -> CorpusScan:
    """Clips of a manifest whose video files exist; the others are skipped as missing (:data:`MISSING_VIDEO`).

    Raises ValueError when the manifest itself is unreadable or malformed (the message names the line).
    """
    result = CorpusScan(spec or f"manifest:{manifest}")
    try:
        clips = read_manifest(manifest)
    except ManifestError as error:
        raise ValueError(str(error)) from None
    exists: dict[Path, bool] = {}
    for clip in clips:
        if exists.setdefault(clip.video, clip.video.is_file()):
            result.clips.append(clip)
        else:
            result.skip(clip.video, MISSING_VIDEO, log_it=False)  # one warning for all of them, below
    missing = result.missing_videos
    if missing:
        gone = len(clips) - len(result.clips)
        log.warning("skipping %d of %d clips of %s: their %d video files do not exist, e.g. %s",
                    gone, len(clips), manifest, len(missing), ", ".join(missing[:EXAMPLES_SHOWN]))  # fmt: skip
    if not clips:
        result.problem = f"{manifest} has no clip rows"
    elif not result.clips:
        result.problem = (f"every clip of {manifest} names a video that does not exist ({len(missing)} files, e.g. "
                          f"{', '.join(missing[:EXAMPLES_SHOWN])}); relative paths start at the manifest's folder")  # fmt: skip
    return result


def scan_crops(root: Path, *, normalize_options: dict | None = None) -> CorpusScan:
    """Scan a folder of clips that are already mouth crops (``crops:DIR``; the layout: :mod:`lipnet_ko.data.crop_folders`)."""
    found = read_crop_corpus(root, normalize_options=normalize_options)
    result = CorpusScan(f"crops:{root}", clips=found.clips, problem=found.problem)
    for item in found.skipped:
        result.skip(item["path"], item["reason"])
    return result


# ---------------------------------------------------------------- AIHub (OLKAVS)


def detect_box_order(boxes: np.ndarray, width: int, height: int) -> str:
    """Decide whether 4-number boxes are ``[x0, y0, x1, y1]`` ("xyxy") or ``[y0, x0, y1, x1]`` ("yxyx").

    OLKAVS labels name the field ``xtl_ytl_xbr_ybr`` but real files store ``[y_top, x_left, y_bottom,
    x_right]``. An order is possible when every box fits the frame with positive size; when both are
    possible, the one that makes lip boxes wider than tall (as lips are) wins.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def fits(b: np.ndarray) -> bool:  # b as x0, y0, x1, y1
        return bool(np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1]) and np.all(b >= -1)
                    and np.all(b[:, [0, 2]] <= width + 1) and np.all(b[:, [1, 3]] <= height + 1))

    as_xyxy, as_yxyx = boxes, boxes[:, [1, 0, 3, 2]]
    candidates = [name for name, b in (("xyxy", as_xyxy), ("yxyx", as_yxyx)) if fits(b)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ValueError(f"boxes fit the {width}x{height} frame in neither x-y nor y-x order")
    aspect = np.median((as_xyxy[:, 2] - as_xyxy[:, 0]) / (as_xyxy[:, 3] - as_xyxy[:, 1]))
    return "xyxy" if aspect >= 1.0 else "yxyx"


def _parse_resolution(value, where: str) -> tuple[int, int]:
    match = re.match(r"^\s*(\d+)\s*[*xX×,]\s*(\d+)\s*$", str(value))
    if not match:
        raise ValueError(f"{where}: Video_info.Resolution {value!r} is not WIDTHxHEIGHT")
    return int(match.group(1)), int(match.group(2))


def read_aihub_label(
    label_path: Path, video_path: Path, result: CorpusScan, *, normalize_options: dict | None = None,
    video_optional: bool = False,
) -> list[Clip]:
    """Clips of one OLKAVS label file; problems are recorded in ``result.skipped``.

    ``video_optional``: an absent video is not probed; the label's boxes give the duration (crops-only synthetic corpora).
    """
    try:
        data = json.loads(label_path.read_text(encoding="utf-8-sig"))
        record = data[0] if isinstance(data, list) else data
        info = record["Video_info"]
        fps = float(info["FPS"])
        width, height = _parse_resolution(info["Resolution"], str(label_path))
        sentences = record["Sentence_info"]
        lip = np.asarray(record["Bounding_box_info"]["Lip_bounding_box"]["xtl_ytl_xbr_ybr"], dtype=np.float32)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        result.skip(label_path, f"unreadable or malformed JSON label: {error}")
        return []
    except (KeyError, IndexError, TypeError, ValueError) as error:
        result.skip(label_path, f"label lacks a required field or has a bad value: {error!r}")
        return []
    if lip.ndim != 2 or lip.shape[1] != 4:
        result.skip(label_path, f"Lip_bounding_box must be a list of 4-number boxes, got shape {lip.shape}")
        return []
    try:
        order = detect_box_order(lip, width, height)
    except ValueError as error:
        result.skip(label_path, str(error))
        return []
    result.box_orders[order] += 1
    boxes = lip if order == "xyxy" else lip[:, [1, 0, 3, 2]]
    frames_total = len(boxes)
    try:
        if video_optional and not video_path.exists():
            duration = frames_total / fps
        else:
            header = probe(video_path)
            duration = header.duration if header.frame_count else frames_total / fps
    except VideoError as error:
        result.skip(video_path, str(error))
        return []
    meta = AIHUB_STEM.match(label_path.stem)
    speaker = meta.group("speaker") if meta else str(record.get("speaker_info", {}).get("speaker_ID", label_path.stem))
    clips = []
    for sentence in sentences:
        where = f"{label_path} sentence {sentence.get('ID', '?')}"
        try:
            start, end = float(sentence["start_time"]), float(sentence["end_time"])
            raw_text = str(sentence["sentence_text"])
        except (KeyError, TypeError, ValueError) as error:
            result.skip(where, f"sentence lacks start_time/end_time/sentence_text: {error!r}")
            continue
        if not (0 <= start < end):
            result.skip(where, f"bad time range {start}-{end} s")
            continue
        if end > duration + 1.0 / fps:
            result.skip(where, f"sentence ends at {end:.2f} s, past the end of the video ({duration:.2f} s)")
            continue
        first, last = int(round(start * fps)), int(round(end * fps))
        if last > frames_total:
            result.skip(where, f"box list has {frames_total} boxes but the sentence needs frames up to {last}")
            continue
        text, problem = normalized_transcript(raw_text, normalize_options)
        if problem:
            result.skip(where, problem)
            continue
        clips.append(Clip(
            video=video_path, start=start, end=end, text=text, speaker=speaker,
            mouth_boxes=boxes[first:last], clip_id=f"{label_path.stem}_{sentence.get('ID', len(clips))}",
        ))  # fmt: skip
    return clips


def scan_aihub(root: Path, *, angles: Iterable[str] | None = ("A",), noise: Iterable[int] | None = None,
               speakers: Iterable[str] | None = None, normalize_options: dict | None = None) -> CorpusScan:  # fmt: skip
    """Scan an OLKAVS folder tree: videos and same-stem JSON labels anywhere below ``root``.

    Args:
        angles: camera angles to keep (A = frontal, the default); None keeps all.
        noise: noise levels 1-6 to keep; None keeps all.
        speakers: speaker ids (e.g. ``C920``) to keep; None keeps all.
    """
    result = CorpusScan(f"aihub:{root}")
    labels = {p.stem: p for p in root.rglob("*.json")}
    videos = find_videos(root)
    angles = None if angles is None else set(angles)
    noise = None if noise is None else {int(n) for n in noise}
    speakers = None if speakers is None else set(speakers)
    named: list[re.Match] = []
    labelled = 0
    for video in videos:
        meta = AIHUB_STEM.match(video.stem)
        if meta is None:
            result.skip(video, "file name does not follow lip_{J|K}_{noise}_{F|M}_{age}_{speaker}_{angle}_{session}")
            continue
        named.append(meta)
        if (angles is not None and meta.group("angle") not in angles) \
                or (noise is not None and int(meta.group("noise")) not in noise) \
                or (speakers is not None and meta.group("speaker") not in speakers):  # fmt: skip
            result.filtered += 1
            continue  # filtered out on purpose, not a failure
        label = labels.get(video.stem)
        if label is None:
            result.skip(video, f"no label {video.stem}.json found under {root}")
            continue
        labelled += 1
        result.clips += read_aihub_label(label, video, result, normalize_options=normalize_options)
    if not result.clips:
        filters = {"angle": angles, "noise": None if noise is None else {str(n) for n in noise}, "speaker": speakers}
        result.problem = _aihub_problem(root, videos, labels, named, labelled, result, filters)
    return result


def _count_by_suffix(paths: Sequence[Path]) -> str:
    """``"3 .mp4, 1 .avi"``; ``"0 video files"`` when empty."""
    counts = Counter(p.suffix.lower() for p in paths)
    return ", ".join(f"{n} {suffix}" for suffix, n in counts.most_common()) if counts else "0 video files"


def _aihub_problem(root: Path, videos: list[Path], labels: dict[str, Path], named: list[re.Match], labelled: int,
                   result: CorpusScan, filters: dict[str, set | None]) -> str:  # fmt: skip
    """Why an AIHub scan found no clip: what it looked for, and what it found instead."""
    looked_for = f"no lip_*.mp4 video with a same-stem .json label under {root}"
    if labelled:
        return f"none of the {labelled} labelled videos under {root} gave a usable clip (see the skipped reasons)"
    if named and result.filtered == len(named):
        used = {name: values for name, values in filters.items() if values is not None}
        kept = "; ".join(f"{name} {', '.join(sorted(map(str, values)))}" for name, values in used.items())
        found = "; ".join(f"{name} {', '.join(sorted({m.group(name) for m in named}))}" for name in used)
        return f"{looked_for} that the filters keep ({kept}): the {len(named)} lip_*.mp4 videos found have {found}"
    if named:
        example = f" (e.g. {next(iter(labels.values())).name})" if labels else ""
        unlabelled = len(named) - result.filtered
        return f"{looked_for}: none of the {unlabelled} lip_*.mp4 videos has one; found {len(labels)} .json{example}"
    found = f"found {_count_by_suffix(videos)} and {len(labels)} .json"
    if videos:
        found += f"; video names must look like lip_K_5_M_06_C920_A_001.mp4, unlike {videos[0].name}"
    elif not labels:
        others = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        found += f" ({len(others)} other files{f', e.g. {others[0].name}' if others else ''})"
    return f"{looked_for}; {found}"


# ---------------------------------------------------------------- synthetic (lipnet-ko synth)

SYNTH_MANIFEST = "synth.json"  # lipnet_ko.synth.corpus.MANIFEST_NAME (synth is downstream of data)


def synthetic_output(root: Path) -> str:
    """``"crops"`` or ``"video"``: how a ``lipnet-ko synth`` corpus was written (``synth.json``; corpora before v4: video)."""
    try:
        manifest = json.loads((root / SYNTH_MANIFEST).read_text(encoding="utf-8"))
        return str(manifest["config"].get("output", "video"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "video"


def scan_synthetic(root: Path, *, normalize_options: dict | None = None) -> CorpusScan:
    """Scan a ``lipnet-ko synth`` corpus written with ``output="crops"``: its labels, the videos absent by design.

    Every sentence of every ``lip_*.json`` label becomes a clip as :func:`scan_aihub` would make it (same
    clip ids, texts, boxes and times); ``clip.video`` names the video the label would go with, which does
    not exist: the crops are in ``DIR-crops/<clip_id>.npz`` already.
    """
    result = CorpusScan(f"synthetic:{root}")
    log.debug("%s: a crops-only synthetic corpus (output='crops'): no videos by design, crops in %s-crops", root, root.name)
    labels = sorted(p for p in root.rglob("lip_*.json") if AIHUB_STEM.match(p.stem))
    for label in labels:
        result.clips += read_aihub_label(label, label.with_suffix(".mp4"), result, normalize_options=normalize_options,
                                         video_optional=True)  # fmt: skip
    if not result.clips:
        result.problem = (f"no usable lip_*.json label under {root} (a crops-only synthetic corpus)" if not labels
                          else f"none of the {len(labels)} labels under {root} gave a usable clip (see the skipped reasons)")
    return result


# ---------------------------------------------------------------- GRID


def grid_sentences() -> list[str]:
    """Every sentence of GRID's grammar (4 x 4 x 4 x 25 x 10 x 4 = 64,000), in slot order."""
    import itertools

    return [" ".join(words) for words in itertools.product(*(sorted(set(slot.values())) for slot in GRID_WORDS))]


def grid_text_from_name(stem: str) -> str:
    """Sentence spelled by a GRID file name: ``bbaf2n`` -> ``bin blue at f two now`` (last six letters)."""
    code = stem[-6:]
    if len(code) != 6:
        raise ValueError(f"{stem!r} is too short to be a GRID sentence code")
    try:
        return " ".join(table[ch] for table, ch in zip(GRID_WORDS, code))
    except KeyError:
        raise ValueError(f"{stem!r} does not spell a GRID sentence") from None


def read_grid_align(path: Path) -> tuple[str, float | None, float | None]:
    """Words of a GRID ``.align`` file and the span from the first to the last spoken word (seconds)."""
    words, start, end = [], None, None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"{path}:{lineno}: expected 'START END WORD', got {line!r}")
        begin, finish, word = int(parts[0]), int(parts[1]), parts[2]
        if word in GRID_SILENCE:
            continue
        words.append(word)
        start = begin / GRID_ALIGN_UNITS_PER_SECOND if start is None else start
        end = finish / GRID_ALIGN_UNITS_PER_SECOND
    if not words:
        raise ValueError(f"{path}: no words besides silence")
    return " ".join(words), start, end


# Folder names that hold a speaker's videos or alignments in GRID's own layout (``s1/`` videos beside
# ``alignments/s1/``, or ``video/`` beside ``align/``): they name no speaker, so the folder above them does.
GRID_GENERIC_FOLDERS = frozenset({"video", "videos", "vid", "mpg", "mpg_vcd", "mpg_6000", "align", "aligns",
                                  "alignment", "alignments"})  # fmt: skip


def grid_speaker(video: Path, root: Path) -> str:
    """The speaker of a GRID video: its folder's name, or the folder above a generic one (``video/``, ``mpg_6000/``)."""
    for folder in (video.parent, *video.parent.parents):
        if folder.name.lower() not in GRID_GENERIC_FOLDERS or folder == root:
            return folder.name or "grid"
    return root.name or "grid"


def _grid_align_for(video: Path, root: Path, aligns: dict[str, list[Path]]) -> tuple[Path | None, str | None]:
    """The ``.align`` of ``video``: same stem, preferring the same folder, then one under the same speaker.

    GRID reuses sentence codes across speakers (``s1/bbaf2n`` and ``s2/bbaf2n``), so a stem alone can be
    ambiguous. Returns (path, None), (None, None) when there is none, or (None, reason) when several fit.
    """
    found = aligns.get(video.stem, [])
    if len(found) <= 1:
        return (found[0] if found else None), None
    same_folder = [p for p in found if p.parent == video.parent]
    if len(same_folder) == 1:
        return same_folder[0], None
    speaker = grid_speaker(video, root)
    same_speaker = [p for p in found if speaker in p.relative_to(root).parts[:-1]]
    if len(same_speaker) == 1:
        return same_speaker[0], None
    return None, f"{len(found)} .align files named {video.stem}.align and none is the speaker {speaker!r}'s"


def scan_grid(root: Path, *, trim_silence: bool = False) -> CorpusScan:
    """Scan GRID: videos with their ``.align`` files, as GRID ships them or side by side.

    Layouts read: speaker folders holding videos and ``.align`` files together; GRID's own, a folder of
    videos beside a folder of alignments (``s1/*.mpg`` with ``alignments/s1/*.align``, or ``video/*.mp4``
    with ``align/*.align``). A video's ``.align`` is the one of the same stem in its folder, else the one
    under the same speaker (``_grid_align_for``). Without one, the sentence is read from the file name
    (GRID names spell it). The speaker is the video's folder, or the folder above a generic one
    (``grid_speaker``). Clips cover the whole video unless ``trim_silence`` cuts them to the spoken span
    of the alignment.
    """
    result = CorpusScan(f"grid:{root}")
    aligns: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.align")):
        aligns.setdefault(path.stem, []).append(path)
    for video in find_videos(root):
        start = end = None
        try:
            align, ambiguous = _grid_align_for(video, root, aligns)
            if ambiguous:
                raise ValueError(ambiguous)
            if align is not None:
                text, start, end = read_grid_align(align)
            else:
                text = grid_text_from_name(video.stem)
            text = normalize_english(text)
        except (ValueError, OSError) as error:
            result.skip(video, f"no usable transcript: {error}")
            continue
        if not trim_silence:
            start = end = None
        speaker = grid_speaker(video, root)
        result.clips.append(Clip(video=video, start=start, end=end, text=text, speaker=speaker,
                                 clip_id=f"{speaker}/{video.stem}"))  # fmt: skip
    if not result.clips and not result.skipped:
        others = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        result.problem = (f"no video file ({', '.join(VIDEO_EXTENSIONS)}) under {root}; found {len(others)} other files"
                          f"{f', e.g. {others[0].name}' if others else ''}")  # fmt: skip
        result.skip(root, "no video files found")
    elif not result.clips:
        videos = len(result.skipped)
        result.problem = f"none of the {videos} videos under {root} has a usable transcript (see the skipped reasons)"
    return result


# ---------------------------------------------------------------- splits


def _hash_fraction(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_speaker(clips: Sequence[Clip], held_out: float | Sequence[str], seed: int = 0) -> dict[str, list[Clip]]:
    """Unseen-speaker split: every clip of a held-out speaker goes to ``test``.

    ``held_out`` is a share of speakers (chosen reproducibly from ``seed``, at least one) or their names.
    """
    speakers = sorted({c.speaker for c in clips})
    if isinstance(held_out, (int, float)):
        if not 0 < held_out < 1:
            raise ValueError(f"held-out share must be in (0, 1), got {held_out}")
        if len(speakers) < 2:
            raise ValueError(f"a speaker split needs at least two speakers, found {speakers}")
        ranked = sorted(speakers, key=lambda s: _hash_fraction(seed, s))
        test_speakers = set(ranked[: max(1, min(len(speakers) - 1, round(held_out * len(speakers))))])
    else:
        test_speakers = set(held_out)
        unknown = test_speakers - set(speakers)
        if unknown:
            raise ValueError(f"held-out speakers not in the corpus: {sorted(unknown)}")
    return {
        "train": [c for c in clips if c.speaker not in test_speakers],
        "test": [c for c in clips if c.speaker in test_speakers],
    }


def split_by_utterance(clips: Sequence[Clip], held_out: float, seed: int = 0) -> dict[str, list[Clip]]:
    """Overlapped-speaker split: each clip goes to ``test`` with probability ``held_out``, by a hash of its id.

    The assignment of a clip never depends on the other clips, so adding data keeps old splits.
    """
    if not 0 < held_out < 1:
        raise ValueError(f"held-out share must be in (0, 1), got {held_out}")
    test = [c for c in clips if _hash_fraction(seed, c.clip_id) < held_out]
    test_ids = {c.clip_id for c in test}
    return {"train": [c for c in clips if c.clip_id not in test_ids], "test": test}


def write_split(path: str | Path, split: dict[str, Sequence[Clip]], **meta) -> None:
    """Write ``{"meta": ..., "splits": {name: [clip_id, ...]}}`` atomically."""
    write_json_atomic(path, {"meta": meta, "splits": {name: [c.clip_id for c in clips] for name, clips in split.items()}})


def read_split(path: str | Path, clips: Sequence[Clip]) -> dict[str, list[Clip]]:
    """Apply a split file to a corpus; ValueError when it names clips the corpus no longer has."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    by_id = {c.clip_id: c for c in clips}
    out = {}
    for name, ids in payload["splits"].items():
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ValueError(f"{path}: split {name!r} names {len(missing)} clips missing from the corpus, e.g. {missing[:3]}")
        out[name] = [by_id[i] for i in ids]
    return out


# ---------------------------------------------------------------- CLI: lipnet-ko data


def configure_parser(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    inspect = sub.add_parser("inspect", help="count clips, speakers and hours; list what was skipped and why")
    inspect.add_argument("spec", help="aihub:DIR, grid:DIR, manifest:FILE, crops:DIR or synthetic:DIR")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--angles", default="A", help="AIHub camera angles to keep, e.g. A or ABC; 'all' keeps every angle")
    split = sub.add_parser("split", help="write a reproducible train/test split of a corpus")
    split.add_argument("spec")
    split.add_argument("--by", choices=["speaker", "utterance"], default="speaker", help="unseen speakers or overlapped speakers")
    split.add_argument("--held-out", type=float, default=0.1, help="share of speakers (or utterances) held out")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--out", required=True, help="split JSON to write")
    reframe = sub.add_parser("reframe", help="copy a crops:DIR corpus with every frame cut to a box and resized to "
                                             "this project's crop size (crops made with other margins)")
    reframe.add_argument("spec", help="crops:DIR")
    reframe.add_argument("--box", type=float, nargs=4, required=True, metavar=("X0", "Y0", "X1", "Y1"),
                         help="the region of each frame (px) that becomes the new crop")
    reframe.add_argument("--out", type=Path, required=True, help="folder of the re-framed corpus (a crops:DIR layout)")
    reframe.add_argument("--width", type=int, default=None, help="crop width (default MouthConfig's)")
    reframe.add_argument("--height", type=int, default=None, help="crop height (default MouthConfig's)")


def _scan_from_args(args) -> CorpusScan:
    options = {}
    if args.spec.startswith("aihub:"):
        angles = getattr(args, "angles", "A")  # `data split` has no --angles: the frontal default, as training reads it
        if angles != "all" and not re.fullmatch(r"[A-I]+", angles):
            raise ValueError(f"--angles takes camera angles A-I (e.g. A or ABC) or 'all', got {angles!r}")
        options["angles"] = None if angles == "all" else tuple(angles)
    return scan(args.spec, **options)


def _print_inspection(result: CorpusScan) -> None:
    summary = result.summary()
    print(f"{summary['spec']}: {summary['clips']} clips, {summary['speakers']} speakers, {summary['seconds'] / 3600:.3f} hours")
    for order, count in result.box_orders.items():
        corners = "y_top, x_left, y_bottom, x_right" if order == "yxyx" else "x_left, y_top, x_right, y_bottom"
        print(f"lip boxes read as {order} ({corners}) in {count} labels")
    missing = result.missing_videos
    if missing:
        clips = sum(item["reason"] == MISSING_VIDEO for item in result.skipped)
        examples = ", ".join(missing[:EXAMPLES_SHOWN])
        print(f"missing: {clips} clips name {len(missing)} video files that do not exist, e.g. {examples}")
    for item in result.skipped:
        if item["reason"] != MISSING_VIDEO:
            print(f"skipped {item['path']}: {item['reason']}")
    if result.filtered:
        print(f"{result.filtered} videos left out by the camera-angle filter (--angles all keeps them)")
    print(f"{len(result.skipped)} skipped")


def run(args) -> int:
    """``lipnet-ko data inspect|split SPEC``.

    Exit 0 when every file of the corpus gave clips; 1 when some were skipped (each is logged as it is
    found and listed by ``inspect``); 2 when the spec gives no usable clip (one ``error:`` line says what
    was looked for and what was found), or is bad or unreadable.
    """
    if args.action == "reframe":
        return _reframe(args)
    try:
        result = _scan_from_args(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.action == "inspect":
        if args.json:
            print(json.dumps(result.summary(), ensure_ascii=False, indent=1))
        else:
            _print_inspection(result)
    if not result.clips:
        hint = ""
        if result.filtered and args.action == "inspect":
            hint = f"; {result.filtered} videos of other camera angles were left out: --angles all keeps them"
        problem = result.problem or f"{len(result.skipped)} skipped"
        print(f"error: {result.spec}: no usable clip: {problem}{hint}", file=sys.stderr)
        return 2
    if args.action == "split":
        try:
            split = (split_by_speaker if args.by == "speaker" else split_by_utterance)(result.clips, args.held_out, args.seed)
            write_split(args.out, split, spec=args.spec, by=args.by, held_out=args.held_out, seed=args.seed)
        except (ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(", ".join(f"{name}: {len(clips)} clips" for name, clips in split.items()) + f" -> {args.out}")
        if result.skipped:
            print(f"{len(result.skipped)} skipped (left out of the split; `lipnet-ko data inspect {args.spec}` lists why)")
    return 1 if result.skipped else 0


def _reframe(args) -> int:
    """``lipnet-ko data reframe crops:DIR --box X0 Y0 X1 Y1 --out NEW``: 0 done, 1 some clips failed, 2 nothing done."""
    from lipnet_ko.data.crop_folders import reframe_crop_corpus
    from lipnet_ko.video.extract import PreprocessConfig
    from lipnet_ko.video.mouth import MouthConfig

    kind, path = parse_spec(args.spec) if is_spec(args.spec) else (None, None)
    if kind != "crops":
        print(f"error: reframe takes a crops:DIR corpus, got {args.spec!r}", file=sys.stderr)
        return 2
    try:
        mouth = MouthConfig(**{k: v for k, v in (("width", args.width), ("height", args.height)) if v is not None})
        summary = reframe_crop_corpus(path, args.out, tuple(args.box), PreprocessConfig(mouth=mouth))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{summary['clips']} clips -> crops:{summary['out']}; {len(summary['failed'])} failed")
    for item in summary["failed"]:
        print(f"  failed {item['clip']}: {item['reason']}", file=sys.stderr)
    return 1 if summary["failed"] else 0
