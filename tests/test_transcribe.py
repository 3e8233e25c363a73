"""transcribe: one video -> segments with times -> txt/srt/vtt/json (+ burned-in video); batch errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lipnet_ko  # noqa: F401
from lipnet_ko.synth import SynthConfig
from lipnet_ko.tokenizer import JamoTokenizer

pytestmark = pytest.mark.dlib

REPO = Path(__file__).resolve().parents[1]
SENTENCE = "안녕 하세요"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One synthetic session video of three sentences, with its label JSON (the timing oracle)."""
    from lipnet_ko.synth import generate_corpus

    out = tmp_path_factory.mktemp("tx") / "corpus"
    generate_corpus(out, SynthConfig(speakers=1, sentences=3, sentences_per_session=3, held_out_speakers=0, seed=0))
    video = next(out.rglob("*.mp4"))
    label = json.loads(video.with_suffix(".json").read_text(encoding="utf-8"))
    return video, label


def _sentence_times(label) -> list[tuple[float, float]]:
    info = label[0]["Sentence_info"] if isinstance(label, list) else label["Sentence_info"]
    return [(float(s["start_time"]), float(s["end_time"])) for s in info]


class OracleBackend:
    """Stands in for a trained network: every clip's logits spell SENTENCE, spread over its frames."""

    def __init__(self, tokenizer):
        self.ids = tokenizer.encode(SENTENCE)
        self.vocab = tokenizer.vocab_size

    def __call__(self, crops, lengths):
        out = np.full((len(lengths), crops.shape[1], self.vocab), -10.0, np.float32)
        out[:, :, 0] = 0.0  # blank everywhere ...
        for row, n in enumerate(lengths):
            for k, token in enumerate(self.ids):  # ... except one frame per token, evenly spaced
                frame = int((k + 0.5) * n / len(self.ids))
                out[row, frame, :] = -10.0
                out[row, frame, token] = 0.0
        return out


@pytest.fixture(scope="module")
def oracle():
    from lipnet_ko.inference import Recognizer
    from lipnet_ko.model import model_config
    from lipnet_ko.preprocess import PreprocessConfig

    tokenizer = JamoTokenizer()
    config = model_config("tiny", vocabulary_size=tokenizer.vocab_size)
    return Recognizer(OracleBackend(tokenizer), config, tokenizer, PreprocessConfig(), source=Path("oracle"), format="keras")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder holding an untrained tiny model and its side files, as training writes them."""
    from runs import write_run

    from lipnet_ko.model import model_config

    folder = tmp_path_factory.mktemp("run")
    tokenizer = JamoTokenizer()
    write_run(folder, model_config("tiny", vocabulary_size=tokenizer.vocab_size), tokenizer)
    return folder


def test_segments_follow_the_sentences_and_carry_the_decoded_text(session, oracle):
    from lipnet_ko.transcribe import transcribe

    video, label = session
    timings = {}
    transcript = transcribe(video, oracle, timings=timings)
    truth = _sentence_times(label)
    segments = transcript.segments
    # Pauses between synthetic sentences are short (80-320 ms), so a sentence may be cut at a word
    # pause, but never merged with the next one or missed.
    assert len(truth) <= len(segments) <= 2 * len(truth)
    for start, end in truth:
        covered = sum(max(0.0, min(s.end, end) - max(s.start, start)) for s in segments)
        assert covered >= 0.8 * (end - start), (start, end, segments)
    for segment in segments:
        assert segment.text == SENTENCE
        inside = max(max(0.0, min(segment.end, end) - max(segment.start, start)) for start, end in truth)
        assert inside >= 0.7 * (segment.end - segment.start), segment
    assert all(a.end <= b.start for a, b in zip(transcript.segments, transcript.segments[1:]))
    assert 0 < transcript.segments[-1].end <= transcript.duration + 1e-6
    assert set(timings) >= {"decode", "face", "model", "search", "total"} and timings["total"] > 0


def test_long_utterances_are_windowed_and_merged_without_repeats(session, oracle):
    from lipnet_ko.segmentation import SegmentationConfig
    from lipnet_ko.transcribe import TranscribeOptions, transcribe

    video, _ = session
    options = TranscribeOptions(segmentation=SegmentationConfig(min_silence_s=5.0, max_segment_s=2.0, window_overlap_s=0.5))
    transcript = transcribe(video, oracle, options)
    assert len(transcript.segments) == 1  # the pauses are bridged: one utterance, read in windows
    words = transcript.segments[0].text.split()
    assert len(words) >= 2 and set(words) <= set(SENTENCE.split())


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lipnet_ko", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_writes_all_formats_and_reports_a_bad_file_without_stopping(session, run_folder, tmp_path):
    video, _ = session
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    out = tmp_path / "out"
    result = _cli("transcribe", str(broken), str(video), "--model", str(run_folder), "--out", str(out), "--beam", "4",
                  "--burn", str(tmp_path / "burned"))
    assert result.returncode == 1, result.stderr
    assert "broken.mp4: failed" in result.stderr and "1 of 2 video(s) transcribed; 1 failed" in result.stderr
    for ext in ("txt", "srt", "vtt", "json"):
        assert (out / f"{video.stem}.{ext}").exists()
    assert not list(out.glob("broken*")) and not [p for p in out.iterdir() if p.name.startswith(".")]
    doc = json.loads((out / f"{video.stem}.json").read_text(encoding="utf-8"))
    assert doc["segments"] and all(s["start"] < s["end"] <= doc["duration"] + 1e-6 for s in doc["segments"])
    vtt = (out / f"{video.stem}.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT")
    srt = (out / f"{video.stem}.srt").read_text(encoding="utf-8")
    cue_times = re.findall(r"(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)", srt)
    assert len(cue_times) == sum(1 for s in doc["segments"] if s["text"].strip())
    import cv2

    burned = cv2.VideoCapture(str(tmp_path / "burned" / f"{video.stem}.subtitled.mp4"))
    assert burned.isOpened() and int(burned.get(cv2.CAP_PROP_FRAME_COUNT)) > 0


def test_cli_without_a_model_says_how_to_get_one(session, tmp_path):
    video, _ = session
    result = _cli("transcribe", str(video), cwd=tmp_path)
    assert result.returncode == 2
    assert "python train.py" in result.stderr


def test_cli_rejects_bad_format_and_burn_target(session, run_folder):
    video, _ = session
    assert _cli("transcribe", str(video), "--model", str(run_folder), "--format", "docx").returncode == 2
    assert _cli("transcribe", str(video), str(video), "--model", str(run_folder), "--burn", "x.gif").returncode == 2


def test_a_video_without_a_face_fails_clearly(tmp_path, oracle):
    from videos import write_video

    from lipnet_ko.mouth import NoFaceError
    from lipnet_ko.transcribe import transcribe

    path = tmp_path / "wall.mp4"
    write_video(path, np.full((20, 120, 160, 3), 128, np.uint8), fourcc="mp4v")
    with pytest.raises(NoFaceError):
        transcribe(path, oracle)


def test_package_level_api_transcribes_with_a_loaded_model(session, run_folder):
    recognizer = lipnet_ko.load_model(run_folder)
    assert recognizer.tokenizer.vocab_size == recognizer.model_config.vocabulary_size
    video, _ = session
    transcript = lipnet_ko.transcribe(video, recognizer, lipnet_ko.TranscribeOptions(beam_width=1, lm=None))
    assert transcript.duration > 0 and all(s.end <= transcript.duration + 1e-6 for s in transcript.segments)
