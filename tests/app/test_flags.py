"""Every flag of every ``lipnet-ko`` command, and of train.py, is exercised here and its effect asserted.

The flags are read from the parsers themselves (``discovered_flags``): for each command, the parser
``lipnet-ko COMMAND`` really parses with (``configure_parser`` plus the global flags ``app/cli.py`` adds),
walked into its sub-commands. ``FLAG_TESTS`` names, for each flag, the test below that runs the command
with it (and without it, or with another value) and checks what it changes: files where ``--out`` says,
crop shapes, a different split for another ``--seed``, the decoder's beam width, and so on.
``test_every_flag_has_an_exercise`` fails when a parser has a flag the table lacks, or the table
names one the parsers no longer have. A new flag is one line in ``FLAG_TESTS``: the flag (as
``COMMAND [SUB] --flag``, positionals by their dest) and the test that shows its effect, new or existing.

Commands run in-process through ``lipnet_ko.app.cli.main``, so TensorFlow loads once. Shared inputs are
made once per module: a corpus with lip boxes in its labels (cropped without dlib), a random-weight tiny
model run, a two-sentence jamo LM, and (dlib tests only) one synthetic speaking-face video.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from flags_fixtures import Terminal, write_box_corpus
from lipnet_ko import __version__
from lipnet_ko.app.cli import SUBCOMMANDS, main
from lipnet_ko.data.crops import load_clip
from lipnet_ko.text.tokenizer import JamoTokenizer

REPO = Path(__file__).resolve().parents[2]
SPEAKERS = ("C001", "C002", "C003")  # of the box corpus
BOX_CLIPS = {f"lip_J_1_F_30_{s}_A_001_{i}" for s in SPEAKERS for i in (1, 2)}  # its frontal clips
LM_TEXT = ("안녕 하세요", "좋은 아침 이에요", "안녕 히 가세요")

# "COMMAND [SUB] FLAG" -> the test of this module that exercises it. "<top>" is `lipnet-ko` itself;
# "<every command>" a flag app/cli.py gives every command's parser. Positionals go by their dest.
FLAG_TESTS = {
    "<top> --version": "test_top_level_version_and_command",
    "<top> command": "test_top_level_version_and_command",
    "<every command> --verbose": "test_verbose_turns_on_debug_log_lines",
    # preprocess
    "preprocess inputs": "test_preprocess_writes_one_npz_per_clip_under_out",
    "preprocess --out": "test_preprocess_writes_one_npz_per_clip_under_out",
    "preprocess --jobs": "test_preprocess_jobs_give_the_same_crops",
    "preprocess --width": "test_preprocess_crop_size_and_channels",
    "preprocess --height": "test_preprocess_crop_size_and_channels",
    "preprocess --grey": "test_preprocess_crop_size_and_channels",
    "preprocess --margin": "test_preprocess_margin_scales_the_crop",
    "preprocess --smoothing": "test_preprocess_smoothing_steadies_the_crop",
    "preprocess --max-missing-share": "test_preprocess_max_missing_share_fails_clips_with_too_few_faces",
    "preprocess --detect-every": "test_preprocess_detect_every_sets_how_often_the_detector_runs",
    "preprocess --landmark-every": "test_preprocess_landmark_every_skips_frames",
    "preprocess --overwrite": "test_preprocess_overwrite_redoes_finished_clips",
    "preprocess --report": "test_preprocess_report_goes_where_asked",
    "preprocess --preview": "test_preprocess_preview",
    "preprocess --no-progress": "test_preprocess_no_progress_hides_the_bar",
    # lm
    "lm build text": "test_lm_build_order_units_and_out",
    "lm build --order": "test_lm_build_order_units_and_out",
    "lm build --units": "test_lm_build_order_units_and_out",
    "lm build --out": "test_lm_build_order_units_and_out",
    "lm build --skip-unsupported": "test_lm_build_skip_unsupported",
    "lm build --min-counts": "test_lm_build_min_counts_prunes_rare_ngrams",
    "lm build-default --out": "test_lm_build_default_writes_where_out_says",
    "lm build-default --units": "test_lm_build_default_units_char_is_the_grid_grammar",
    "lm corpus --source": "test_lm_corpus_source",
    "lm corpus --grammar-samples": "test_lm_corpus_samples_seed_and_out",
    "lm corpus --seed": "test_lm_corpus_samples_seed_and_out",
    "lm corpus --out": "test_lm_corpus_samples_seed_and_out",
    "lm corpus --units": "test_lm_corpus_units",
    "lm score lm": "test_lm_score",
    "lm score text": "test_lm_score",
    "lm info lm": "test_lm_info",
    # normalize, score
    "normalize files": "test_normalize_files_and_policies",
    "normalize --dual": "test_normalize_files_and_policies",
    "normalize --latin": "test_normalize_files_and_policies",
    "normalize --unknown": "test_normalize_files_and_policies",
    "score references": "test_score_positionals_and_json",
    "score hypotheses": "test_score_positionals_and_json",
    "score --json": "test_score_positionals_and_json",
    # data
    "text build --out": "test_text_build_writes_the_pool_under_out",
    "data inspect spec": "test_data_inspect_json",
    "data inspect --json": "test_data_inspect_json",
    "data inspect --angles": "test_data_inspect_angles",
    "data split spec": "test_data_split_by_and_out",
    "data split --by": "test_data_split_by_and_out",
    "data split --out": "test_data_split_by_and_out",
    "data split --held-out": "test_data_split_held_out_and_seed",
    "data split --seed": "test_data_split_held_out_and_seed",
    "data reframe spec": "test_data_reframe_box_out_and_size",
    "data reframe --box": "test_data_reframe_box_out_and_size",
    "data reframe --out": "test_data_reframe_box_out_and_size",
    "data reframe --width": "test_data_reframe_box_out_and_size",
    "data reframe --height": "test_data_reframe_box_out_and_size",
    # synth
    "synth --out": "test_synth_counts_split_and_sentence_set",
    "synth --speakers": "test_synth_counts_split_and_sentence_set",
    "synth --sentences": "test_synth_counts_split_and_sentence_set",
    "synth --val-sentences": "test_synth_counts_split_and_sentence_set",
    "synth --unseen-sentences": "test_synth_counts_split_and_sentence_set",
    "synth --held-out-speakers": "test_synth_counts_split_and_sentence_set",
    "synth --unseen-speaker-sentences": "test_synth_counts_split_and_sentence_set",
    "synth --sentences-per-session": "test_synth_counts_split_and_sentence_set",
    "synth --max-syllables": "test_synth_counts_split_and_sentence_set",
    "synth --sentence-set": "test_synth_grammar_sentence_set_and_output_crops",
    "synth --output": "test_synth_grammar_sentence_set_and_output_crops",
    "synth --jobs": "test_synth_jobs_give_the_same_corpus",
    "synth --seed": "test_synth_seed_faces_mirror_frame_size_and_preview",
    "synth --faces": "test_synth_seed_faces_mirror_frame_size_and_preview",
    "synth --held-out-photos": "test_synth_seed_faces_mirror_frame_size_and_preview",
    "synth --no-mirror": "test_synth_seed_faces_mirror_frame_size_and_preview",
    "synth --frame-size": "test_synth_seed_faces_mirror_frame_size_and_preview",
    "synth --preview": "test_synth_seed_faces_mirror_frame_size_and_preview",
    # transcribe, evaluate, export
    "transcribe videos": "test_transcribe_flags",
    "transcribe --model": "test_transcribe_flags",
    "transcribe --lm": "test_transcribe_flags",
    "transcribe --no-lm": "test_transcribe_flags",
    "transcribe --beam": "test_transcribe_flags",
    "transcribe --format": "test_transcribe_flags",
    "transcribe --out": "test_transcribe_flags",
    "transcribe --burn": "test_transcribe_flags",
    "evaluate --model": "test_evaluate_flags",
    "evaluate --data": "test_evaluate_flags",
    "evaluate --lm": "test_evaluate_flags",
    "evaluate --beam": "test_evaluate_flags",
    "evaluate --report": "test_evaluate_flags",
    "evaluate --quiet": "test_evaluate_flags",
    "export run_dir": "test_export_format_and_out",
    "export --format": "test_export_format_and_out",
    "export --out": "test_export_format_and_out",
}

# train.py: a sample value for each flag of its FLAGS table (flag -> TrainConfig field), and the test of
# each flag outside that table.
TRAIN_SAMPLES = {
    "--data": "aihub:/corpus",
    "--tokenizer": "char",
    "--cache-dir": "/crops",
    "--data-dir": "/big/disk",
    "--preset": "tiny",
    "--batch-size": "3",
    "--epochs": "7",
    "--learning-rate": "0.01",
    "--schedule": "constant",
    "--max-minutes": "1.5",
    "--curriculum-epochs": "2",
    "--strategy": "mirrored",
    "--seed": "5",
    "--init": "runs/base",
    "--freeze-frontend-epochs": "2",
}
TRAIN_SAMPLE_NEEDS = {"--freeze-frontend-epochs": ("--init", "runs/base")}  # flags a sample is only valid with
TRAIN_EXTRA_TESTS = {
    "--config": "test_train_config_file_then_flags",
    "--no-time-limit": "test_train_switches",
    "--no-augment": "test_train_switches",
    "--run-dir": "test_train_run_dir_resume_and_quiet_reach_training",
    "--resume": "test_train_run_dir_resume_and_quiet_reach_training",
    "--quiet": "test_train_run_dir_resume_and_quiet_reach_training",
}


# ---------------------------------------------------------------------------------------------------
# Discovering the flags


class _Parsed(Exception):
    """Raised in place of parsing: carries the parser a command was about to parse its arguments with."""

    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__(parser.prog)
        self.parser = parser


def parser_of(call) -> argparse.ArgumentParser:
    """The first parser whose ``parse_args`` ``call()`` reaches; nothing after that runs."""

    def capture(self, args=None, namespace=None):
        raise _Parsed(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", capture)
        try:
            call()
        except _Parsed as parsed:
            return parsed.parser
    raise AssertionError(f"{call} never parsed its arguments")


def flags_of(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    """``"[prefix ]SUB --flag"`` for each option (its longest name) and positional (its dest), -h/--help left out."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= flags_of(sub, f"{prefix} {name}".strip())
            continue
        name = max(action.option_strings, key=len) if action.option_strings else action.dest
        found.add(f"{prefix} {name}".strip())
    return found


