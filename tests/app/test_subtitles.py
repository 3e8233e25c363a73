"""lipnet_ko.app.subtitles: timestamps, SRT/VTT/TXT/JSON writers, atomic files, the Korean font and burned-in captions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from lipnet_ko.app import subtitles
from lipnet_ko.app.subtitles import (
    Segment,
    Transcript,
    burn_subtitles,
    draw_subtitle,
    find_korean_font,
    format_timestamp,
    get_writer,
    to_json,
    to_srt,
    to_txt,
    to_vtt,
    wrap_text,
    write_transcript,
)
from lipnet_ko.video.reader import VideoError, read_frames
from videos import write_video

PANGRAM = "다람쥐 헌 쳇바퀴에 타고파"
LONG_TEXT = "안녕하세요 여러분 오늘은 한국어 입술 읽기에 대해서 이야기합니다"  # 31 syllables with spaces


def make_transcript() -> Transcript:
    return Transcript(
        source="clips/talk.mp4",
        segments=(
            Segment(0.0, 1.234, PANGRAM, score=-3.5, confidence=0.9),
            Segment(1.5, 2.0, "   "),  # nothing to show: skipped by the cue writers
            Segment(62.5, 65.0, "한국어 입 모양 읽기"),
            Segment(3725.007, 3726.5, "끝"),
        ),
        duration=3726.5,
        fps=25.0,
    )


SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"


def parse_srt(text: str) -> list[tuple[int, int, int, str]]:
    """SRT -> [(number, start_ms, end_ms, text with newlines)], written independently of the module."""
    cues = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        match = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert match, f"bad SRT time line: {lines[1]!r}"
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups())
        start = ((h1 * 60 + m1) * 60 + s1) * 1000 + ms1
        end = ((h2 * 60 + m2) * 60 + s2) * 1000 + ms2
        cues.append((int(lines[0]), start, end, "\n".join(lines[2:])))
    return cues


@pytest.mark.parametrize(
    "seconds, srt",
    [
        (0, "00:00:00,000"),
        (0.0004, "00:00:00,000"),
        (1.0005, "00:00:01,001"),  # halves round up, as written
        (59.9995, "00:01:00,000"),  # carries into the minutes instead of printing 1000 ms
        (3599.9999, "01:00:00,000"),
        (3661.5, "01:01:01,500"),
        (36000 + 0.25, "10:00:00,250"),
    ],
)
def test_format_timestamp(seconds, srt):
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, decimal=".") == srt.replace(",", ".")


def test_format_timestamp_never_1000_ms():
    for whole in range(0, 200):
        for frac in (0.9995, 0.99949, 0.9999, 0.001, 0.5):
            text = format_timestamp(whole + frac)
            h, m, s, ms = map(int, re.fullmatch(SRT_TIME, text).groups())
            assert ms < 1000 and s < 60 and m < 60
            assert ((h * 60 + m) * 60 + s) * 1000 + ms == pytest.approx((whole + frac) * 1000, abs=0.5 + 1e-6)


def test_format_timestamp_options_and_errors():
    assert format_timestamp(62.345, decimal=".", always_hours=False) == "01:02.345"
    assert format_timestamp(3662.345, always_hours=False) == "01:01:02,345"
    with pytest.raises(ValueError, match=">= 0"):
        format_timestamp(-0.1)
    with pytest.raises(ValueError, match="finite"):
        format_timestamp(float("nan"))


def test_segment_validation():
    with pytest.raises(ValueError, match="start must be >= 0"):
        Segment(-1.0, 1.0, "가")
    with pytest.raises(ValueError, match="before its start"):
        Segment(2.0, 1.0, "가")
    with pytest.raises(ValueError, match="confidence"):
        Segment(0.0, 1.0, "가", confidence=1.5)
    assert Segment(1, 1, "").duration == 0.0 and isinstance(Segment(1, 2, "").start, float)


def test_transcript_text_skips_empty_segments():
    transcript = make_transcript()
    assert transcript.text == f"{PANGRAM} 한국어 입 모양 읽기 끝"
    assert Transcript("x.mp4", [Segment(0, 1, "가")], None, None).segments == (Segment(0, 1, "가"),)


def test_srt_round_trip():
    transcript = make_transcript()
    srt = to_srt(transcript)
    cues = parse_srt(srt)
    visible = [s for s in transcript.segments if s.text.strip()]
    assert [c[0] for c in cues] == [1, 2, 3]  # the blank segment leaves no gap in the numbering
    assert [(c[1], c[2]) for c in cues] == [(0, 1234), (62500, 65000), (3725007, 3726500)]
    assert [c[3] for c in cues] == [s.text for s in visible]
    assert srt.endswith("\n") and "\n\n\n" not in srt


def test_vtt():
    vtt = to_vtt(make_transcript())
    blocks = vtt.strip("\n").split("\n\n")
    assert blocks[0] == "WEBVTT"
    assert blocks[1].split("\n") == ["00:00:00.000 --> 00:00:01.234", PANGRAM]
    assert len(blocks) == 4  # header + three visible cues
    escaped = to_vtt(Transcript("x", [Segment(0, 1, "a <b> & c")]))
    assert "a &lt;b&gt; &amp; c" in escaped


def test_long_text_wraps_at_spaces_into_two_lines():
    lines = wrap_text(LONG_TEXT)
    assert len(lines) == 2
    assert " ".join(lines) == LONG_TEXT
    assert all(len(line) <= 20 for line in lines)
    assert wrap_text(PANGRAM) == [PANGRAM]  # short text stays on one line
    assert wrap_text("가" * 30) == ["가" * 30]  # no space to break at
    assert wrap_text("  a \n b ") == ["a b"]
    assert len(wrap_text(" ".join(["가나다"] * 30))) == 2  # never more than two lines
    cue = parse_srt(to_srt(Transcript("x", [Segment(0, 2, LONG_TEXT)])))[0]
    assert cue[3] == "\n".join(lines)
    # A narrow (Latin) character counts half a syllable: 36 letters fit one line of 20.
    assert len(wrap_text("abcdefghi " * 3 + "abcde")) == 1


def test_txt_and_json_round_trip():
    transcript = make_transcript()
    assert to_txt(transcript).splitlines() == [PANGRAM, "한국어 입 모양 읽기", "끝"]
    text = to_json(transcript)
    assert PANGRAM in text  # ensure_ascii=False: Hangul is not escaped
    payload = json.loads(text)
    assert payload["segments"][0] == {"start": 0.0, "end": 1.234, "text": PANGRAM, "score": -3.5, "confidence": 0.9}
    assert Transcript.from_dict(payload) == transcript
    with pytest.raises(ValueError, match="missing"):
        Transcript.from_dict({"source": "x", "segments": [{"start": 0.0, "text": "가"}]})


def test_json_rounds_times_to_the_millisecond_as_srt_shows_them():
    start, end = 0.1 + 0.2, 2.3200000000000003  # 0.30000000000000004 and 2.3200000000000003 as floats
    segment = Segment(start, end, "가", score=-1.234567891, confidence=0.123456)
    transcript = Transcript("x.mp4", [segment], duration=2.9999999999999996)
    text = to_json(transcript)
    assert '"start": 0.3,' in text and '"end": 2.32,' in text and '"duration": 3.0,' in text
    assert "0000000" not in text
    segment = json.loads(text)["segments"][0]
    assert segment["score"] == -1.2346 and segment["confidence"] == 0.1235
    back = Transcript.from_dict(json.loads(text))
    assert to_srt(back) == to_srt(transcript) and to_vtt(back) == to_vtt(transcript)  # the cue times are the same ms
    assert subtitles.round_ms(1.0005) == 1.001 and subtitles.round_ms(59.9995) == 60.0  # halves up, as format_timestamp
    # a score of -inf (no hypothesis) is not valid JSON: it is written as null
    assert json.loads(to_json(Transcript("x", [Segment(0, 1, "", score=float("-inf"))])))["segments"][0]["score"] is None


def test_transcript_warnings_round_trip_through_json():
    transcript = Transcript("x.mp4", [], duration=0.12, fps=25.0, warnings=["video too short to read: 3 frame(s)"])
    payload = json.loads(to_json(transcript))
    assert payload["warnings"] == ["video too short to read: 3 frame(s)"] and payload["segments"] == []
    assert Transcript.from_dict(payload) == transcript
    assert json.loads(to_json(make_transcript()))["warnings"] == []
    with pytest.raises(ValueError, match="warnings"):
        Transcript.from_dict({"source": "x", "segments": [], "warnings": "oops"})


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "json"])
def test_get_writer(fmt):
    assert get_writer(fmt) is getattr(subtitles, f"to_{fmt}")
    assert get_writer(f".{fmt.upper()}") is get_writer(fmt)


def test_get_writer_unknown_format_lists_valid_ones():
    with pytest.raises(ValueError, match="txt, srt, vtt, json"):
        get_writer("ass")


def test_write_transcript(tmp_path):
    transcript = make_transcript()
    out_dir = tmp_path / "out" / "nested"
    written = write_transcript(transcript, out_dir, "talk", ["srt", "vtt", "json", "txt"])
    assert list(written) == ["srt", "vtt", "json", "txt"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["talk.json", "talk.srt", "talk.txt", "talk.vtt"]  # no temp files
    assert written["srt"].read_text(encoding="utf-8") == to_srt(transcript)
    assert Transcript.from_dict(json.loads(written["json"].read_text(encoding="utf-8"))) == transcript
    # Overwriting replaces the file in place.
    other = Transcript("y.mp4", [Segment(0, 1, "새 자막")])
    write_transcript(other, out_dir, "talk", "srt")
    assert parse_srt(written["srt"].read_text(encoding="utf-8"))[0][3] == "새 자막"


def test_write_transcript_unknown_format_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="valid formats"):
        write_transcript(make_transcript(), tmp_path / "out", "talk", ["srt", "docx"])
    assert not (tmp_path / "out").exists()


def test_write_transcript_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(subtitles.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_transcript(make_transcript(), tmp_path, "talk", ["srt"])
    assert list(tmp_path.iterdir()) == []


def test_write_transcript_writes_all_formats_or_none(tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    old = write_transcript(Transcript("old.mp4", [Segment(0, 1, "옛 자막")]), out_dir, "talk", ["srt"])["srt"].read_text()
    real_write_bytes = Path.write_bytes

    def full_disk_on_json(self, data):
        if ".talk.json." in self.name:
            raise OSError(28, "No space left on device")
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk_on_json)
    with pytest.raises(OSError, match="No space left"):
        write_transcript(make_transcript(), out_dir, "talk", ["txt", "srt", "json", "vtt"])
    # the txt and srt rendered before the failure were not moved into place, and no temporary file is left
    assert sorted(p.name for p in out_dir.iterdir()) == ["talk.srt"]
    assert (out_dir / "talk.srt").read_text() == old


def glyph_bitmap(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    image = Image.new("L", (200, 60), 0)
    ImageDraw.Draw(image).text((5, 5), text, font=font, fill=255)
    return np.asarray(image)


def test_find_korean_font_renders_hangul():
    path = find_korean_font()
    assert path.is_file() and path.suffix.lower() == ".ttf"
    font = ImageFont.truetype(str(path), 32)
    hello = glyph_bitmap(font, "안녕하세요")
    assert (hello > 0).sum() > 200
    # A font without Hangul draws every syllable as the same "tofu" box; real glyphs differ.
    ga, na = glyph_bitmap(font, "가"), glyph_bitmap(font, "나")
    assert (ga > 0).any() and (na > 0).any()
    assert not np.array_equal(ga, na)


def test_find_korean_font_does_not_import_matplotlib():
    code = (
        "import sys; from lipnet_ko.app.subtitles import find_korean_font; find_korean_font(); "
        "sys.exit(1 if 'matplotlib' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], timeout=60).returncode == 0


def test_find_korean_font_env_override_and_missing(tmp_path, monkeypatch):
    font_copy = tmp_path / "MyHangul.ttf"
    font_copy.write_bytes(find_korean_font().read_bytes())
    monkeypatch.setenv(subtitles.FONT_ENV_VAR, str(font_copy))
    assert find_korean_font() == font_copy
    monkeypatch.setenv(subtitles.FONT_ENV_VAR, str(tmp_path / "missing.ttf"))
    with pytest.raises(FileNotFoundError, match=subtitles.FONT_ENV_VAR):
        find_korean_font()
    monkeypatch.delenv(subtitles.FONT_ENV_VAR)
    monkeypatch.setattr(subtitles, "FONT_PACKAGE", "no_such_font_package_xyz")
    monkeypatch.setattr(subtitles, "SYSTEM_FONT_PATHS", (tmp_path / "nope.ttf",))
    with pytest.raises(FileNotFoundError, match="fonts-nanum"):
        find_korean_font()


def test_draw_subtitle_bottom_only_and_input_untouched():
    frame = np.full((120, 160, 3), 128, np.uint8)
    before = frame.copy()
    out = draw_subtitle(frame, PANGRAM)
    np.testing.assert_array_equal(frame, before)
    assert out.shape == frame.shape and out.dtype == np.uint8 and out is not frame
    changed_rows = np.nonzero((out != frame).any(axis=(1, 2)))[0]
    assert changed_rows.size > 0 and changed_rows.min() > 120 // 2  # drawn in the lower half
    assert (out == 255).all(axis=2).any() and (out < 60).all(axis=2).any()  # white text on a dark box
    np.testing.assert_array_equal(draw_subtitle(frame, "   "), frame)
    with pytest.raises(ValueError, match="uint8"):
        draw_subtitle(frame.astype(np.float32), PANGRAM)


def test_draw_subtitle_font_scales_with_frame_height():
    small = draw_subtitle(np.zeros((120, 400, 3), np.uint8), "가나다", box_opacity=0)
    large = draw_subtitle(np.zeros((480, 400, 3), np.uint8), "가나다", box_opacity=0)
    assert (large > 128).sum() > 4 * (small > 128).sum()


def moving_bar_frames(count: int, height: int, width: int) -> np.ndarray:
    """Mid-grey frames with a bright bar in the top third that moves right one step per frame (frames differ)."""
    frames = np.full((count, height, width, 3), 110, np.uint8)
    for i in range(count):
        x = (i * 7) % (width - 10)
        frames[i, 5 : height // 4, x : x + 10] = 230
    return frames


def bottom_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference over the bottom quarter of two frames."""
    h = a.shape[0]
    return float(np.abs(a[3 * h // 4 :].astype(np.int16) - b[3 * h // 4 :].astype(np.int16)).mean())


SEGMENT = Segment(0.75, 1.35, PANGRAM)  # at 10 fps: frames 8..13 (t = 0.8 ... 1.3 s)


def test_burn_subtitles_mp4(tmp_path):
    source = write_video(tmp_path / "src.avi", moving_bar_frames(20, 120, 160), fps=10.0)
    transcript = Transcript(str(source), [Segment(0.0, 0.0, "보이지 않음"), SEGMENT, Segment(5.0, 6.0, "영상 뒤")])
    out = burn_subtitles(source, transcript, tmp_path / "out" / "burned.mp4")
    assert out == tmp_path / "out" / "burned.mp4" and sorted(os.listdir(out.parent)) == ["burned.mp4"]
    original, burned = read_frames(source), read_frames(out)
    assert burned.frames.shape == original.frames.shape
    assert burned.fps == pytest.approx(10.0)
    inside = [i for i, t in enumerate(original.timestamps) if SEGMENT.start <= t < SEGMENT.end]
    assert inside == list(range(8, 14))
    # mp4v re-encoding alone shifts the flat grey by a few levels; the caption's box and text change far more.
    diffs = np.array([bottom_diff(a, b) for a, b in zip(original.frames, burned.frames)])
    outside = np.setdiff1d(np.arange(20), inside)
    assert diffs[outside].max() < 5, diffs.round(1)
    assert diffs[inside].min() > 15 and diffs[inside].min() > 4 * diffs[outside].max(), diffs.round(1)
    # The top of every frame (the moving bar) survives.
    top = np.abs(original.frames[:, :30].astype(int) - burned.frames[:, :30].astype(int)).mean()
    assert top < 4


def test_burn_subtitles_gif(tmp_path):
    source = write_video(tmp_path / "src.avi", moving_bar_frames(20, 100, 400), fps=25.0)
    segment = Segment(0.3, 0.5, PANGRAM)  # source frames 8..12; kept (every 2nd) frames 8, 10, 12 -> GIF frames 4..6
    out = burn_subtitles(source, Transcript(str(source), [segment]), tmp_path / "burned.gif")
    assert sorted(os.listdir(tmp_path)) == ["burned.gif", "src.avi"]
    original = read_frames(source).frames
    with Image.open(out) as gif:
        assert gif.size == (360, 90)  # at most 360 px wide, aspect kept
        assert gif.n_frames == 10  # 25 fps -> every 2nd frame, 12.5 fps
        assert gif.info["duration"] == 80
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB")))
    for k, frame in enumerate(frames):
        reference = cv2.resize(original[2 * k], (360, 90), interpolation=cv2.INTER_AREA)
        diff = bottom_diff(reference, frame)
        if k in (4, 5, 6):
            assert diff > 6, f"GIF frame {k} should carry the caption (diff {diff:.1f})"
        else:
            assert diff < 2, f"GIF frame {k} should be unchanged (diff {diff:.1f})"


def test_burn_subtitles_bad_extension_writes_nothing(tmp_path):
    source = write_video(tmp_path / "src.avi", moving_bar_frames(5, 48, 64))
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        burn_subtitles(source, Transcript(str(source), [SEGMENT]), tmp_path / "out" / "burned.avi")
    assert sorted(os.listdir(tmp_path)) == ["src.avi"]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_burn_subtitles_unreadable_video_leaves_no_output(tmp_path, suffix):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoError, match="cannot open video"):
        burn_subtitles(broken, Transcript(str(broken), [SEGMENT]), tmp_path / f"burned{suffix}")
    with pytest.raises(VideoError, match="not found"):
        burn_subtitles(tmp_path / "missing.mp4", Transcript("missing.mp4", [SEGMENT]), tmp_path / f"burned{suffix}")
    assert sorted(os.listdir(tmp_path)) == ["broken.mp4"]


def test_burn_subtitles_failure_midway_removes_temp_file(tmp_path, monkeypatch):
    source = write_video(tmp_path / "src.avi", moving_bar_frames(10, 48, 64), fps=10.0)
    target = tmp_path / "burned.mp4"
    target.write_bytes(b"previous output")

    class Interrupted(Exception):
        pass

    def exploding(self, frame, t):
        if t > 0.45:
            raise Interrupted("stop")
        return frame, False

    monkeypatch.setattr(subtitles._Captioner, "__call__", exploding)
    with pytest.raises(Interrupted):
        burn_subtitles(source, Transcript(str(source), [SEGMENT]), target)
    assert sorted(os.listdir(tmp_path)) == ["burned.mp4", "src.avi"]
    assert target.read_bytes() == b"previous output"  # the old file is untouched
