"""Subtitles: a ``Transcript`` of timed ``Segment``s -> txt/srt/vtt/json files, and Korean captions burned into video.

Owns everything downstream of decoded text: cue timestamps and line wrapping, the text formats
(``get_writer``, ``write_transcript``), finding a font with Hangul glyphs (``find_korean_font``) and
drawing captions onto frames (``draw_subtitle``, ``burn_subtitles``). OpenCV's ``putText`` only has
Hershey fonts, which have no Hangul, so captions are rendered with Pillow's FreeType bindings.

Every file is written to a temporary name in the destination folder and moved into place with
``os.replace``: a reader sees either no file or a complete one.
"""

from __future__ import annotations

import bisect
import importlib.util
import json
import logging
import math
import os
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lipnet_ko.files import temp_path
from lipnet_ko.video.reader import VideoError, VideoReader

logger = logging.getLogger(__name__)

MAX_LINE_CHARS = 20  # Hangul syllables per caption line before wrapping; narrow characters count as half
MAX_LINES = 2  # lines per cue; longer text is balanced over two lines rather than dropped
FONT_ENV_VAR = "LIPNET_KO_FONT"  # path to a .ttf/.otf with Hangul glyphs; wins over the search below
FONT_PACKAGE = "koreanize_matplotlib"  # a dependency (setup.cfg) whose wheel ships NanumGothic
FONT_FILE = "NanumGothic.ttf"
SYSTEM_FONT_PATHS = (
    Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf"),  # Debian/Ubuntu fonts-nanum
    Path("/usr/share/fonts/nanum/NanumGothic.ttf"),  # Arch/Fedora-style layouts
)
FONT_HEIGHT_FRACTION = 0.06  # caption font size in pixels per pixel of frame height: 65 px at 1080p, 17 px on GRID's 288
MIN_FONT_PX = 8  # below this Hangul strokes merge; tiny frames get this size anyway
BOX_OPACITY = 0.6  # alpha of the dark box behind the caption (0 = no box)
GIF_MAX_WIDTH = 360  # pixels; wider videos are downscaled for GIF output
GIF_MAX_FPS = 12.5  # GIF frames per second at most: every 2nd frame of a 25 fps video
BURN_EXTENSIONS = (".mp4", ".gif")


@dataclass(frozen=True)
class Segment:
    """One caption: ``text`` shown from ``start`` to ``end`` seconds after the start of the video."""

    start: float  # seconds, >= 0
    end: float  # seconds, >= start
    text: str
    score: float | None = None  # decoder score (e.g. beam log-probability); None = unknown
    # In [0, 1]; None = unknown. ``transcribe`` gives the model's per-frame probability of this text (see there).
    confidence: float | None = None

    def __post_init__(self):
        for name in ("start", "end"):  # ints become floats, so JSON output does not depend on how a caller typed 0
            object.__setattr__(self, name, float(getattr(self, name)))
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ValueError(f"segment times must be finite, got start={self.start}, end={self.end}")
        if self.start < 0:
            raise ValueError(f"segment start must be >= 0 seconds, got start={self.start}")
        if self.end < self.start:
            raise ValueError(f"segment end ({self.end} s) must not be before its start ({self.start} s)")
        if not isinstance(self.text, str):
            raise ValueError(f"segment text must be a str, got {type(self.text).__name__}")
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"segment confidence must be in [0, 1], got {self.confidence}")

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.end - self.start

    def to_dict(self) -> dict:
        """JSON-ready form: times rounded to the millisecond (as SRT and VTT show them), score and confidence to 4 decimals."""
        return {"start": round_ms(self.start), "end": round_ms(self.end), "text": self.text,
                "score": _round4(self.score), "confidence": _round4(self.confidence)}  # fmt: skip