def discovered_flags() -> set[str]:
    """Every flag of ``lipnet-ko`` and its commands, in the key format of ``FLAG_TESTS``."""
    flags = {f"<top> {flag}" for flag in flags_of(parser_of(lambda: main(["--help"])))}
    added: list[set[str]] = []  # per command: what app/cli.py adds to configure_parser's flags
    for name, (module_name, _) in SUBCOMMANDS.items():
        own = argparse.ArgumentParser()
        importlib.import_module(module_name).configure_parser(own)
        own_flags = flags_of(own)
        full = flags_of(parser_of(lambda: main([name])))
        assert own_flags <= full, f"{name}: the command line lacks {own_flags - full}"
        flags |= {f"{name} {flag}" for flag in own_flags}
        added.append(full - own_flags)
    common = set.intersection(*added)
    flags |= {f"<every command> {flag}" for flag in common}
    for name, extra in zip(SUBCOMMANDS, added):
        flags |= {f"{name} {flag}" for flag in extra - common}
    return flags


def test_every_flag_has_an_exercise():
    flags = discovered_flags()
    missing = sorted(flags - set(FLAG_TESTS))
    stale = sorted(set(FLAG_TESTS) - flags)
    assert not missing, f"flags without an exercise (add them to FLAG_TESTS): {missing}"
    assert not stale, f"FLAG_TESTS names flags the parsers no longer have: {stale}"
    tests = {name for name, value in globals().items() if name.startswith("test_") and callable(value)}
    unknown = sorted({test for test in FLAG_TESTS.values() if test not in tests})
    assert not unknown, f"FLAG_TESTS names tests this module does not define: {unknown}"
    assert len(flags) >= 70  # today's count; a drop means the walk lost part of a parser


# ---------------------------------------------------------------------------------------------------
# Shared inputs


