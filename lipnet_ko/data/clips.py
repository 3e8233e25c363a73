"""Clips of a corpus: which video, which time range, what is said, and by whom.

``Clip`` is the unit every corpus reader produces and ``lipnet_ko.data.crops`` consumes.
``read_manifest`` reads the project's own manifest format (CSV or JSON Lines, one clip per row with
the columns ``video,start,end,text,speaker`` and optionally ``clip_id``; ``start``/``end`` in seconds
and optional). Relative video paths are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from lipnet_ko.text.normalize import normalize_text

MANIFEST_COLUMNS = ("video", "start", "end", "text", "speaker", "clip_id")  # "video" is required


class ManifestError(ValueError):
    """A manifest file is malformed; the message names the file and line."""


def normalized_transcript(raw_text: str, normalize_options: dict | None = None) -> tuple[str, str | None]:
    """A label's Korean transcript through ``normalize_text``: ``(text, None)``, or ``("", reason)`` when it cannot be
    normalised or nothing is left of it (the reason a corpus reader skips the clip with)."""
    try:
        text = normalize_text(raw_text, **(normalize_options or {}))
    except ValueError as error:
        return "", f"transcript cannot be normalised: {error}"
    return (text, None) if text else ("", "empty transcript after normalisation")


def _default_clip_id(stem: str, start: float | None, end: float | None) -> str:
    if start is None and end is None:
        return stem
    return f"{stem}_{start or 0.0:.3f}-{'end' if end is None else f'{end:.3f}'}"


@dataclass(frozen=True)
class Clip:
    """One sentence clip: a video file and optionally a time range inside it."""

    video: Path
    start: float | None = None  # seconds from the start of the file; None = beginning
    end: float | None = None  # seconds, exclusive; None = end of the file
    text: str = ""  # transcript, if known
    speaker: str = ""
    # float32 [T, 4] (x0, y0, x1, y1) source px per frame of the range
    mouth_boxes: np.ndarray | None = field(default=None, compare=False, repr=False)
    clip_id: str = ""  # unique name; also the output's relative path (may contain "/"). Default: video stem + range

    def __post_init__(self) -> None:
        object.__setattr__(self, "video", Path(self.video))
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                value = float(value)
                if not math.isfinite(value) or value < 0:
                    raise ValueError(f"Clip.{name} must be a finite number of seconds >= 0, got {value}")
                object.__setattr__(self, name, value)
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"Clip.end ({self.end}) must be after Clip.start ({self.start}) for {self.video}")
        if self.mouth_boxes is not None:
            boxes = np.asarray(self.mouth_boxes, dtype=np.float32)
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise ValueError(f"Clip.mouth_boxes must have shape [T, 4], got {boxes.shape} for {self.video}")
            object.__setattr__(self, "mouth_boxes", boxes)
        if not self.clip_id:
            object.__setattr__(self, "clip_id", _default_clip_id(self.video.stem, self.start, self.end))
        if PurePosixPath(self.clip_id).is_absolute() or ".." in PurePosixPath(self.clip_id).parts:
            raise ValueError(f"Clip.clip_id must be a relative name without '..', got {self.clip_id!r}")


def _number(value: Any, column: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: column {column!r} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ManifestError(f"{where}: column {column!r} must be a finite number >= 0, got {value!r}")
    return number


def _clip_from_row(row: dict[str, Any], base: Path, where: str) -> Clip:
    video = row.get("video")
    if not isinstance(video, str) or not video.strip():
        raise ManifestError(f"{where}: the 'video' column is missing or empty")
    start = _number(row.get("start"), "start", where)
    end = _number(row.get("end"), "end", where)
    if start is not None and end is not None and end <= start:
        raise ManifestError(f"{where}: end ({end}) must be after start ({start})")
    path = Path(video.strip())
    resolved = path if path.is_absolute() else base / path
    clip_id = str(row.get("clip_id") or "").strip()
    if not clip_id:
        relative = path.with_suffix("") if not path.is_absolute() else Path(path.stem)
        clip_id = _default_clip_id(relative.as_posix(), start, end)
    try:
        return Clip(
            video=resolved,
            start=start,
            end=end,
            text=str(row.get("text") or ""),
            speaker=str(row.get("speaker") or ""),
            clip_id=clip_id,
        )
    except ValueError as error:
        raise ManifestError(f"{where}: {error}") from None


def read_manifest(path: str | Path) -> list[Clip]:
    """Reads a manifest of clips.

    Args:
        path: a ``.csv`` file with a header row, or a ``.jsonl`` file with one JSON object per line.
            Columns: ``video`` (required), ``start``, ``end`` (seconds, optional), ``text``, ``speaker``,
            ``clip_id`` (optional; default: the video's path without suffix, plus the range).

    Returns:
        The clips in file order.

    Raises:
        ManifestError: unreadable file, unknown format, a malformed row (the message names the line),
            or two rows with the same clip_id.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ManifestError(f"{path}: a manifest must be .csv or .jsonl, got {suffix or 'no suffix'!r}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: cannot read manifest: {error}") from None
    base = path.parent
    clips: list[Clip] = []
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "video" not in [name.strip() for name in reader.fieldnames]:
            raise ManifestError(f"{path}:1: the header must name a 'video' column, got {reader.fieldnames}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row:
                raise ManifestError(f"{where}: more fields than the header has columns")
            clips.append(_clip_from_row({k.strip(): v for k, v in row.items() if k is not None}, base, where))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ManifestError(f"{where}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ManifestError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
            clips.append(_clip_from_row(row, base, where))
    seen: dict[str, int] = {}
    for index, clip in enumerate(clips):
        if clip.clip_id in seen:
            raise ManifestError(f"{path}: clip_id {clip.clip_id!r} appears twice (rows {seen[clip.clip_id] + 1} and {index + 1})")
        seen[clip.clip_id] = index
    return clips