@dataclass(frozen=True)
class Transcript:
    """The timed text of one video, as ``transcribe`` returns it and the writers consume it."""

    source: str  # the video's path
    segments: tuple[Segment, ...]  # in time order
    duration: float | None = None  # seconds of video transcribed; None = unknown
    fps: float | None = None  # frame rate of the source video; None = unknown
    warnings: tuple[str, ...] = ()  # why the text may be missing or partial (e.g. "video too short to read: ...")

    def __post_init__(self):
        object.__setattr__(self, "segments", tuple(self.segments))  # a list would make the frozen object mutable
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        object.__setattr__(self, "source", str(self.source))  # a Path is accepted; JSON needs a str
        for segment in self.segments:
            if not isinstance(segment, Segment):
                raise ValueError(f"transcript segments must be Segment objects, got {type(segment).__name__}")
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration >= 0):
            raise ValueError(f"transcript duration must be a finite number of seconds >= 0, got {self.duration}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"transcript fps must be > 0, got {self.fps}")

    @property
    def text(self) -> str:
        """Segment texts joined by a space; empty segments are skipped."""
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict:
        """JSON-ready form; ``from_dict`` reads it back. ``text`` is included for readers and ignored on load.

        Times (segment ``start``/``end``, ``duration``) are rounded to the millisecond, the resolution of SRT and
        VTT, so ``2.3200000000000003`` is written as ``2.32``; a transcript whose times are whole milliseconds
        reads back equal.
        """
        return {
            "source": self.source,
            "duration": None if self.duration is None else round_ms(self.duration),
            "fps": self.fps,
            "text": self.text,
            "warnings": list(self.warnings),
            "segments": [s.to_dict() for s in self.segments],
        }

    @classmethod
    def from_dict(cls, payload: dict) -> "Transcript":
        """Inverse of ``to_dict``. A segment needs ``start``, ``end`` and ``text``; ``score``/``confidence`` may be missing."""
        missing = [key for key in ("source", "segments") if key not in payload]
        if missing:
            raise ValueError(f"transcript dict is missing {missing}; expected the keys written by Transcript.to_dict()")
        segments = []
        for i, item in enumerate(payload["segments"]):
            lacking = [key for key in ("start", "end", "text") if key not in item]
            if lacking:
                raise ValueError(f"segment {i} of the transcript dict is missing {lacking}")
            segments.append(
                Segment(float(item["start"]), float(item["end"]), item["text"], item.get("score"), item.get("confidence"))
            )
        warnings = payload.get("warnings") or []
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise ValueError(f"transcript dict 'warnings' must be a list of strings, got {warnings!r}")
        return cls(payload["source"], tuple(segments), payload.get("duration"), payload.get("fps"), tuple(warnings))


def _milliseconds(seconds: float) -> int:
    """Whole milliseconds, halves up, judged on the decimal the float prints as (``repr``): what the caller wrote."""
    return int((Decimal(repr(float(seconds))) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def round_ms(seconds: float) -> float:
    """Seconds rounded to the millisecond exactly as ``format_timestamp`` rounds them: ``2.3200000000000003 -> 2.32``."""
    if not math.isfinite(seconds):
        raise ValueError(f"time must be a finite number of seconds, got {seconds}")
    return _milliseconds(seconds) / 1000


def _round4(value: float | None) -> float | None:
    """4 decimals; None stays None, and so does a non-finite score (JSON has no infinity)."""
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def format_timestamp(seconds: float, *, decimal: str = ",", always_hours: bool = True) -> str:
    """Seconds -> ``"HH:MM:SS,mmm"`` (SRT; ``decimal="."`` for WebVTT).

    Rounds to the nearest millisecond, halves up, judged on the decimal the float prints as, so
    ``59.9995`` gives ``"00:01:00,000"`` (never ``"00:00:59,1000"``). With ``always_hours=False`` the
    hours are left out while they are zero (``"01:02.345"``).
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"timestamp must be a finite number of seconds >= 0, got {seconds}")
    total_ms = _milliseconds(seconds)  # repr() is the shortest decimal that reads back as the same float
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    clock = f"{minutes:02d}:{secs:02d}{decimal}{ms:03d}"
    return f"{hours:02d}:{clock}" if always_hours or hours else clock


def text_width(text: str) -> float:
    """Width in Hangul syllables: wide (East Asian W/F) characters count 1, all others 1/2."""
    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.5 for c in text)


def clean_text(text: str) -> str:
    """Caption text: NFC (fonts draw syllables, not loose jamo) with every whitespace run made one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def wrap_text(text: str, max_line_chars: float = MAX_LINE_CHARS) -> list[str]:
    """Splits caption text into at most ``MAX_LINES`` lines at spaces.

    Text up to ``max_line_chars`` wide (see ``text_width``) stays on one line. Longer text is cut at the
    space that makes the wider of the two lines narrowest, preferring a longer bottom line on ties; a
    text longer than two full lines gets two over-long lines, and a text without spaces stays whole.
    """
    if max_line_chars <= 0:
        raise ValueError(f"max_line_chars must be > 0, got {max_line_chars}")
    text = clean_text(text)
    words = text.split(" ")
    if text_width(text) <= max_line_chars or len(words) < 2:
        return [text] if text else []
    best = min(
        range(1, len(words)),
        key=lambda k: (
            max(text_width(" ".join(words[:k])), text_width(" ".join(words[k:]))),
            text_width(" ".join(words[:k])) > text_width(" ".join(words[k:])),
        ),
    )
    return [" ".join(words[:best]), " ".join(words[best:])]


def _cues(transcript: Transcript, max_line_chars: float) -> Iterator[tuple[Segment, list[str]]]:
    """(segment, wrapped lines) for every segment with visible text, in order."""
    for segment in transcript.segments:
        lines = wrap_text(segment.text, max_line_chars)
        if lines:
            yield segment, lines


def to_srt(transcript: Transcript, *, max_line_chars: float = MAX_LINE_CHARS) -> str:
    """SubRip text: cues numbered from 1, separated by a blank line; segments without text are skipped."""
    blocks = []
    for number, (segment, lines) in enumerate(_cues(transcript, max_line_chars), start=1):
        times = f"{format_timestamp(segment.start)} --> {format_timestamp(segment.end)}"
        blocks.append("\n".join([str(number), times, *lines]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _escape_vtt(line: str) -> str:
    # WebVTT cue text is markup: '&' and '<' start entities and tags, and '-->' may not appear.
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(transcript: Transcript, *, max_line_chars: float = MAX_LINE_CHARS) -> str:
    """WebVTT text: a ``WEBVTT`` header, then one cue per segment with text."""
    blocks = ["WEBVTT"]
    for segment, lines in _cues(transcript, max_line_chars):
        times = f"{format_timestamp(segment.start, decimal='.')} --> {format_timestamp(segment.end, decimal='.')}"
        blocks.append("\n".join([times, *map(_escape_vtt, lines)]))
    return "\n\n".join(blocks) + "\n"


def to_txt(transcript: Transcript) -> str:
    """Plain text, one line per segment with text."""
    lines = [clean_text(s.text) for s in transcript.segments if clean_text(s.text)]
    return "".join(f"{line}\n" for line in lines)


def to_json(transcript: Transcript) -> str:
    """``Transcript.to_dict()`` as indented JSON, Hangul kept as is (not ``\\uXXXX``)."""
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


WRITERS: dict[str, Callable[[Transcript], str]] = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json}


def get_writer(fmt: str) -> Callable[[Transcript], str]:
    """The function that renders a transcript as ``fmt`` (txt, srt, vtt or json; case and a leading dot ignored)."""
    key = fmt.lower().lstrip(".")
    if key not in WRITERS:
        raise ValueError(f"unknown subtitle format {fmt!r}; valid formats: {', '.join(WRITERS)}")
    return WRITERS[key]


def write_transcript(transcript: Transcript, out_dir: str | Path, stem: str, formats: str | Iterable[str]) -> dict[str, Path]:
    """Writes ``out_dir/stem.<fmt>`` for each format, atomically, as UTF-8: each file whole or not at all.

    Every file is rendered, then written under a temporary name, and only when all are on disk are they
    moved into place; a failure before that (an unknown format, a full disk, no permission) removes the
    temporary files and leaves ``out_dir`` as it was. (A rename failing after the first would leave the
    files already moved in place: renames within one folder do not fail in practice.)

    Args:
        transcript: what to write.
        out_dir: destination folder, created if missing.
        stem: file name without extension, usually the video's stem.
        formats: "srt", or several such as ("srt", "vtt", "json"); see ``WRITERS``.

    Returns:
        {format: path written}, in the order given.

    Raises:
        ValueError: an unknown format; raised before anything is written.
    """
    if isinstance(formats, str):
        formats = [formats]
    writers = {fmt.lower().lstrip("."): get_writer(fmt) for fmt in formats}
    # Render everything first, so a failing writer leaves no file behind.
    texts = {fmt: writer(transcript) for fmt, writer in writers.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {fmt: out_dir / f"{stem}.{fmt}" for fmt in texts}
    temps = {fmt: temp_path(path) for fmt, path in paths.items()}
    written: dict[str, Path] = {}
    try:
        for fmt, text in texts.items():
            temps[fmt].write_bytes(text.encode("utf-8"))  # bytes: no newline translation on Windows
        for fmt, path in paths.items():
            os.replace(temps[fmt], path)
            written[fmt] = path
            logger.debug("wrote %s", path)
    except BaseException:
        for fmt, temp in temps.items():
            if fmt not in written:
                temp.unlink(missing_ok=True)
        raise
    return written


def _font_candidates() -> Iterator[Path]:
    try:
        # find_spec locates the package without running it, so matplotlib is never imported here.
        spec = importlib.util.find_spec(FONT_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        yield Path(list(spec.submodule_search_locations)[0]) / "fonts" / FONT_FILE
    yield from SYSTEM_FONT_PATHS


def find_korean_font() -> Path:
    """Path to a font with Hangul glyphs (NanumGothic).

    Looks at ``$LIPNET_KO_FONT`` first (an explicit choice wins), then the NanumGothic bundled in the
    ``koreanize-matplotlib`` wheel, then the system paths in ``SYSTEM_FONT_PATHS``.

    Raises:
        FileNotFoundError: ``$LIPNET_KO_FONT`` names a missing file, or no font was found; the message says how to install one.
    """
    override = os.environ.get(FONT_ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"{FONT_ENV_VAR}={override!r} is not a file; point it at a .ttf/.otf with Hangul glyphs or unset it"
            )
        return path
    candidates = list(_font_candidates())
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no Korean font found (looked at {', '.join(map(str, candidates))}). Install one with "
        f"`pip install koreanize-matplotlib` (bundles {FONT_FILE}) or `sudo apt-get install fonts-nanum`, "
        f"or set {FONT_ENV_VAR}=/path/to/a/hangul/font.ttf"
    )


@lru_cache(maxsize=32)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


FontLike = str | Path | ImageFont.FreeTypeFont | None


def _sized_font(font: FontLike, size: int) -> ImageFont.FreeTypeFont:
    if isinstance(font, ImageFont.FreeTypeFont):
        return font.font_variant(size=size)
    return _load_font(str(font if font is not None else find_korean_font()), size)


@dataclass(frozen=True, eq=False)
class _Overlay:
    """A rendered caption: straight-alpha colour over the frame region starting at (y0, x0)."""

    y0: int
    x0: int
    rgb: np.ndarray  # float32 [h, w, 3]; grey levels only, so it is the same in RGB and BGR
    alpha: np.ndarray  # float32 [h, w, 1] in [0, 1]

    def apply(self, frame: np.ndarray) -> np.ndarray:
        out = frame.copy()
        h, w = self.alpha.shape[:2]
        region = out[self.y0 : self.y0 + h, self.x0 : self.x0 + w].astype(np.float32)
        blended = region * (1.0 - self.alpha) + self.rgb * self.alpha
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out


def _render_overlay(text: str, width: int, height: int, font: FontLike, *, font_height_fraction: float,
                    max_line_chars: float, box_opacity: float) -> _Overlay | None:  # fmt: skip
    """Lays out ``text`` centred at the bottom of a ``width`` x ``height`` frame; None when there is nothing to draw."""
    lines = wrap_text(text, max_line_chars)
    if not lines:
        return None
    size = max(MIN_FONT_PX, round(height * font_height_fraction))
    sized = _sized_font(font, size)
    widest = max(sized.getlength(line) for line in lines) + 2 * max(1, round(size / 12))
    if widest > 0.94 * width and size > MIN_FONT_PX:
        # Shrink to fit the frame width; text width is close to proportional to the font size.
        size = max(MIN_FONT_PX, math.floor(size * 0.94 * width / widest))
        sized = _sized_font(font, size)
    stroke = max(1, round(size / 12))
    pad = max(1, round(size * 0.25))
    ascent, descent = sized.getmetrics()
    line_height = ascent + descent + round(size * 0.2)
    last_baseline = height - round(height * 0.04) - descent - pad
    centre = width / 2
    anchors = [(centre, last_baseline - (len(lines) - 1 - k) * line_height) for k in range(len(lines))]
    boxes = [sized.getbbox(line, anchor="ms", stroke_width=stroke) for line in lines]
    left = min(x + b[0] for (x, _), b in zip(anchors, boxes)) - pad
    top = min(y + b[1] for (_, y), b in zip(anchors, boxes)) - pad
    right = max(x + b[2] for (x, _), b in zip(anchors, boxes)) + pad
    bottom = max(y + b[3] for (_, y), b in zip(anchors, boxes)) + pad
    x0, y0 = max(0, math.floor(left)), max(0, math.floor(top))
    x1, y1 = min(width, math.ceil(right)), min(height, math.ceil(bottom))
    if x1 <= x0 or y1 <= y0:
        return None
    image = Image.new("RGBA", (x1 - x0, y1 - y0), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, x1 - x0, y1 - y0), fill=(0, 0, 0, round(255 * box_opacity)))
    for line, (x, y) in zip(lines, anchors):
        draw.text((x - x0, y - y0), line, font=sized, anchor="ms", fill=(255, 255, 255, 255),
                  stroke_width=stroke, stroke_fill=(0, 0, 0, 255))  # fmt: skip
    rgba = np.asarray(image, dtype=np.float32)
    return _Overlay(y0, x0, rgba[:, :, :3], rgba[:, :, 3:] / 255.0)


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"expected a uint8 [H, W, 3] frame, got {type(frame).__name__} {getattr(frame, 'dtype', '')} {shape}")


def draw_subtitle(frame: np.ndarray, text: str, font: FontLike = None, *, font_height_fraction: float = FONT_HEIGHT_FRACTION,
                  max_line_chars: float = MAX_LINE_CHARS, box_opacity: float = BOX_OPACITY) -> np.ndarray:  # fmt: skip
    """Draws a caption centred at the bottom of a frame: white text, black outline, on a translucent dark box.

    Args:
        frame: uint8 [H, W, 3], BGR as OpenCV decodes it (RGB works the same: only grey levels are drawn).
        text: the caption; wrapped at spaces into at most two lines (``wrap_text``), shrunk to fit the width.
        font: a font file path, a loaded ``ImageFont.FreeTypeFont`` (resized here), or None for ``find_korean_font()``.
        font_height_fraction: font size in pixels per pixel of frame height (at least ``MIN_FONT_PX``).
        max_line_chars: line width in Hangul syllables before wrapping.
        box_opacity: alpha of the box behind the text; 0 draws the outlined text only.

    Returns:
        A new uint8 [H, W, 3] array; ``frame`` is not modified.
    """
    _check_frame(frame)
    overlay = _render_overlay(text, frame.shape[1], frame.shape[0], font, font_height_fraction=font_height_fraction,
                              max_line_chars=max_line_chars, box_opacity=box_opacity)  # fmt: skip
    return frame.copy() if overlay is None else overlay.apply(frame)


class _Captioner:
    """Finds the segment shown at a time and draws it, rendering each caption once per frame size."""

    def __init__(self, transcript: Transcript, font: FontLike):
        self.segments = sorted((s for s in transcript.segments if clean_text(s.text)), key=lambda s: s.start)
        self.starts = [s.start for s in self.segments]
        # Running maximum of the end times: a backward scan stops as soon as no earlier segment can still be on.
        self.max_ends = list(np.maximum.accumulate([s.end for s in self.segments])) if self.segments else []
        self.font = font
        self.overlays: dict[tuple[int, int, int], _Overlay | None] = {}

    def active(self, t: float) -> int | None:
        """Index of the segment on screen at ``t`` seconds (``start <= t < end``); the latest started wins overlaps."""
        i = bisect.bisect_right(self.starts, t) - 1
        while i >= 0 and self.max_ends[i] > t:
            if self.segments[i].end > t:
                return i
            i -= 1
        return None

    def __call__(self, frame: np.ndarray, t: float) -> tuple[np.ndarray, bool]:
        i = self.active(t)
        if i is None:
            return frame, False
        key = (i, frame.shape[0], frame.shape[1])
        if key not in self.overlays:
            self.overlays[key] = _render_overlay(self.segments[i].text, frame.shape[1], frame.shape[0], self.font,
                                                 font_height_fraction=FONT_HEIGHT_FRACTION,
                                                 max_line_chars=MAX_LINE_CHARS, box_opacity=BOX_OPACITY)  # fmt: skip
        overlay = self.overlays[key]
        return (frame, False) if overlay is None else (overlay.apply(frame), True)


def _write_mp4(reader: VideoReader, frames: Iterable[np.ndarray], captioner: _Captioner, path: Path) -> tuple[int, int]:
    writer = None
    count = captioned = 0
    try:
        for frame in frames:
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), reader.fps, (width, height))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write {path} with the mp4v codec (is it built with FFmpeg?)")
            frame, drawn = captioner(frame, reader.timestamps[-1])
            writer.write(frame)
            count += 1
            captioned += drawn
    finally:
        if writer is not None:
            writer.release()
    return count, captioned


def _write_gif(reader: VideoReader, frames: Iterable[np.ndarray], captioner: _Captioner, path: Path,
               max_width: int, max_fps: float) -> tuple[int, int]:  # fmt: skip
    images = []
    captioned = 0
    step = 1
    for index, frame in enumerate(frames):
        if index == 0:
            step = max(1, math.ceil(reader.fps / max_fps - 1e-9))
        if index % step:
            continue
        height, width = frame.shape[:2]
        if width > max_width:
            size = (max_width, max(1, round(height * max_width / width)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        frame, drawn = captioner(frame, reader.timestamps[-1])
        captioned += drawn
        # Palette images take a third of the memory of RGB ones while the whole GIF is held for saving.
        images.append(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).convert("P", palette=Image.Palette.ADAPTIVE))
    if images:
        duration_ms = 1000.0 * step / reader.fps
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=round(duration_ms), loop=0)
    return len(images), captioned


def burn_subtitles(video_path: str | Path, transcript: Transcript, out_path: str | Path, *, font: FontLike = None,
                   progress: bool = False, gif_max_width: int = GIF_MAX_WIDTH,
                   gif_max_fps: float = GIF_MAX_FPS) -> Path:  # fmt: skip
    """Writes a copy of a video with the transcript's captions drawn on its frames.

    Each frame shows the segment whose ``[start, end)`` contains the frame's timestamp (``draw_subtitle``).
    The output is written to a hidden temporary file beside ``out_path`` and moved into place, so a
    failure (unreadable input, codec error, Ctrl-C) leaves no output and no temporary file behind.

    Args:
        video_path: the source video; segment times are seconds from its start.
        transcript: the captions.
        out_path: ``.mp4`` (mp4v, the source frame rate and size) or ``.gif`` (at most ``gif_max_width``
            pixels wide and ``gif_max_fps`` frames per second, every n-th frame kept; meant for short clips,
            as every GIF frame is held in memory until it is saved).
        font: font file or ``ImageFont.FreeTypeFont``; None = ``find_korean_font()``.
        progress: show a tqdm progress bar over frames.

    Returns:
        ``out_path`` as a Path.

    Raises:
        ValueError: ``out_path`` has another extension; nothing is read or written.
        VideoError: the video cannot be opened or has no decodable frame.
        FileNotFoundError: no Korean font (see ``find_korean_font``).
    """
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in BURN_EXTENSIONS:
        raise ValueError(f"cannot burn subtitles into {out_path.name!r}: the output must end in {' or '.join(BURN_EXTENSIONS)}")
    if gif_max_width < 1 or gif_max_fps <= 0:
        raise ValueError(f"gif_max_width must be >= 1 and gif_max_fps > 0, got {gif_max_width} and {gif_max_fps}")
    if font is None:
        font = find_korean_font()  # fail before any output exists
    captioner = _Captioner(transcript, font)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(out_path)
    temp = temp.with_name(temp.name + suffix)  # OpenCV picks the container from the extension
    from tqdm import tqdm

    try:
        with VideoReader(video_path, rgb=False) as reader:
            with tqdm(total=reader.info.frame_count or None, unit="frame", disable=not progress, dynamic_ncols=True) as bar:
                frames = _counted(reader, bar)
                if suffix == ".gif":
                    count, captioned = _write_gif(reader, frames, captioner, temp, gif_max_width, gif_max_fps)
                else:
                    count, captioned = _write_mp4(reader, frames, captioner, temp)
        if count == 0:
            raise VideoError(f"no frames could be decoded: {video_path}")
        os.replace(temp, out_path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    logger.info("burned subtitles into %s: %d frames, %d with a caption", out_path, count, captioned)
    return out_path


def _counted(frames: Iterable[np.ndarray], bar) -> Iterator[np.ndarray]:
    for frame in frames:
        yield frame
        bar.update(1)