@pytest.fixture(scope="module")
def box_corpus(tmp_path_factory) -> Path:
    """Three speakers, two sentences each, lip boxes in the labels; speaker C001 also at camera angle B."""
    return write_box_corpus(tmp_path_factory.mktemp("flags") / "boxes", SPEAKERS)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder with a random-weight tiny model, as training leaves it."""
    from runs import write_run

    from lipnet_ko.model.config import model_config

    folder = tmp_path_factory.mktemp("flags") / "run"
    tokenizer = JamoTokenizer()
    write_run(folder, model_config("tiny", vocabulary_size=tokenizer.vocab_size), tokenizer)
    return folder


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("flags") / "sentences.txt"
    path.write_text("\n".join(LM_TEXT) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_lm(text_file) -> Path:
    """A jamo bigram LM (the shipped default is a 5-gram)."""
    out = text_file.with_name("tiny.arpa")
    assert main(["lm", "build", str(text_file), "--order", "2", "--units", "jamo", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    """One synthetic session video: a real face photo saying two sentences (dlib finds the face)."""
    from lipnet_ko.synth.corpus import SynthConfig, generate_corpus

    out = tmp_path_factory.mktemp("flags") / "faces"
    generate_corpus(out, SynthConfig(speakers=1, sentences=2, val_sentences=0, unseen_sentences=0, held_out_speakers=0,
                                     sentences_per_session=2, seed=2, output="video"))
    return next(out.rglob("*.mp4"))


def cli(*args) -> int:
    return main([str(arg) for arg in args])


def report_of(out: Path) -> dict:
    return json.loads((out / "preprocess_report.json").read_text(encoding="utf-8"))


def statuses(report: dict) -> set[str]:
    return {entry["status"] for entry in report["clips"]}


def preprocessed(out: Path, *flags, inputs: tuple = ()) -> dict[str, dict]:
    """``lipnet-ko preprocess`` (one worker unless ``flags`` say otherwise); the arrays of each clip written."""
    assert cli("preprocess", *inputs, "--out", out, "--jobs", 1, *flags) == 0
    return {path.stem: load_clip(path) for path in sorted(out.glob("*.npz"))}


# ---------------------------------------------------------------------------------------------------
# lipnet-ko itself, and the flag every command has


def test_top_level_version_and_command(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and __version__ in capsys.readouterr().out
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("가나다\n", encoding="utf-8")
    hyp.write_text("가나\n", encoding="utf-8")
    assert cli("score", ref, hyp, "--json") == 0  # the command picks the module
    assert "cer" in json.loads(capsys.readouterr().out)
    assert cli("normalize", ref) == 0
    assert capsys.readouterr().out.split() == ["가나다"]
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == 2


# In a fresh interpreter (pytest's own log handlers make logging.basicConfig a no-op in-process): run the
# command, then log one DEBUG line through the logging set-up the command left behind.
_DEBUG_PROBE = (
    "import logging, sys\n"
    "from lipnet_ko.app.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "logging.getLogger('lipnet_ko.flags_probe').debug('flags-probe debug line')\n"
    "sys.exit(code)\n"
)


def test_verbose_turns_on_debug_log_lines(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("가나\n", encoding="utf-8")
    for verbose, flags in ((True, ["-v"]), (True, ["--verbose"]), (False, [])):
        proc = subprocess.run([sys.executable, "-c", _DEBUG_PROBE, "normalize", *flags, str(text)],
                              capture_output=True, text=True, cwd=REPO, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["가나"]
        assert ("flags-probe debug line" in proc.stderr) is verbose, (flags, proc.stderr)


# ---------------------------------------------------------------------------------------------------
# preprocess


def test_preprocess_writes_one_npz_per_clip_under_out(box_corpus, tmp_path):
    out = tmp_path / "new" / "crops"
    crops = preprocessed(out, inputs=(f"aihub:{box_corpus}",))
    assert set(crops) == BOX_CLIPS
    assert {entry["output"] for entry in report_of(out)["clips"]} == {str(out / f"{c}.npz") for c in BOX_CLIPS}
    one = preprocessed(tmp_path / "one", inputs=(f"aihub:{box_corpus / 'C002'}",))  # another input, other clips
    assert set(one) == {c for c in BOX_CLIPS if "C002" in c}
    assert {str(crops[c]["text"]) for c in one} == {"안녕 하세요", "좋은 아침 이에요"}


def test_preprocess_crop_size_and_channels(box_corpus, tmp_path):
    inputs = (f"aihub:{box_corpus / 'C001'}",)
    default = preprocessed(tmp_path / "default", inputs=inputs)
    small = preprocessed(tmp_path / "small", "--width", 64, "--height", 32, inputs=inputs)
    wide = preprocessed(tmp_path / "wide", "--width", 120, inputs=inputs)
    grey = preprocessed(tmp_path / "grey", "--grey", inputs=inputs)
    for clip, arrays in default.items():
        frames = len(arrays["crops"])
        assert arrays["crops"].shape == (frames, 50, 100, 3)
        assert small[clip]["crops"].shape == (frames, 32, 64, 3)
        assert wide[clip]["crops"].shape == (frames, 50, 120, 3)
        assert grey[clip]["crops"].shape == (frames, 50, 100, 1)
        luma = arrays["crops"].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        assert np.abs(grey[clip]["crops"][..., 0] - luma).mean() < 2.0  # the same crop, in grey


def test_preprocess_margin_scales_the_crop(box_corpus, tmp_path):
    inputs = (f"aihub:{box_corpus / 'C001'}",)
    tight = preprocessed(tmp_path / "tight", "--margin", 0.1, inputs=inputs)
    loose = preprocessed(tmp_path / "loose", "--margin", 0.3, inputs=inputs)
    for clip in tight:
        # source px -> crop px scale = width * (1 - 2 margin) / mouth width: (1 - 0.2) / (1 - 0.6) = 2
        ratio = tight[clip]["transforms"][:, 0, 0] / loose[clip]["transforms"][:, 0, 0]
        np.testing.assert_allclose(ratio, 2.0, rtol=1e-3)


def _crop_centres(transforms: np.ndarray, crop_size=(100, 50)) -> np.ndarray:
    """The source point [T, 2] each frame's crop is centred on."""
    middle = (np.array(crop_size, np.float64) - 1) / 2
    return np.stack([np.linalg.solve(m[:, :2], middle - m[:, 2]) for m in transforms.astype(np.float64)])


def test_preprocess_smoothing_steadies_the_crop(box_corpus, tmp_path):
    inputs = (f"aihub:{box_corpus / 'C001'}",)
    raw = preprocessed(tmp_path / "raw", "--smoothing", 1, inputs=inputs)
    smooth = preprocessed(tmp_path / "smooth", "--smoothing", 9, inputs=inputs)
    for clip in raw:
        boxes = raw[clip]["boxes"]
        np.testing.assert_allclose(_crop_centres(raw[clip]["transforms"]), (boxes[:, :2] + boxes[:, 2:]) / 2, atol=1e-2)
        jitter = [np.abs(np.diff(_crop_centres(c[clip]["transforms"]), axis=0)).mean() for c in (raw, smooth)]
        assert jitter[1] < 0.5 * jitter[0], jitter  # the boxes jitter by a few px; 9 frames of averaging calm them


def test_preprocess_overwrite_redoes_finished_clips(box_corpus, tmp_path):
    out = tmp_path / "crops"
    inputs = (f"aihub:{box_corpus / 'C001'}",)
    preprocessed(out, inputs=inputs)
    assert statuses(report_of(out)) == {"done"}
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}
    preprocessed(out, inputs=inputs)
    assert statuses(report_of(out)) == {"skipped"}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")} == stamps
    preprocessed(out, "--overwrite", inputs=inputs)
    assert statuses(report_of(out)) == {"done"}
    redone = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}
    assert redone.keys() == stamps.keys() and all(redone[name] != stamps[name] for name in stamps)


def test_preprocess_report_goes_where_asked(box_corpus, tmp_path):
    report = tmp_path / "elsewhere" / "report.json"
    preprocessed(tmp_path / "crops", "--report", report, inputs=(f"aihub:{box_corpus}",))
    assert not (tmp_path / "crops" / "preprocess_report.json").exists()
    clips = json.loads(report.read_text(encoding="utf-8"))["clips"]
    assert {entry["clip_id"] for entry in clips} == BOX_CLIPS


def test_preprocess_preview(box_corpus, tmp_path):
    inputs = (f"aihub:{box_corpus}",)
    preprocessed(tmp_path / "none", inputs=inputs)
    assert not list((tmp_path / "none").glob("*.png"))
    preprocessed(tmp_path / "default", "--preview", inputs=inputs)
    sheet = cv2.imread(str(tmp_path / "default" / "preview.png"))
    assert sheet is not None and sheet.shape[0] > 6 * 50  # a row of crops per clip
    chosen = tmp_path / "sheets" / "mine.png"
    preprocessed(tmp_path / "chosen", "--preview", chosen, inputs=inputs)
    assert cv2.imread(str(chosen)) is not None and not (tmp_path / "chosen" / "preview.png").exists()


def test_preprocess_no_progress_hides_the_bar(box_corpus, tmp_path, monkeypatch):
    inputs = (f"aihub:{box_corpus / 'C001'}",)
    shown = {}
    for flags in ((), ("--no-progress",)):
        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        preprocessed(tmp_path / f"out{len(flags)}", *flags, inputs=inputs)
        shown[flags] = "\r" in terminal.getvalue()  # tqdm redraws its bar with carriage returns
    assert shown == {(): True, ("--no-progress",): False}


