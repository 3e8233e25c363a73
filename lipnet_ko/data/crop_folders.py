"""Corpora that are already mouth crops: LipNet's folder layout -> ``Clip`` s, and a clip folder -> ``MouthResult``.

The layout (``crops:DIR``)::

    DIR/labels.csv                  header ``clip,text``, optional ``fps`` and ``speaker`` columns, UTF-8
    DIR/clips/<clip>/mouth_000.png  one image per frame (.png or .jpg), RGB, MouthConfig.width x height px
    DIR/clips/<clip>/mouth_001.png  ...

The frames of a clip are its image files in natural order of the numbers in their names (``mouth_9`` before
``mouth_10``). ``fps`` defaults to :data:`FPS` (LipNet's 25), ``speaker`` to the name of ``DIR``.

No face detection runs: someone already cut these crops, so there is no face left to find. They are read
as they are and must already have the crop size of the ``PreprocessConfig``; a clip of another size is
rejected, never resized, because a silently resized crop has another mouth scale than the model was
trained on. The result has the same fields as a cropped video (``lipnet_ko.video.extract.MouthResult``),
so ``lipnet_ko.data.crops`` writes the same ``.npz`` for both, and everything after it sees no difference.

This module reads files only; ``lipnet_ko.data.corpora.scan_crops`` turns :func:`read_crop_corpus` into a
``CorpusScan`` (this module sits upstream of ``corpora``, so the import graph stays a tree).
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from lipnet_ko.data.clips import Clip, normalized_transcript
from lipnet_ko.video.extract import MouthResult, PreprocessConfig
from lipnet_ko.video.mouth import NUM_LANDMARKS

log = logging.getLogger(__name__)

FPS = 25.0  # frames per second when labels.csv has no fps column (LipNet's crops, GRID's videos)
LABELS_NAME = "labels.csv"
CLIPS_DIR = "clips"
LABEL_COLUMNS = ("clip", "text")  # required; "fps" and "speaker" are optional
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")
MIN_FRAMES = 2  # a clip of one frame shows no movement
TIME_EPS = 1e-4  # seconds; as lipnet_ko.video.reader, a frame at start - TIME_EPS still counts as at start


@dataclass
class CropCorpus:
    """What :func:`read_crop_corpus` found: the usable clips and every row or folder left out, with its reason."""

    clips: list[Clip] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"path": str, "reason": str}
    problem: str = ""  # when the corpus as a whole cannot be read (no labels.csv, bad header): why

    def skip(self, path: str | Path, reason: str) -> None:
        self.skipped.append({"path": str(path), "reason": reason})


def _natural_key(path: Path) -> list:
    # re.split with a capturing group puts the digit runs at the odd positions, so keys compare int with int.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def frame_paths(folder: str | Path) -> list[Path]:
    """The frame images of a clip folder (``FRAME_EXTENSIONS``, hidden files left out) in natural order."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    frames = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    return sorted(frames, key=_natural_key)


