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
from lipnet_ko.synth.corpus import SynthConfig
from lipnet_ko.text.tokenizer import JamoTokenizer

pytestmark = pytest.mark.dlib

REPO = Path(__file__).resolve().parents[2]
SENTENCE = "안녕 하세요"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One synthetic session video of three sentences, with its label JSON (the timing oracle)."""
    from lipnet_ko.synth.corpus import generate_corpus

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
    from lipnet_ko.model.inference import Recognizer
    from lipnet_ko.model.config import model_config
    from lipnet_ko.video.extract import PreprocessConfig

    tokenizer = JamoTokenizer()
    config = model_config("tiny", vocabulary_size=tokenizer.vocab_size)
    return Recognizer(OracleBackend(tokenizer), config, tokenizer, PreprocessConfig(), source=Path("oracle"), format="keras")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder holding an untrained tiny model and its side files, as training writes them."""
    from runs import write_run

    from lipnet_ko.model.config import model_config

    folder = tmp_path_factory.mktemp("run")
    tokenizer = JamoTokenizer()
    write_run(folder, model_config("tiny", vocabulary_size=tokenizer.vocab_size), tokenizer)
    return folder


@pytest.fixture(scope="module")
def utterance_times(session, oracle) -> list[tuple[float, float]]:
    """(start, end) of each segment the oracle reads: segmentation follows the mouth, so any model gets these."""
    from lipnet_ko.app.transcribe import TranscribeOptions, transcribe

    video, _ = session
    return [(s.start, s.end) for s in transcribe(video, oracle, TranscribeOptions(beam_width=1, lm=None)).segments]


def _assert_segments_in_order(segments, label, duration: float) -> None:
    """About one segment per sentence (a sentence may be cut at a word pause), in order, apart, inside the video."""
    assert len(_sentence_times(label)) <= len(segments) <= 2 * len(_sentence_times(label)), segments
    assert all(0 <= s.start < s.end for s in segments), segments
    assert all(a.end <= b.start for a, b in zip(segments, segments[1:])), segments
    assert segments[-1].end <= duration + 1e-6
    assert all(isinstance(s.text, str) for s in segments)


def test_segments_follow_the_sentences_and_carry_the_decoded_text(session, oracle):
    from lipnet_ko.app.transcribe import transcribe

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
    from lipnet_ko.video.segmentation import SegmentationConfig
    from lipnet_ko.app.transcribe import TranscribeOptions, transcribe

    video, _ = session
    options = TranscribeOptions(segmentation=SegmentationConfig(min_silence_s=5.0, max_segment_s=2.0, window_overlap_s=0.5))
    transcript = transcribe(video, oracle, options)
    assert len(transcript.segments) == 1  # the pauses are bridged: one utterance, read in windows
    words = transcript.segments[0].text.split()
    assert len(words) >= 2 and set(words) <= set(SENTENCE.split())


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lipnet_ko", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_writes_all_formats_and_reports_a_bad_file_without_stopping(session, run_folder, utterance_times, tmp_path):
    from lipnet_ko.app.subtitles import Transcript, to_srt, to_txt, to_vtt

    video, label = session
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
    transcript = Transcript.from_dict(doc)
    _assert_segments_in_order(transcript.segments, label, doc["duration"])
    assert [(s.start, s.end) for s in transcript.segments] == utterance_times
    assert doc["source"] == str(video) and doc["text"] == transcript.text
    # the other formats carry the same segments: same texts, same order, same times
    for ext, writer in (("txt", to_txt), ("srt", to_srt), ("vtt", to_vtt)):
        assert (out / f"{video.stem}.{ext}").read_text(encoding="utf-8") == writer(transcript), ext
    srt = (out / f"{video.stem}.srt").read_text(encoding="utf-8")
    cue_times = re.findall(r"(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)", srt)
    assert len(cue_times) == sum(1 for s in doc["segments"] if s["text"].strip())
    import cv2

    source = cv2.VideoCapture(str(video))
    burned = cv2.VideoCapture(str(tmp_path / "burned" / f"{video.stem}.subtitled.mp4"))
    try:
        assert burned.isOpened()
        assert int(burned.get(cv2.CAP_PROP_FRAME_COUNT)) == int(source.get(cv2.CAP_PROP_FRAME_COUNT)) > 0
    finally:
        source.release()
        burned.release()


def test_cli_without_a_model_says_how_to_get_one(session, tmp_path):
    video, _ = session
    result = _cli("transcribe", str(video), cwd=tmp_path)
    assert result.returncode == 2
    assert "error: no trained model at runs/latest" in result.stderr
    assert "python train.py" in result.stderr and "--model PATH" in result.stderr


def test_cli_rejects_bad_format_and_burn_target(session, run_folder, tmp_path):
    video, _ = session
    out = tmp_path / "out"
    common = ("--model", str(run_folder), "--out", str(out))
    result = _cli("transcribe", str(video), *common, "--format", "srt,docx")
    assert result.returncode == 2
    assert "error: unknown --format docx; choose from txt, srt, vtt, json" in result.stderr
    result = _cli("transcribe", str(video), str(video), *common, "--burn", str(tmp_path / "x.gif"))
    assert result.returncode == 2
    assert "error: --burn FILE takes one video; pass a folder to --burn for several" in result.stderr
    result = _cli("transcribe", str(video), *common, "--burn", str(tmp_path / "x.avi"))
    assert result.returncode == 2
    assert "error: --burn writes .mp4 or .gif, not .avi" in result.stderr
    assert not out.exists() and not list(tmp_path.glob("x.*"))  # refused before any video is read


def test_a_video_without_a_face_fails_clearly(tmp_path, oracle):
    from videos import write_video

    from lipnet_ko.video.mouth import NoFaceError
    from lipnet_ko.app.transcribe import transcribe

    path = tmp_path / "wall.mp4"
    write_video(path, np.full((20, 120, 160, 3), 128, np.uint8), fourcc="mp4v")
    with pytest.raises(NoFaceError):
        transcribe(path, oracle)


def test_package_level_api_transcribes_with_a_loaded_model(session, run_folder, utterance_times):
    from lipnet_ko.video.extract import extract_mouth_from_video

    recognizer = lipnet_ko.load_model(run_folder)
    assert recognizer.tokenizer.vocab_size == recognizer.model_config.vocabulary_size
    video, label = session
    options = lipnet_ko.TranscribeOptions(beam_width=1, lm=None)
    transcript = lipnet_ko.transcribe(video, recognizer, options)
    assert transcript.source == str(video) and transcript.duration > 0
    _assert_segments_in_order(transcript.segments, label, transcript.duration)
    assert [(s.start, s.end) for s in transcript.segments] == utterance_times
    # each text is the loaded model's greedy reading of that segment's own frames
    mouth = extract_mouth_from_video(video, config=recognizer.preprocess)
    starts, ends = mouth.timestamps, mouth.timestamps + 1.0 / transcript.fps
    spans = [(int(np.argmin(abs(starts - s.start))), int(np.argmin(abs(ends - s.end))) + 1) for s in transcript.segments]
    logits = recognizer.logits([mouth.crops[a:b] for a, b in spans])
    greedy = lipnet_ko.DecodingOptions(beam_width=1)
    texts = [lipnet_ko.decode(item[None], [len(item)], recognizer.tokenizer, greedy)[0].text for item in logits]
    assert [s.text for s in transcript.segments] == texts and any(texts)