@pytest.mark.dlib  # the worker processes load the face detector, even for clips that come with boxes
def test_preprocess_jobs_give_the_same_crops(box_corpus, tmp_path):
    inputs = (f"aihub:{box_corpus}",)
    one = preprocessed(tmp_path / "one", inputs=inputs)
    two = preprocessed(tmp_path / "two", "--jobs", 2, inputs=inputs)
    assert set(two) == set(one) == BOX_CLIPS and statuses(report_of(tmp_path / "two")) == {"done"}
    for clip in one:
        np.testing.assert_array_equal(two[clip]["crops"], one[clip]["crops"])


@pytest.mark.dlib
def test_preprocess_landmark_every_skips_frames(face_video, tmp_path):
    every = preprocessed(tmp_path / "every", "--landmark-every", 1, inputs=(face_video,))[face_video.stem]
    third = preprocessed(tmp_path / "third", "--landmark-every", 3, inputs=(face_video,))[face_video.stem]
    assert every["searched"].all() and every["found"].mean() > 0.9
    np.testing.assert_array_equal(third["searched"], np.arange(len(third["searched"])) % 3 == 0)
    assert third["found"].sum() < 0.5 * every["found"].sum()


@pytest.mark.dlib
def test_preprocess_detect_every_sets_how_often_the_detector_runs(face_video, tmp_path):
    from lipnet_ko.video.extract import process_tracker
    from lipnet_ko.video.landmarks import DetectorConfig

    runs = {}
    for every in (1, 1000):
        tracker = process_tracker(DetectorConfig(detect_every=every, landmark_every=1))  # the one preprocess will use
        before = tracker.detections
        arrays = preprocessed(tmp_path / f"d{every}", "--detect-every", every, "--landmark-every", 1, inputs=(face_video,))
        assert process_tracker(DetectorConfig(detect_every=every, landmark_every=1)) is tracker
        runs[every] = (tracker.detections - before, len(arrays[face_video.stem]["crops"]))
    (often, frames), (rarely, _) = runs[1], runs[1000]
    assert often >= frames - 1 and rarely < frames / 4, runs


@pytest.mark.dlib
def test_preprocess_max_missing_share_fails_clips_with_too_few_faces(face_video, tmp_path, capsys):
    from videos import write_video

    from lipnet_ko.video.reader import read_frames

    frames = read_frames(face_video).frames.copy()
    blank = np.arange(len(frames)) % 10 < 3  # 30% of the frames, in runs of 3: no face there
    frames[blank] = 128
    video = write_video(tmp_path / "gaps.avi", frames)
    strict = tmp_path / "strict"
    assert cli("preprocess", video, "--out", strict, "--jobs", 1, "--landmark-every", 1, "--max-missing-share", 0.1) == 1
    assert statuses(report_of(strict)) == {"failed"} and not list(strict.glob("*.npz"))
    lenient = preprocessed(tmp_path / "lenient", "--landmark-every", 1, "--max-missing-share", 0.5, inputs=(video,))
    found = lenient["gaps"]["found"]
    assert 0.6 < found.mean() < 0.8 and not found[blank].any()


# ---------------------------------------------------------------------------------------------------
# text