def is_crop_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding at least one frame image (a clip of mouth crops, not a video)."""
    return bool(frame_paths(path))


def _labels_table(labels: Path) -> tuple[list[tuple[int, dict[str, str | None]]], list[str]]:
    """Rows of labels.csv as ``(line, {column: value})`` and the header; ValueError naming the fault."""
    try:
        text = labels.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{labels} is not UTF-8 text ({error}); save it as UTF-8") from None
    except OSError as error:
        raise ValueError(f"cannot read {labels}: {error}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in LABEL_COLUMNS if name not in header]
        if missing:
            raise ValueError(f"{labels}:1: the header must name the columns {','.join(LABEL_COLUMNS)} (optional: fps, speaker); "
                             f"got {','.join(header) or 'an empty file'}")  # fmt: skip
        rows = []
        for row in reader:
            rows.append((reader.line_num, {(k.strip() if k is not None else None): v for k, v in row.items()}))
    except csv.Error as error:
        raise ValueError(f"{labels}:{reader.line_num}: malformed CSV: {error}") from None
    return rows, header


def _fps_value(value: str | None) -> float:
    if value is None or not value.strip():
        return FPS
    fps = float(value)  # ValueError for text
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {value!r}")
    return fps


def read_crop_corpus(root: str | Path, *, normalize_options: dict | None = None) -> CropCorpus:
    """Clips of a ``crops:DIR`` corpus (see the module docstring); reads labels.csv and lists folders, decodes nothing.

    Each clip has ``video`` = its clip folder, ``start`` = 0 and ``end`` = frames / fps (so durations need no
    decoding), ``text`` normalised by :func:`lipnet_ko.text.normalize.normalize_text` as the AIHub reader does,
    ``speaker`` from the ``speaker`` column or the name of ``root``, and ``clip_id`` = ``"<speaker>/<clip>"``.

    Skipped, with a reason each: a row whose clip folder is missing or holds fewer than ``MIN_FRAMES`` frames,
    an empty or unnormalisable text, a bad fps, a malformed row, a clip labelled twice (the first row is kept)
    and a clip folder that no row labels. ``problem`` is set (and no clip returned) when labels.csv or the
    clips folder is missing, unreadable, or lacks the ``clip`` and ``text`` columns.
    """
    root = Path(root)
    result = CropCorpus()
    labels, clips_dir = root / LABELS_NAME, root / CLIPS_DIR
    layout = f"a crops:DIR corpus is DIR/{LABELS_NAME} (columns clip,text) and DIR/{CLIPS_DIR}/<clip>/mouth_000.png ..."
    if not labels.is_file() or not clips_dir.is_dir():
        absent = " and ".join(str(p) for p, ok in ((labels, labels.is_file()), (clips_dir, clips_dir.is_dir())) if not ok)
        result.problem = f"{absent} not found; {layout}"
        return result
    try:
        rows, header = _labels_table(labels)
    except ValueError as error:
        result.problem = str(error)
        return result
    default_speaker = root.resolve().name
    first_line: dict[str, int] = {}
    for line, row in rows:
        where = f"{labels}:{line}"
        if None in row:
            result.skip(where, f"more fields than the header's {len(header)} columns; quote a text that contains a comma")
            continue
        if any(value is None for value in row.values()):
            result.skip(where, f"fewer fields than the header's {len(header)} columns")
            continue
        name = row["clip"].strip()
        if not name or len(PurePosixPath(name).parts) != 1 or name in (".", "..") or "\\" in name:
            result.skip(where, f"clip {name!r} is not the name of a folder in {CLIPS_DIR}/")
            continue
        if name in first_line:
            result.skip(where, f"clip {name!r} is labelled again (first at line {first_line[name]}); only that first row is used")
            continue
        first_line[name] = line
        try:
            fps = _fps_value(row.get("fps"))
        except ValueError as error:
            result.skip(where, f"bad fps: {error}")
            continue
        raw_text = row["text"].strip()
        if not raw_text:
            result.skip(where, f"empty text for clip {name!r}")
            continue
        text, problem = normalized_transcript(raw_text, normalize_options)
        if problem:
            result.skip(where, problem)
            continue
        folder = clips_dir / name
        if not folder.is_dir():
            result.skip(folder, f"{LABELS_NAME} line {line} labels clip {name!r} but its folder does not exist")
            continue
        frames = len(frame_paths(folder))
        if frames < MIN_FRAMES:
            found = "no frames" if not frames else f"{frames} frame"
            result.skip(folder, f"{found} ({', '.join(FRAME_EXTENSIONS)}) in the clip folder; a clip needs at least {MIN_FRAMES}")
            continue
        speaker = (row.get("speaker") or "").strip() or default_speaker
        try:
            clip = Clip(video=folder, start=0.0, end=frames / fps, text=text, speaker=speaker, clip_id=f"{speaker}/{name}")
        except ValueError as error:  # e.g. a speaker of ".."
            result.skip(where, str(error))
            continue
        result.clips.append(clip)
    for folder in sorted(p for p in clips_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name not in first_line:
            result.skip(folder, f"no row of {LABELS_NAME} labels this clip folder")
    if not result.clips:
        result.problem = (f"{labels} has no rows" if not rows else
                          f"none of the {len(rows)} rows of {labels} gave a usable clip (see the skipped reasons)")  # fmt: skip
    return result


@functools.lru_cache(maxsize=8)
def _fps_by_clip(labels: Path, mtime_ns: int) -> dict[str, float]:
    """``{clip: fps}`` of a labels.csv (cached per file version: every clip of a batch asks)."""
    try:
        rows, _ = _labels_table(labels)
    except ValueError:
        return {}
    table = {}
    for _, row in rows:
        name = (row.get("clip") or "").strip()
        try:
            table.setdefault(name, _fps_value(row.get("fps")))
        except (ValueError, AttributeError):
            continue
    return table


def crop_folder_fps(folder: str | Path) -> float:
    """The frame rate of a clip folder: its row's ``fps`` in ``<DIR>/labels.csv`` when it is in a corpus, else ``FPS``."""
    folder = Path(folder)
    labels = folder.parent.parent / LABELS_NAME
    if folder.parent.name != CLIPS_DIR or not labels.is_file():
        return FPS
    return _fps_by_clip(labels, labels.stat().st_mtime_ns).get(folder.name, FPS)


def _describe(shape: tuple[int, ...]) -> str:
    channels = 1 if len(shape) == 2 else shape[2]
    return f"{shape[1]}x{shape[0]} px with {channels} channel{'s' if channels != 1 else ''}"


