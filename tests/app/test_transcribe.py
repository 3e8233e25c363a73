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
from lipnet_ko.decoding.lm import DEFAULT_LM_ORDER, DEFAULT_LM_PATHS

pytestmark = pytest.mark.dlib

REPO = Path(__file__).resolve().parents[2]
SENTENCE = "안녕 하세요"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One synthetic session video of three sentences, with its label JSON (the timing oracle)."""
    from lipnet_ko.synth.corpus import generate_corpus

    out = tmp_path_factory.mktemp("tx") / "corpus"
    generate_corpus(out, SynthConfig(speakers=1, sentences=3, val_sentences=0, unseen_sentences=0, held_out_speakers=0,
                                     sentences_per_session=3, seed=0, output="video"))
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
    """`lipnet-ko ARGS` in a fresh interpreter (TensorFlow not imported yet, as for a user)."""
    return subprocess.run([sys.executable, "-m", "lipnet_ko", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_writes_all_formats_and_reports_a_bad_file_without_stopping(session, run_folder, utterance_times, tmp_path):
    from lipnet_ko.app.subtitles import Transcript, round_ms, to_srt, to_txt, to_vtt

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
    assert [(s.start, s.end) for s in transcript.segments] == [(round_ms(a), round_ms(b)) for a, b in utterance_times]
    assert doc["source"] == str(video) and doc["text"] == transcript.text
    # the other formats carry the same segments: same texts, same order, same times
    for ext, writer in (("txt", to_txt), ("srt", to_srt), ("vtt", to_vtt)):
        assert (out / f"{video.stem}.{ext}").read_text(encoding="utf-8") == writer(transcript), ext
    srt = (out / f"{video.stem}.srt").read_text(encoding="utf-8")
    cue_times = re.findall(r"(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)", srt)
    assert len(cue_times) == sum(1 for s in doc["segments"] if s["text"].strip())
    listed = re.findall(r"^  (\w+): (.+)$", result.stdout, flags=re.MULTILINE)
    assert listed == [(ext, str(out / f"{video.stem}.{ext}")) for ext in ("txt", "srt", "vtt", "json")] + [
        ("burn", str(tmp_path / "burned" / f"{video.stem}.subtitled.mp4"))]
    # TensorFlow's start-up lines (absl banner, I/W lines, "no CUDA here") are not shown without -v
    noise = [line for line in result.stderr.splitlines() if re.match(r"[IWE]\d{4} |WARNING: All log messages", line)
             or "cuInit" in line or "oneDNN" in line]
    assert not noise, result.stderr
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


# ---------------------------------------------------------------------------------------------------
# `lipnet-ko transcribe` in-process, with the oracle standing in for the model (no TensorFlow needed)

SHIPPED_LM = DEFAULT_LM_PATHS["jamo"]
LISTED = re.compile(r"^  (\w+): (.+)$", flags=re.MULTILINE)


@pytest.fixture
def cli_with(monkeypatch, oracle):
    """``main(["transcribe", ...])`` with ``--model`` loading the oracle; returns (main, loads, decodes):
    ``loads`` counts model loads, ``decodes`` records the DecodingOptions of every decode call."""
    from lipnet_ko.app import transcribe as module
    from lipnet_ko.app.cli import main

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # main() sets it in os.environ otherwise
    loads, decodes = [], []
    original_decode = module.decode

    def load(model):
        if model is oracle:  # transcribe() passes the loaded recognizer through _recognizer again
            return oracle
        loads.append(model)
        return oracle

    def recording_decode(logits, lengths, tokenizer, options):
        decodes.append(options)
        return original_decode(logits, lengths, tokenizer, options)

    monkeypatch.setattr(module, "_recognizer", load)
    monkeypatch.setattr(module, "decode", recording_decode)
    return (lambda *args: main(["transcribe", *map(str, args)])), loads, decodes


def test_lm_file_is_read_before_the_model_and_used(session, cli_with, tmp_path, capsys):
    from lipnet_ko.decoding.lm import NGramLM

    cli, loads, decodes = cli_with
    video, _ = session
    out = tmp_path / "out"
    assert cli(video, "--model", "m", "--lm", SHIPPED_LM, "--beam", 4, "--out", out, "--format", "json") == 0
    assert loads == ["m"] and decodes
    assert all(o.lm is not None and o.lm.order == DEFAULT_LM_ORDER and o.beam_width == 4 for o in decodes)
    assert decodes[0].lm.ngrams == NGramLM.read_arpa(SHIPPED_LM).ngrams  # the file given, not another LM
    assert capsys.readouterr().out.count(str(out / f"{video.stem}.json")) == 1

    truncated = tmp_path / "cut.arpa.gz"
    truncated.write_bytes(SHIPPED_LM.read_bytes()[:5000])
    missing = tmp_path / "nope.arpa"
    for lm, why in ((truncated, "truncated gzip file"), (missing, "no ARPA file at")):
        loads.clear()
        assert cli(video, "--model", "m", "--lm", lm, "--out", tmp_path / "out2") == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --lm: ") and why in err and str(lm) in err and err.count("\n") == 1, err
        assert loads == []  # refused before the model was loaded
    assert not (tmp_path / "out2").exists()


def test_bad_options_are_refused_before_the_model_loads(session, cli_with, tmp_path, capsys):
    cli, loads, _ = cli_with
    video, _ = session
    a_file = tmp_path / "a_file"
    a_file.write_text("x", encoding="utf-8")
    out = tmp_path / "out"
    cases = [
        (("--beam", 0), "error: --beam must be at least 1 (1 = greedy), got 0"),
        (("--beam", -2), "error: --beam must be at least 1 (1 = greedy), got -2"),
        (("--format", "srt,docx"), "error: unknown --format docx; choose from txt, srt, vtt, json"),
        (("--format", ","), "error: unknown --format (none)"),
        (("--lm", SHIPPED_LM, "--beam", 1), "error: --lm needs --beam 2 or more"),
        (("--burn", tmp_path / "x.avi"), "error: --burn writes .mp4 or .gif, not .avi"),
        (("--burn", a_file / "x.mp4"), f"error: --burn {a_file / 'x.mp4'}: cannot write there: {a_file} is a file, not a folder"),
        (("--burn", a_file / "sub"), f"error: --burn {a_file / 'sub'}: cannot write there: {a_file} is a file, not a folder"),
        (("--burn", video), f"error: --burn {video} is the input video itself; choose another file"),
        (("--out", a_file), f"error: --out {a_file}: cannot write there: {a_file} is a file, not a folder"),
        (("--out", a_file / "sub"), f"error: --out {a_file / 'sub'}: cannot write there: {a_file} is a file"),
    ]
    for flags, message in cases:
        assert cli(video, "--model", "m", "--out", out, *flags) == 2, flags
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, (flags, err)
    assert loads == [] and not out.exists() and not list(tmp_path.glob("x.*"))
    # two videos that would write the same files
    twin = tmp_path / "twin" / video.name
    twin.parent.mkdir()
    twin.write_bytes(video.read_bytes())
    assert cli(video, twin, "--model", "m", "--out", out) == 2
    err = capsys.readouterr().err
    assert f"error: {video} and {twin} would both write {out.resolve() / video.stem}.*; transcribe them in separate runs" in err
    assert loads == [] and not out.exists()


def test_a_font_missing_for_burn_is_refused_before_the_model_loads(session, cli_with, tmp_path, capsys, monkeypatch):
    cli, loads, _ = cli_with
    video, _ = session
    monkeypatch.setenv("LIPNET_KO_FONT", str(tmp_path / "missing.ttf"))
    assert cli(video, "--model", "m", "--burn", tmp_path / "b.mp4", "--out", tmp_path / "out") == 2
    assert "error: --burn needs a Korean font: LIPNET_KO_FONT=" in capsys.readouterr().err
    assert loads == [] and not (tmp_path / "out").exists()


def test_missing_videos_fail_one_by_one_and_alone_do_nothing(session, cli_with, tmp_path, capsys):
    cli, loads, _ = cli_with
    video, _ = session
    missing = tmp_path / "gone.mp4"
    out = tmp_path / "out"
    assert cli(missing, tmp_path, "--model", "m", "--out", out) == 2  # nothing readable: nothing done
    err = capsys.readouterr().err
    assert f"error: {missing} does not exist" in err and f"error: {tmp_path} is a folder, not a video file" in err
    assert loads == [] and not out.exists()

    assert cli(missing, video, "--model", "m", "--out", out, "--beam", 1) == 1
    captured = capsys.readouterr()
    assert f"{missing}: failed: does not exist" in captured.err
    assert captured.err.rstrip().endswith(f"1 of 2 video(s) transcribed; 1 failed: {missing}")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{video.stem}.{ext}" for ext in ("txt", "srt", "vtt", "json"))


def test_greedy_beam_one_uses_no_lm_and_succeeds(session, cli_with, tmp_path, capsys):
    cli, _, decodes = cli_with
    video, _ = session
    assert cli(video, "--model", "m", "--beam", 1, "--out", tmp_path) == 0  # the default LM is for the beam search only
    assert decodes and {o.beam_width for o in decodes} == {1} and {o.lm for o in decodes} == {None}
    assert SENTENCE in capsys.readouterr().out


def test_a_clip_too_short_to_read_warns_and_says_what_was_written(session, cli_with, tmp_path, capsys):
    from videos import write_video

    from lipnet_ko.video.reader import read_frames

    cli, _, _ = cli_with
    video, _ = session
    short = write_video(tmp_path / "short.mp4", read_frames(video).frames[:3], fourcc="mp4v")
    out = tmp_path / "out"
    assert cli(short, "--model", "m", "--out", out) == 0
    captured = capsys.readouterr()
    assert f"warning: {short}: video too short to read: 3 frame(s) (0.12 s)" in captured.err
    assert f"{short}: no text; wrote empty subtitles:" in captured.out
    assert LISTED.findall(captured.out) == [(ext, str(out / f"short.{ext}")) for ext in ("txt", "srt", "vtt", "json")]
    assert "1 of 1 video(s) transcribed (1 with no text)" in captured.err
    doc = json.loads((out / "short.json").read_text(encoding="utf-8"))
    assert doc["segments"] == [] and doc["duration"] == 0.12
    assert len(doc["warnings"]) == 1 and doc["warnings"][0].startswith("video too short to read: 3 frame(s)")
    assert (out / "short.srt").read_text(encoding="utf-8") == ""


def test_a_failed_burn_is_a_failed_video_and_the_subtitles_written_are_listed(session, cli_with, tmp_path, capsys,
                                                                              monkeypatch):  # fmt: skip
    from lipnet_ko.app import transcribe as module

    cli, _, _ = cli_with
    video, _ = session

    def failing_burn(video_path, transcript, out_path, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "burn_subtitles", failing_burn)
    out, burn = tmp_path / "out", tmp_path / "burned"
    assert cli(video, "--model", "m", "--beam", 1, "--out", out, "--burn", burn) == 1
    captured = capsys.readouterr()
    written = [(ext, str(out / f"{video.stem}.{ext}")) for ext in ("txt", "srt", "vtt", "json")]
    assert LISTED.findall(captured.out) == written
    assert all(Path(path).is_file() for _, path in written)
    assert (f"{video}: failed: burning subtitles into {burn / (video.stem + '.subtitled.mp4')}: OSError: "
            "[Errno 28] No space left on device (its txt, srt, vtt, json files were written)") in captured.err
    assert captured.err.rstrip().endswith(f"0 of 1 video(s) transcribed; 1 failed: {video}")
    assert not burn.exists() or not list(burn.iterdir())


def test_json_times_are_rounded_to_the_millisecond(session, cli_with, tmp_path):
    cli, _, _ = cli_with
    video, _ = session
    assert cli(video, "--model", "m", "--beam", 1, "--out", tmp_path, "--format", "json") == 0
    text = (tmp_path / f"{video.stem}.json").read_text(encoding="utf-8")
    times = re.findall(r'"(?:start|end|duration)": ([0-9.eE+-]+)', text)  # as written, e.g. 2.32 not 2.3200000000000003
    assert len(times) >= 3 and all(re.fullmatch(r"\d+\.\d{1,3}", t) for t in times), times


class NoiseBackend:
    """Logits of a model that has learnt nothing: standard normal noise."""

    def __init__(self, vocab: int):
        self.vocab = vocab
        self.rng = np.random.default_rng(0)

    def __call__(self, crops, lengths):
        return self.rng.normal(size=(len(lengths), crops.shape[1], self.vocab)).astype(np.float32)


def test_confidence_is_a_probability_higher_for_a_clean_reading_than_for_noise(session, oracle):
    from lipnet_ko.app.transcribe import TranscribeOptions, transcribe
    from lipnet_ko.model.inference import Recognizer

    video, _ = session
    noisy = Recognizer(NoiseBackend(oracle.tokenizer.vocab_size), oracle.model_config, oracle.tokenizer, oracle.preprocess,
                       source=Path("noise"), format="keras")  # fmt: skip
    for options in (TranscribeOptions(beam_width=1, lm=None), TranscribeOptions(beam_width=8)):
        clean = transcribe(video, oracle, options).segments
        noise = transcribe(video, noisy, options).segments
        assert clean and noise
        for segment in clean + noise:
            assert segment.confidence is not None and 0.0 <= segment.confidence <= 1.0, segment
        assert min(s.confidence for s in clean) > 0.9  # the oracle puts ~all mass on its path at every frame
        assert max(s.confidence for s in noise) < 0.2
        assert max(s.confidence for s in noise) < min(s.confidence for s in clean)


def test_transcribe_options_are_checked():
    from lipnet_ko.app.transcribe import TranscribeOptions

    for kwargs, message in (({"beam_width": 0}, "beam_width must be at least 1"), ({"batch_size": 0}, "batch_size"),
                            ({"min_frames": 0}, "min_frames"), ({"beam_width": 1, "lm": "x.arpa"}, "needs beam_width >= 2")):
        with pytest.raises(ValueError, match=message):
            TranscribeOptions(**kwargs)
    assert TranscribeOptions(beam_width=1).lm == "default"  # allowed: greedy decoding just skips it


def test_transcribe_help_documents_the_exit_status():
    result = _cli("transcribe", "--help")
    assert result.returncode == 0
    assert "exit status:" in result.stdout
    for code in ("0  every video was transcribed", "1  at least one video failed", "2  nothing was done"):
        assert code in result.stdout


def test_the_first_video_is_cropped_while_the_model_loads_and_reads_the_same(session, run_folder, tmp_path):
    """The command line crops its first video in a forked worker during TensorFlow's import (a fresh process, so
    the fork comes before TensorFlow); the transcript equals the one cropped in this process."""
    from lipnet_ko.app.transcribe import TranscribeOptions, transcribe
    from lipnet_ko.model.inference import load_recognizer

    video, _ = session
    out = tmp_path / "out"
    result = _cli("transcribe", "-v", str(video), "--model", str(run_folder), "--out", str(out), "--beam", "4",
                  "--format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cropped in a worker process while the model loaded" in result.stderr
    doc = json.loads((out / f"{video.stem}.json").read_text(encoding="utf-8"))
    here = transcribe(video, load_recognizer(run_folder), TranscribeOptions(beam_width=4)).to_dict()
    assert doc["segments"] and doc["segments"] == here["segments"]


def test_a_worker_that_cannot_start_leaves_the_cropping_to_this_process(monkeypatch, session, run_folder):
    import concurrent.futures

    from lipnet_ko.app import transcribe as module

    def no_fork(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as in a fresh `lipnet-ko` process
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_fork)
    video, _ = session
    prefetch = module._MouthPrefetch(video, run_folder)
    assert prefetch.config is not None  # it read the model's crop settings and then tried to fork
    assert prefetch.result(video, prefetch.config) is None  # nothing prefetched: transcribe() crops it itself