def test_text_build_writes_the_pool_under_out(tmp_path, monkeypatch, capsys):
    from lipnet_ko.text import sentence_pool

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("오늘 날씨가 좋네요\n밥 먹었어요\n", encoding="utf-8")
    source = sentence_pool.Source("a", "project", "MIT", tmp_path / "src", ("*.txt",), "lines")
    monkeypatch.setattr(sentence_pool, "default_sources", lambda: [source])
    assert main(["text", "build", "--out", str(tmp_path / "one")]) == 0
    assert main(["text", "build", "--out", str(tmp_path / "two")]) == 0
    assert str(tmp_path / "two") in capsys.readouterr().out
    for name in ("pool.tsv.gz", "lm_extra.txt.gz", "sources.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    pool = {split: sentence_pool.load_pool(split, tmp_path / "two") for split in sentence_pool.SPLITS}
    assert sorted(sum(pool.values(), [])) == ["밥 먹었어요", "오늘 날씨가 좋네요"]


# lm


def test_lm_build_order_units_and_out(text_file, tmp_path):
    from lipnet_ko.decoding.lm import NGramLM

    more = tmp_path / "more.txt"
    more.write_text("학교 가요\n", encoding="utf-8")
    bigram, trigram = tmp_path / "a" / "jamo2.arpa", tmp_path / "b" / "syllable3.arpa.gz"
    assert cli("lm", "build", text_file, "--order", 2, "--units", "jamo", "--out", bigram) == 0
    assert cli("lm", "build", text_file, more, "--order", 3, "--units", "syllable", "--out", trigram) == 0
    first, second = NGramLM.read_arpa(bigram), NGramLM.read_arpa(trigram)
    assert (first.order, first.units) == (2, "jamo") and (second.order, second.units) == (3, "syllable")
    assert "학" in second.vocab and "녕" in second.vocab  # both text files went in
    assert trigram.read_bytes()[:2] == b"\x1f\x8b"  # .gz: gzip


def test_lm_build_skip_unsupported(tmp_path, capsys):
    from lipnet_ko.decoding.lm import NGramLM

    text = tmp_path / "mixed.txt"
    text.write_text("안녕 하세요\nABC 좋다\n좋은 아침\n", encoding="utf-8")
    out = tmp_path / "lm.arpa"
    assert cli("lm", "build", text, "--order", 2, "--out", out) == 2
    assert not out.exists() and "error:" in capsys.readouterr().err
    assert cli("lm", "build", text, "--order", 2, "--out", out, "--skip-unsupported") == 0
    vocab = NGramLM.read_arpa(out).vocab
    assert "ᄋ" in vocab and "ᄌ" in vocab and not any(unit.isascii() and unit.isalpha() for unit in vocab)


def test_lm_corpus_samples_seed_and_out(tmp_path):
    def corpus(name, *flags) -> list[str]:
        out = tmp_path / name / "corpus.txt"
        assert cli("lm", "corpus", "--out", out, *flags) == 0
        return out.read_text(encoding="utf-8").splitlines()

    five = corpus("five", "--source", "grammar", "--grammar-samples", 5, "--seed", 0)
    ten = corpus("ten", "--source", "grammar", "--grammar-samples", 10, "--seed", 0)
    other_seed = corpus("seed1", "--source", "grammar", "--grammar-samples", 5, "--seed", 1)
    assert len(ten) - len(five) == 5
    assert len(other_seed) == len(five) and other_seed != five


def test_lm_corpus_units(tmp_path):
    from lipnet_ko.decoding.lm import text_to_units

    text, jamo = tmp_path / "text.txt", tmp_path / "jamo.txt"
    assert cli("lm", "corpus", "--source", "grammar", "--grammar-samples", 3, "--out", text) == 0
    assert cli("lm", "corpus", "--source", "grammar", "--grammar-samples", 3, "--units", "jamo", "--out", jamo) == 0
    lines = text.read_text(encoding="utf-8").splitlines()
    assert jamo.read_text(encoding="utf-8").splitlines() == [" ".join(text_to_units(line, "jamo")) for line in lines]


def test_lm_corpus_source(tmp_path):
    from lipnet_ko.text.sentence_pool import lm_text
    from lipnet_ko.text.sentences import load_grammar

    open_text, grammar_text = tmp_path / "open.txt", tmp_path / "grammar.txt"
    assert cli("lm", "corpus", "--out", open_text) == 0  # the default: the open pool's LM text
    assert open_text.read_text(encoding="utf-8").splitlines() == lm_text()
    assert cli("lm", "corpus", "--source", "grammar", "--grammar-samples", 4, "--out", grammar_text) == 0
    lines = grammar_text.read_text(encoding="utf-8").splitlines()
    assert sum(load_grammar().contains(line) for line in lines) == 4 and not set(lines) & set(lm_text()[:1000])


def test_lm_build_min_counts_prunes_rare_ngrams(tmp_path):
    from lipnet_ko.decoding.lm import NGramLM

    text = tmp_path / "text.txt"
    text.write_text("가나 다라\n가나 다라\n가나 마바\n", encoding="utf-8")
    full, pruned = tmp_path / "full.arpa", tmp_path / "pruned.arpa"
    assert cli("lm", "build", text, "--order", 3, "--out", full) == 0
    assert cli("lm", "build", text, "--order", 3, "--min-counts", 0, 0, 2, "--out", pruned) == 0
    full_lm, pruned_lm = NGramLM.read_arpa(full), NGramLM.read_arpa(pruned)
    assert set(full_lm.ngrams[1]) == set(pruned_lm.ngrams[1])  # --min-counts 0 0 2: bigrams all kept
    assert set(pruned_lm.ngrams[2]) < set(full_lm.ngrams[2])  # trigrams seen once are gone, the others stay
    assert all(g in full_lm.ngrams[2] for g in pruned_lm.ngrams[2])


def test_lm_build_default_writes_where_out_says(tmp_path, monkeypatch):
    from lipnet_ko.decoding import lm as lm_module

    monkeypatch.setattr(lm_module, "default_lm_text", lambda folder=None: ["가나 다라", "마바 사아"])
    out = tmp_path / "mine" / "default.arpa.gz"
    assert cli("lm", "build-default", "--out", out) == 0
    model = lm_module.NGramLM.read_arpa(out)
    assert model.order == lm_module.DEFAULT_LM_ORDER and "ᄆ" in model.vocab  # trained on the (patched) pool text
    assert json.loads(lm_module.metadata_path(out).read_text(encoding="utf-8"))["order"] == lm_module.DEFAULT_LM_ORDER
    assert not (tmp_path / "default.json").exists()


def test_lm_build_default_units_char_is_the_grid_grammar(tmp_path):
    from lipnet_ko.decoding import lm as lm_module

    out = tmp_path / "grid.arpa.gz"
    assert cli("lm", "build-default", "--units", "char", "--out", out) == 0
    model = lm_module.NGramLM.read_arpa(out)
    assert model.units == "char" and model.order == lm_module.GRID_LM_ORDER
    assert out.read_bytes() == lm_module.DEFAULT_LM_PATHS["char"].read_bytes()  # the shipped GRID LM, rebuilt
    jamo = tmp_path / "jamo.arpa.gz"
    assert cli("lm", "build-default", "--units", "jamo", "--out", jamo) == 0
    assert lm_module.NGramLM.read_arpa(jamo).units == "jamo"


def test_data_reframe_box_out_and_size(tmp_path):
    from lipnet_ko.data.crop_folders import read_crop_folder
    from lipnet_ko.video.extract import PreprocessConfig
    from lipnet_ko.video.mouth import MouthConfig

    frames = np.zeros((3, 80, 160, 3), np.uint8)
    frames[:, 20:60, 40:120] = 200  # a bright 80x40 patch: the box around it becomes the whole crop
    root = tmp_path / "wide"
    (root / "clips" / "c1").mkdir(parents=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(root / "clips" / "c1" / f"mouth_{t:03d}.png"), frame)
    (root / "labels.csv").write_text("clip,text\nc1,학생\n", encoding="utf-8")
    out = tmp_path / "framed"
    assert cli("data", "reframe", f"crops:{root}", "--box", 40, 20, 120, 60, "--out", out) == 0
    crops = read_crop_folder(out / "clips" / "c1").crops  # 100x50 by default
    assert crops.shape == (3, 50, 100, 3) and crops[:, 1:-1, 1:-1].min() == 200  # the edge pixels blend with the surround
    assert cli("data", "reframe", f"crops:{root}", "--box", 0, 0, 160, 80, "--out", tmp_path / "small",
               "--width", 40, "--height", 20) == 0  # fmt: skip
    small = read_crop_folder(tmp_path / "small" / "clips" / "c1", PreprocessConfig(mouth=MouthConfig(width=40, height=20)))
    assert small.crops.shape == (3, 20, 40, 3) and 0 < small.crops.mean() < 200  # the patch and its dark surround


def test_lm_score(text_file, tiny_lm, tmp_path, capsys):
    other_text = tmp_path / "other.txt"
    other_text.write_text("학교 가요\n안녕 하세요\n", encoding="utf-8")
    trigram = tmp_path / "tri.arpa"
    assert cli("lm", "build", text_file, "--order", 3, "--out", trigram) == 0
    capsys.readouterr()

    def scores(lm, text) -> list[tuple[float, str]]:
        assert cli("lm", "score", lm, text) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == len(text.read_text(encoding="utf-8").splitlines()) + 1  # one per sentence, then perplexity
        return [(float(line.split("\t")[0]), line.split("\t")[1]) for line in lines[:-1]]

    by_bigram = scores(tiny_lm, text_file)
    assert [sentence for _, sentence in by_bigram] == list(LM_TEXT)
    assert [sentence for _, sentence in scores(tiny_lm, other_text)] == ["학교 가요", "안녕 하세요"]
    by_trigram = scores(trigram, text_file)
    assert all(lp < 0 for lp, _ in by_bigram) and [lp for lp, _ in by_trigram] != [lp for lp, _ in by_bigram]


def test_lm_info(text_file, tiny_lm, tmp_path, capsys):
    syllables = tmp_path / "syllables.arpa"
    assert cli("lm", "build", text_file, "--order", 3, "--units", "syllable", "--out", syllables) == 0
    capsys.readouterr()
    assert cli("lm", "info", tiny_lm) == 0
    bigram = capsys.readouterr().out
    assert cli("lm", "info", syllables) == 0
    trigram = capsys.readouterr().out
    assert "jamo" in bigram and "2" in bigram and "syllable" in trigram and "3" in trigram


# ---------------------------------------------------------------------------------------------------
# normalize, score


def test_normalize_files_and_policies(tmp_path, capsys, monkeypatch):
    lines = ["(학교)/(학꾜) 가요", "ABC 좋다", "가★나 다"]
    text = tmp_path / "in.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def normalized(*flags, source=text) -> list[str]:
        cli("normalize", *([source] if source else []), *flags)
        return capsys.readouterr().out.split("\n")[:3]

    default = normalized()
    assert default == ["학꾜 가요", "에이비씨 좋다", ""]  # pronounced side, Latin spelled out, unknown characters refused
    monkeypatch.setattr(sys, "stdin", io.StringIO(text.read_text(encoding="utf-8")))
    assert normalized(source=None) == default  # no files: standard input
    assert normalized("--dual", "spelled")[0] == "학교 가요"
    assert normalized("--latin", "keep")[1] == "abc 좋다"
    assert normalized("--latin", "error")[1] == ""
    dropped, kept = normalized("--unknown", "drop")[2], normalized("--unknown", "keep")[2]
    assert "★" not in dropped and dropped.replace(" ", "") == "가나다"
    assert kept == "가★나 다"


def test_score_positionals_and_json(tmp_path, capsys):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("가나다\n", encoding="utf-8")
    hyp.write_text("가나\n", encoding="utf-8")
    assert cli("score", ref, hyp, "--json") == 0
    assert json.loads(capsys.readouterr().out)["cer"] == pytest.approx(1 / 3)  # one deletion in three references
    assert cli("score", hyp, ref, "--json") == 0
    assert json.loads(capsys.readouterr().out)["cer"] == pytest.approx(1 / 2)  # one insertion against two
    assert cli("score", ref, hyp) == 0
    table = capsys.readouterr().out
    assert "cer" in table
    with pytest.raises(json.JSONDecodeError):
        json.loads(table)


# ---------------------------------------------------------------------------------------------------
# data


def _inspect(capsys, *args) -> dict:
    assert cli("data", "inspect", *args, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_data_inspect_json(box_corpus, capsys):
    summary = _inspect(capsys, f"aihub:{box_corpus}")
    assert (summary["clips"], summary["speakers"]) == (6, 3)
    assert _inspect(capsys, f"aihub:{box_corpus / 'C003'}")["clips"] == 2  # another corpus
    assert cli("data", "inspect", f"aihub:{box_corpus}") == 0
    table = capsys.readouterr().out
    assert "6 clips" in table.replace(",", "")
    with pytest.raises(json.JSONDecodeError):
        json.loads(table)


def test_data_inspect_angles(box_corpus, capsys):
    spec = f"aihub:{box_corpus}"
    clips = {angles: _inspect(capsys, spec, "--angles", angles)["clips"] for angles in ("A", "B", "AB", "all")}
    assert clips == {"A": 6, "B": 2, "AB": 8, "all": 8}
    assert _inspect(capsys, spec)["clips"] == 6  # frontal only by default


def _split(tmp_path, spec, *flags) -> dict:
    out = tmp_path / f"split{len(list(tmp_path.glob('**/*.json')))}" / "split.json"
    assert cli("data", "split", spec, "--out", out, *flags) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def _speakers(ids) -> set[str]:
    return {clip_id.split("_")[5] for clip_id in ids}


def test_data_split_by_and_out(box_corpus, tmp_path, capsys):
    from lipnet_ko.data.corpora import scan, split_by_utterance

    spec = f"aihub:{box_corpus}"
    by_speaker = _split(tmp_path, spec, "--by", "speaker", "--held-out", 0.34)
    train, test = by_speaker["splits"]["train"], by_speaker["splits"]["test"]
    assert set(train) | set(test) == BOX_CLIPS and len(_speakers(test)) == 1 and not _speakers(train) & _speakers(test)
    assert by_speaker["meta"]["spec"] == spec and by_speaker["meta"]["by"] == "speaker"
    by_utterance = _split(tmp_path, spec, "--by", "utterance", "--held-out", 0.5)
    expected = split_by_utterance(scan(spec).clips, 0.5, 0)
    assert by_utterance["splits"] == {name: [c.clip_id for c in clips] for name, clips in expected.items()}
    assert by_utterance["meta"]["by"] == "utterance" and by_utterance["splits"] != by_speaker["splits"]
    one_speaker = _split(tmp_path, f"aihub:{box_corpus / 'C002'}", "--by", "utterance", "--held-out", 0.5)
    assert _speakers(sum(one_speaker["splits"].values(), [])) == {"C002"}  # the spec names the corpus


def test_data_split_held_out_and_seed(box_corpus, tmp_path, capsys):
    spec = f"aihub:{box_corpus}"
    assert len(_speakers(_split(tmp_path, spec, "--held-out", 0.34)["splits"]["test"])) == 1
    assert len(_speakers(_split(tmp_path, spec, "--held-out", 0.67)["splits"]["test"])) == 2
    held_out = {seed: tuple(sorted(_speakers(_split(tmp_path, spec, "--seed", seed)["splits"]["test"]))) for seed in range(6)}
    assert len(set(held_out.values())) > 1, held_out  # the seed picks the held-out speaker
    again = _split(tmp_path, spec, "--seed", 3)
    assert tuple(sorted(_speakers(again["splits"]["test"]))) == held_out[3] and again["meta"]["seed"] == 3


# ---------------------------------------------------------------------------------------------------
# synth (renders with dlib-fitted faces)


def _synth(out: Path, *flags) -> Path:
    assert cli("synth", "--out", out, *flags) == 0
    return out


def _labels(corpus: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))[0] for p in sorted(corpus.rglob("lip_*.json"))}