def read_crop_folder(
    folder: str | Path,
    config: PreprocessConfig | None = None,
    fps: float | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
) -> MouthResult:
    """The mouth crops of one clip folder, checked against the crop geometry of ``config``, never resized.

    Args:
        folder: a clip folder of frame images (see the module docstring for their order).
        config: the crop geometry the crops must have (default ``PreprocessConfig()``: 100x50 RGB). With
            ``config.mouth.grey``, RGB frames become one-channel luma by the conversion the video path uses
            (``cv2`` BT.601, as ``lipnet_ko.video.mouth`` makes grey crops); grey frames are kept as they are.
        fps: frame rate of the crops (default ``FPS``).
        start, end: keep only the frames at ``start <= t < end`` seconds, ``t = index / fps`` (as a video's
            time range); None = from the first / to the last frame.

    Returns:
        ``MouthResult`` with ``crops`` uint8 [T, height, width, C] (RGB, or C = 1 when grey); ``landmarks``
        all NaN [T, 68, 2] (no face was seen); ``boxes`` None; ``found`` and ``searched`` all True (every
        frame has its crop, nothing was interpolated); ``transforms`` the identity [T, 2, 3], because the
        frames of the folder are the source and their pixels are the crop pixels; ``timestamps`` float64
        [T] = index / fps; ``timings`` with the video path's keys (only decode and crop take time here).

    Raises:
        ValueError: the folder has fewer than ``MIN_FRAMES`` frames (in the range), a frame cannot be read
            (it is named), frames differ in size, or the crops do not have the size or channels ``config``
            expects (the message gives both, and the fix).
    """
    t_start = time.perf_counter()
    folder = Path(folder)
    config = config or PreprocessConfig()
    fps = FPS if fps is None else float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"{folder}: fps must be a positive number, got {fps}")
    paths = frame_paths(folder)
    times = np.arange(len(paths), dtype=np.float64) / fps
    keep = (times >= (start or 0.0) - TIME_EPS) & (times < (math.inf if end is None else end))
    paths, times = [p for p, k in zip(paths, keep) if k], times[keep]
    if len(paths) < MIN_FRAMES:
        until = "the end" if end is None else f"{end:.3f} s"
        where = "" if start is None and end is None else f" between {start or 0.0:.3f} s and {until}"
        raise ValueError(f"{folder}: {len(paths)} frames ({', '.join(FRAME_EXTENSIONS)}){where}; "
                         f"a clip needs at least {MIN_FRAMES}")  # fmt: skip
    mouth = config.mouth
    crops = np.empty((len(paths), mouth.height, mouth.width, mouth.channels), np.uint8)  # [T, H, W, C]
    timings = {"decode": 0.0, "detect": 0.0, "landmarks": 0.0, "crop": 0.0}
    first = None
    for index, path in enumerate(paths):
        t0 = time.perf_counter()
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # BGR, or [H, W] grey; IMREAD_UNCHANGED keeps the channels
        t1 = time.perf_counter()
        timings["decode"] += t1 - t0
        if image is None:
            raise ValueError(f"{folder}: cannot read frame {path.name} (not an image, or corrupt)")
        if image.dtype != np.uint8:
            raise ValueError(f"{folder}: frame {path.name} has {image.dtype} pixels; mouth crops must be 8-bit")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim == 3 and image.shape[2] != 3:
            raise ValueError(f"{folder}: frame {path.name} has {image.shape[2]} channels (an alpha channel?); "
                             "save the crops as RGB or grey")  # fmt: skip
        if first is None:
            first = (path, image.shape)
            height, width = image.shape[:2]
            if (height, width) != (mouth.height, mouth.width):
                raise ValueError(
                    f"{folder}: crops are {width}x{height} px, the preprocessing config expects {mouth.width}x{mouth.height} "
                    f"(MouthConfig.width x height); resize them, or set MouthConfig(width={width}, height={height}) "
                    f"(lipnet-ko preprocess --width {width} --height {height}) and train at that size"
                )
            if image.ndim == 2 and not mouth.grey:
                raise ValueError(f"{folder}: crops are grey (1 channel), the preprocessing config expects RGB (3 channels); "
                                 "set MouthConfig(grey=True) (lipnet-ko preprocess --grey), or save RGB crops")  # fmt: skip
        elif image.shape != first[1]:
            raise ValueError(f"{folder}: frame {path.name} is {_describe(image.shape)} but {first[0].name} is "
                             f"{_describe(first[1])}; every frame of a clip must have one size")  # fmt: skip
        if image.ndim == 2:
            crops[index, :, :, 0] = image
        elif mouth.grey:
            crops[index, :, :, 0] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        else:
            crops[index] = image[:, :, ::-1]  # OpenCV reads BGR
        timings["crop"] += time.perf_counter() - t1
    frames = len(paths)
    timings["total"] = time.perf_counter() - t_start
    return MouthResult(
        crops=crops,
        landmarks=np.full((frames, NUM_LANDMARKS, 2), np.nan, np.float32),
        boxes=None,
        found=np.ones(frames, bool),
        searched=np.ones(frames, bool),
        transforms=np.tile(np.eye(2, 3, dtype=np.float32), (frames, 1, 1)),
        fps=fps,
        timestamps=times,
        timings=timings,
    )