def _texts(corpus: Path) -> list[str]:
    return [s["sentence_text"] for label in _labels(corpus).values() for s in label["Sentence_info"]]


def _manifest(corpus: Path) -> dict:
    return json.loads((corpus / "synth.json").read_text(encoding="utf-8"))


REFERENCE_SYNTH = ("--speakers", 1, "--sentences", 3, "--val-sentences", 1, "--unseen-sentences", 1, "--held-out-speakers", 1,
                   "--unseen-speaker-sentences", 2, "--sentences-per-session", 2, "--max-syllables", 12, "--seed", 2)  # fmt: skip


@pytest.fixture(scope="module")
def synth_reference(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory.mktemp("flags") / "synth", *REFERENCE_SYNTH, "--jobs", 1)


def _split_texts(corpus: Path) -> dict[str, list[str]]:
    texts = {f"{stem}_{s['ID']}": s["sentence_text"] for stem, label in _labels(corpus).items() for s in label["Sentence_info"]}
    split = json.loads((corpus / "split.json").read_text(encoding="utf-8"))["splits"]
    return {name: [texts[clip_id] for clip_id in ids] for name, ids in split.items()}


@pytest.mark.dlib
def test_synth_counts_split_and_sentence_set(synth_reference):
    from lipnet_ko.text.sentence_pool import load_pool

    by_split = _split_texts(synth_reference)
    assert {name: len(texts) for name, texts in by_split.items()} == {
        "train": 3, "val": 1, "unseen_sentences": 1, "unseen_speakers": 2}  # fmt: skip
    split = json.loads((synth_reference / "split.json").read_text(encoding="utf-8"))["splits"]
    assert _speakers(split["train"] + split["val"] + split["unseen_sentences"]) == {"C001"}  # --speakers 1
    assert _speakers(split["unseen_speakers"]) == {"C002"}  # --held-out-speakers 1: ids after the training speakers
    assert sorted(p.name for p in synth_reference.iterdir() if p.is_dir()) == ["C001", "C002"]
    assert all(len(label["Sentence_info"]) <= 2 for label in _labels(synth_reference).values())  # --sentences-per-session
    assert len(list(synth_reference.rglob("*.mp4"))) == len(_labels(synth_reference))  # one video per session
    pools = {"train": set(load_pool("train")), "val": set(load_pool("val")), "test": set(load_pool("test"))}
    for name, pool in (("train", "train"), ("val", "val"), ("unseen_sentences", "test"), ("unseen_speakers", "test")):
        assert all(text in pools[pool] for text in by_split[name]), name  # the open set: each split from its pool
    assert all(len(text.replace(" ", "")) <= 12 for texts in by_split.values() for text in texts)  # --max-syllables


@pytest.mark.dlib
def test_synth_grammar_sentence_set_and_output_crops(synth_reference, tmp_path):
    from lipnet_ko.data.crops import load_clip
    from lipnet_ko.synth.corpus import crops_dir
    from lipnet_ko.text.sentences import load_grammar

    corpus = _synth(tmp_path / "crops", *REFERENCE_SYNTH, "--sentence-set", "grammar", "--output", "crops", "--jobs", 1)
    grammar = load_grammar()
    by_split = _split_texts(corpus)
    assert all(grammar.contains(text) for texts in by_split.values() for text in texts)  # --sentence-set grammar
    assert not any(grammar.contains(text) for texts in _split_texts(synth_reference).values() for text in texts)
    assert not list(corpus.rglob("*.mp4"))  # --output crops: no video, the crops straight into OUT-crops
    split = json.loads((corpus / "split.json").read_text(encoding="utf-8"))["splits"]
    every_id = sorted(clip_id for ids in split.values() for clip_id in ids)
    assert sorted(p.stem for p in crops_dir(corpus).glob("*.npz")) == every_id
    arrays = load_clip(crops_dir(corpus) / f"{split['train'][0]}.npz")
    assert arrays["crops"].shape[1:] == (50, 100, 3) and str(arrays["text"]) == by_split["train"][0]


@pytest.mark.dlib
def test_synth_jobs_give_the_same_corpus(synth_reference, tmp_path):
    parallel = _synth(tmp_path / "parallel", *REFERENCE_SYNTH, "--jobs", 2)
    assert _labels(parallel) == _labels(synth_reference)  # the labels hold every frame's rendered lip box


@pytest.mark.dlib
def test_synth_seed_faces_mirror_frame_size_and_preview(synth_reference, tmp_path):
    from lipnet_ko.synth.corpus import default_face_path
    from lipnet_ko.video.reader import probe

    faces = tmp_path / "faces"
    faces.mkdir()
    photo = faces / "b_flipped.png"  # face photos of our own: the default one, and the same mirrored
    cv2.imwrite(str(photo), cv2.imread(str(default_face_path()))[:, ::-1])
    shutil.copy(default_face_path(), faces / "a_plain.png")
    corpus = _synth(tmp_path / "corpus", "--speakers", 2, "--sentences", 1, "--val-sentences", 0, "--unseen-sentences", 0,
                    "--held-out-speakers", 1, "--unseen-speaker-sentences", 1, "--sentences-per-session", 1,
                    "--max-syllables", 12, "--seed", 3, "--faces", faces, "--held-out-photos", 1, "--no-mirror",
                    "--frame-size", 192, "--preview", "--jobs", 1)  # fmt: skip
    mine, reference = _manifest(corpus), _manifest(synth_reference)
    assert [s["rate"] for s in mine["speakers"]][:1] != [s["rate"] for s in reference["speakers"]][:1]  # --seed 3, not 2
    assert [(f["name"], f["held_out"]) for f in mine["faces"]] == [("a_plain.png", False), ("b_flipped.png", True)]
    assert mine["faces"][1]["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    # --no-mirror: two faces in all; the training speakers wear the first photo, the unseen one the held-out photo
    assert [s["face"] for s in mine["speakers"]] == [0, 0, 1]
    assert [s["face"] for s in reference["speakers"]] == [0, 3]  # mirrored: astronaut, its mirror, then the held-out pair
    assert {probe(v).width for v in corpus.rglob("*.mp4")} == {192}
    assert {probe(v).width for v in synth_reference.rglob("*.mp4")} == {160}
    assert (corpus / "preview.png").is_file() and (corpus / "preview.gif").is_file()
    assert not list(synth_reference.glob("preview.*"))


# ---------------------------------------------------------------------------------------------------
# transcribe, evaluate, export (TensorFlow)


def _recorder(monkeypatch, module, name: str) -> list:
    """Wraps ``module.name`` so each call's arguments are recorded; returns the record."""
    calls = []
    original = getattr(module, name)

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls


@pytest.mark.dlib
def test_transcribe_flags(face_video, run_dir, tiny_lm, tmp_path, capsys, monkeypatch):
    from lipnet_ko.app import transcribe
    from lipnet_ko.video.reader import probe

    video = tmp_path / "beside" / face_video.name
    video.parent.mkdir()
    shutil.copy(face_video, video)
    stem = video.stem
    decodes = _recorder(monkeypatch, transcribe, "decode")

    out, burned = tmp_path / "out", tmp_path / "burned" / "subtitled.mp4"
    assert cli("transcribe", video, "--model", run_dir, "--out", out, "--format", "txt,json", "--beam", 3,
               "--lm", tiny_lm, "--burn", burned) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.json", f"{stem}.txt"]
    assert sorted(p.name for p in video.parent.iterdir()) == [video.name]  # nothing beside the video
    assert abs(probe(burned).frame_count - probe(video).frame_count) <= 1
    options = [args[3] for args, _ in decodes]
    assert options and {o.beam_width for o in options} == {3} and {o.lm.order for o in options} == {2}  # the bigram
    assert json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))

    decodes.clear()
    assert cli("transcribe", video, "--model", run_dir, "--no-lm", "--beam", 1) == 0
    beside = sorted(p.name for p in video.parent.iterdir())
    assert beside == sorted([video.name] + [f"{stem}.{fmt}" for fmt in ("txt", "srt", "vtt", "json")])  # default --format
    options = [args[3] for args, _ in decodes]
    assert options and {o.beam_width for o in options} == {1} and {o.lm for o in options} == {None}
    assert not list(tmp_path.rglob("*.subtitled.mp4"))  # no --burn, no video

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # one LM or none, not both
        main(["transcribe", str(video), "--model", str(run_dir), "--lm", str(tiny_lm), "--no-lm"])
    assert exit_.value.code == 2
    monkeypatch.chdir(tmp_path / "beside")  # no runs/latest here: without --model there is no model
    assert cli("transcribe", video, "--out", tmp_path / "none") == 2
    assert not (tmp_path / "none").exists()