# ---------------------------------------------------------------------------------------------------
# Re-framing crops cut to another geometry


def reframe_box(box: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """The affine map [2, 3] that takes ``box`` (x0, y0, x1, y1, source px) onto a ``width`` x ``height`` crop."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"a box needs x0 < x1 and y0 < y1, got {box}")
    sx, sy = width / (x1 - x0), height / (y1 - y0)
    return np.array([[sx, 0.0, -x0 * sx + 0.5 * sx - 0.5], [0.0, sy, -y0 * sy + 0.5 * sy - 0.5]], np.float32)


def reframe_crop_corpus(root: str | Path, out: str | Path, box: tuple[float, float, float, float],
                        config: PreprocessConfig | None = None, *, progress: bool = True) -> dict:  # fmt: skip
    """Writes a copy of a ``crops:DIR`` corpus whose every frame is the region ``box`` of the original, resampled to
    ``config``'s crop size: crops another pipeline cut with other margins, brought to this project's geometry.

    Where the mouth sits in such crops cannot be measured here (no face is left to find landmarks on), so the
    box is given: the region that, in this project's geometry (``MouthConfig.margin`` of the crop width on each
    side of the mouth corners, mouth centred), frames the mouth; ``README.md``, "Reading real people", gives the
    one measured for ``../shared/data/korean-speaker``. Pixels are resampled bilinearly (area-averaged when
    shrinking). Clips go to ``out/clips/<clip>/`` through a temporary folder each, so an interrupted run leaves no
    half-written clip and resumes where it stopped; ``out/labels.csv`` (the rows of the clips written) and
    ``out/reframe.json`` (source, box, size) are written last, atomically.

    Returns:
        ``{"clips": written or already there, "failed": [{"clip", "reason"}], "out": str}``.

    Raises:
        ValueError: ``root`` is not a crops corpus, ``out`` is ``root``, or the box is empty.
    """
    import os
    import shutil

    from tqdm import tqdm

    from lipnet_ko.files import write_json_atomic

    root, out = Path(root), Path(out)
    config = config or PreprocessConfig()
    if out.resolve() == root.resolve():
        raise ValueError(f"--out {out} is the corpus itself; write the re-framed copy to another folder")
    corpus = read_crop_corpus(root)
    if corpus.problem:
        raise ValueError(f"{root}: {corpus.problem}")
    width, height = config.mouth.width, config.mouth.height
    matrix = reframe_box(box, width, height)
    shrink = matrix[0, 0] < 1 or matrix[1, 1] < 1
    table, header = _labels_table(root / LABELS_NAME)  # read_crop_corpus read it fine, so no ValueError here
    rows = {row["clip"].strip(): row for _, row in table if row.get("clip")}
    kept_rows, failed, written = [], [], 0
    (out / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    for clip in tqdm(corpus.clips, desc="reframe", unit="clip", disable=not progress):
        folder = Path(clip.video)
        target = out / CLIPS_DIR / folder.name
        frames = frame_paths(folder)
        if target.is_dir() and len(frame_paths(target)) == len(frames):
            kept_rows.append(rows[folder.name])
            written += 1
            continue
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        try:
            for path in frames:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f"cannot read frame {path.name}")
                if shrink:  # average the pixels a shrunk crop covers instead of sampling a few of them
                    x0, y0, x1, y1 = (int(round(v)) for v in box)
                    crop = cv2.resize(image[max(0, y0):y1, max(0, x0):x1], (width, height), interpolation=cv2.INTER_AREA)
                else:
                    crop = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
                if not cv2.imwrite(str(temp / f"{path.stem}.png"), crop):
                    raise OSError(f"cannot write {temp / path.name}")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(temp, target)
        except (ValueError, OSError) as error:
            shutil.rmtree(temp, ignore_errors=True)
            failed.append({"clip": folder.name, "reason": str(error)})
            log.warning("reframe %s: %s", folder, error)
            continue
        kept_rows.append(rows[folder.name])
        written += 1
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept_rows)
    labels = out / LABELS_NAME
    temp_labels = labels.with_name(f".{labels.name}.{os.getpid()}.tmp")
    temp_labels.write_text(text.getvalue(), encoding="utf-8")
    os.replace(temp_labels, labels)
    write_json_atomic(out / "reframe.json", {"source": str(root.resolve()), "box": [float(v) for v in box],
                                             "size": [width, height], "clips": written, "failed": failed})  # fmt: skip
    return {"clips": written, "failed": failed, "out": str(out)}