def test_evaluate_flags(box_corpus, run_dir, tiny_lm, tmp_path, capsys, monkeypatch):
    from lipnet_ko.app import evaluate

    calls = _recorder(monkeypatch, evaluate, "evaluate")  # evaluate(recognizer, examples, decoders) per split
    first, second = (shutil.copytree(box_corpus, tmp_path / name) for name in ("c1", "c2"))  # own crop caches
    for corpus in (first, second):
        # Crop all clips but one into the corpus's cache, as the model would (default PreprocessConfig), so the one
        # left is cropped in this process: with two or more to do, evaluate starts worker processes that load dlib.
        cache = corpus.with_name(corpus.name + "-crops")
        preprocessed(cache, "--no-progress", inputs=(f"aihub:{corpus}",))
        next(cache.glob("*.npz")).unlink()
    runs = {}
    for corpus, flags in ((first, ("--beam", 2, "--lm", tiny_lm)), (second, ("--beam", 5, "--quiet"))):
        calls.clear()
        terminal, stderr = Terminal(), sys.stderr
        monkeypatch.setattr(sys, "stderr", terminal)
        report = tmp_path / f"report-{corpus.name}"
        assert cli("evaluate", "--model", run_dir, "--data", f"aihub:{corpus}", "--report", report, *flags) == 0
        monkeypatch.setattr(sys, "stderr", stderr)
        (_, examples, decoders), _ = calls[0]
        assert len(calls) == 1 and len(examples) == 6
        runs[corpus.name] = decoders, "\r" in terminal.getvalue(), json.loads((report / "report.json").read_text("utf-8"))
        assert (report / "report.md").is_file()
    (decoders1, bar1, report1), (decoders2, bar2, report2) = runs["c1"], runs["c2"]
    assert decoders1["beam"].beam_width == decoders1["beam_lm"].beam_width == 2
    assert decoders2["beam"].beam_width == decoders2["beam_lm"].beam_width == 5
    assert decoders1["beam_lm"].lm.order == 2 and decoders2["beam_lm"].lm.order != 2  # --lm, else the shipped 5-gram
    assert (bar1, bar2) == (True, False)  # --quiet: no progress bar
    meta = report1["meta"]
    assert Path(meta["model"]).parent == run_dir and meta["data"] == f"aihub:{first}" and meta["splits"] == {"all": 6}
    assert report2["meta"]["beam_width"] == 5

    capsys.readouterr()
    assert cli("evaluate", "--model", run_dir, "--report", tmp_path / "no-data") == 2  # a bare model has no test split
    monkeypatch.chdir(tmp_path)  # no runs/latest: without --model there is no model
    assert cli("evaluate", "--data", f"aihub:{first}", "--report", tmp_path / "no-model") == 2
    assert not (tmp_path / "no-data").exists() and not (tmp_path / "no-model").exists()


def test_export_format_and_out(run_dir, tmp_path, capsys):
    run = shutil.copytree(run_dir, tmp_path / "run")
    assert cli("export", run, "--format", "keras") == 0
    default = run / "export" / "keras"
    assert (default / "model.keras").is_file()
    assert json.loads((default / "export.json").read_text(encoding="utf-8"))["format"] == "keras"
    chosen = tmp_path / "served"
    assert cli("export", run, "--format", "savedmodel", "--out", chosen) == 0
    assert (chosen / "saved_model.pb").is_file() and not (chosen / "model.keras").exists()
    assert not (run / "export" / "savedmodel").exists()
    assert json.loads((chosen / "export.json").read_text(encoding="utf-8"))["source_run"] == str(run)  # RUN_DIR's model


# ---------------------------------------------------------------------------------------------------
# train.py


@pytest.fixture(scope="module")
def train_script():
    spec = importlib.util.spec_from_file_location("train_script", REPO / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def changed_fields(before, after, prefix: str = "") -> set[str]:
    """Dotted names of the dataclass fields that differ (nested configs compared field by field)."""
    changed = set()
    for item in dataclasses.fields(before):
        old, new = getattr(before, item.name), getattr(after, item.name)
        if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new):
            changed |= changed_fields(old, new, f"{prefix}{item.name}.")
        elif old != new:
            changed.add(prefix + item.name)
    return changed


def field_value(config, dotted: str):
    for name in dotted.split("."):
        config = getattr(config, name)
    return config


def test_train_flags_are_all_covered(train_script):
    flags = flags_of(parser_of(lambda: train_script.parse_args([])))
    assert set(TRAIN_SAMPLES) == set(train_script.FLAGS), "give each train.py FLAGS entry a value in TRAIN_SAMPLES"
    assert flags == set(train_script.FLAGS) | set(TRAIN_EXTRA_TESTS), "add train.py's new flags to TRAIN_EXTRA_TESTS"
    missing = {test for test in TRAIN_EXTRA_TESTS.values() if test not in globals()}
    assert not missing, f"TRAIN_EXTRA_TESTS names tests this module does not define: {missing}"


@pytest.mark.parametrize("flag", sorted(TRAIN_SAMPLES))
def test_train_flag_sets_its_field(train_script, flag):
    from lipnet_ko.training.config import TrainConfig

    name, kind = train_script.FLAGS[flag]
    needs = TRAIN_SAMPLE_NEEDS.get(flag, ())
    config = train_script.config_from_args(train_script.parse_args([*needs, flag, TRAIN_SAMPLES[flag]]))
    assert changed_fields(TrainConfig(), config) == {name} | {train_script.FLAGS[f][0] for f in needs[::2]}
    assert field_value(config, name) == kind(TRAIN_SAMPLES[flag])


def test_train_freeze_without_init_is_refused(train_script, monkeypatch, capsys):
    monkeypatch.setattr(train_script, "train", lambda *args, **kwargs: pytest.fail("train() ran"))
    assert train_script.main(["--freeze-frontend-epochs", "2"]) == 2
    assert "needs init_from" in capsys.readouterr().err


def test_train_config_file_then_flags(train_script, tmp_path):
    from lipnet_ko.training.config import TrainConfig

    path = tmp_path / "config.json"
    path.write_text(json.dumps(dataclasses.replace(TrainConfig(), epochs=5, seed=9).to_dict()), encoding="utf-8")
    from_file = train_script.config_from_args(train_script.parse_args(["--config", str(path)]))
    assert changed_fields(TrainConfig(), from_file) == {"epochs", "seed"} and from_file.epochs == 5
    overridden = train_script.config_from_args(train_script.parse_args(["--config", str(path), "--epochs", "7"]))
    assert changed_fields(TrainConfig(), overridden) == {"epochs", "seed"} and overridden.epochs == 7


def test_train_switches(train_script):
    from lipnet_ko.training.config import TrainConfig

    def config(*flags):
        return train_script.config_from_args(train_script.parse_args(list(flags)))

    default = TrainConfig()
    assert default.max_minutes is not None and default.augment is not None
    assert changed_fields(default, config("--no-time-limit")) == {"max_minutes"} and config("--no-time-limit").max_minutes is None
    assert changed_fields(default, config("--no-augment")) == {"augment"} and config("--no-augment").augment is None


def test_train_run_dir_resume_and_quiet_reach_training(train_script, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_train(config, run_dir, *, resume, progress):
        calls.append({"run_dir": Path(run_dir), "resume": resume, "progress": progress})
        return argparse.Namespace(run_dir=run_dir, metrics={})

    monkeypatch.setattr(train_script, "train", fake_train)
    monkeypatch.setattr(train_script, "format_metrics", lambda metrics: "")
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine"
    for argv in ([], ["--run-dir", str(mine)], ["--run-dir", str(mine), "--resume"], ["--resume"], ["--quiet"]):
        assert train_script.main(argv) == 0, argv
    default, chosen, resumed, latest, quiet = calls
    assert default["run_dir"] != mine and chosen == {"run_dir": mine, "resume": False, "progress": True}
    assert resumed == {"run_dir": mine.resolve(), "resume": True, "progress": True}
    assert latest == {"run_dir": (tmp_path / "runs" / "latest").resolve(), "resume": True, "progress": True}
    assert quiet["progress"] is False and not default["resume"] and default["progress"]
