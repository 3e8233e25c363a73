"""Tests for the synthetic corpus: articulation (pure), the face renderer, and generated corpora (dlib)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipnet_ko.synth import articulation
from lipnet_ko.data import corpora
from lipnet_ko.synth.articulation import articulate
from lipnet_ko.text.sentences import load_free_sentences, split_free_sentences
from lipnet_ko.synth.corpus import (
    SPLIT_NAME,
    SynthConfig,
    default_held_out_speakers,
    fits_ctc,
    free_sentence_pool,
    generate_corpus,
    sample_speaker,
)
from lipnet_ko.text.visemes import MOUTH_FIELDS, MOUTH_SHAPES, REST_SHAPE, viseme_string

TINY = SynthConfig(speakers=2, sentences=4, sentences_per_session=2, held_out_speakers=1, seed=3)


def _track(text: str, seed: int = 0, **options) -> np.ndarray:
    return articulate(text, rng=np.random.default_rng(seed), **options).params


# ---------------------------------------------------------------- articulation (pure numpy)


@pytest.mark.parametrize(
    "text, lookalike",
    [("켜 줘", "꺼 줘"), ("바다", "파타"), ("마음", "바흠"), ("간장", "칸상"), ("굴", "꿀"), ("외국", "왜궁")],
)
def test_lookalike_jamo_give_identical_tracks(text, lookalike):
    assert viseme_string(text) == viseme_string(lookalike)
    assert np.array_equal(_track(text), _track(lookalike))


@pytest.mark.parametrize("text, other", [("바", "아"), ("아", "오"), ("오", "우"), ("이", "에"), ("사", "가"), ("압", "악")])
def test_different_classes_give_different_tracks(text, other):
    a, b = _track(text), _track(other)
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).max() > 0.1


def test_track_shape_range_and_rest_ends():
    params = _track("다람쥐 헌 쳇바퀴에 타고파")
    assert params.dtype == np.float32 and params.shape[1] == len(MOUTH_FIELDS)
    assert params.min() >= 0 and params.max() <= 1
    rest = np.array(REST_SHAPE.astuple())
    assert np.abs(params[0] - rest).max() < 0.1 and np.abs(params[-1] - rest).max() < 0.1


def test_bilabials_close_the_lips_and_vowels_open_them():
    closure, jaw = MOUTH_FIELDS.index("lip_closure"), MOUTH_FIELDS.index("jaw_open")
    params = _track("아바아", seed=1)
    segments = articulate("아바아", rng=np.random.default_rng(1)).segments
    bilabial = next(s for s in segments if s.label == "I:bilabial")
    frame = int((bilabial.start + bilabial.end) / 2 * articulation.FPS)
    assert params[frame, closure] > 0.7
    assert params[:, jaw].max() > 0.6


def test_rate_changes_duration():
    slow, fast = _track("모자를 경 육 위에 다시 놓아", rate=0.8), _track("모자를 경 육 위에 다시 놓아", rate=1.25)
    assert len(slow) > 1.3 * len(fast)


def test_fits_ctc_counts_repeats():
    # 아아: ㅇ ㅏ ㅇ ㅏ = 4 tokens, no adjacent repeats; 으으 likewise; 따따 -> 4 tokens
    assert fits_ctc("아아", 5) and not fits_ctc("아아", 4)
    assert not fits_ctc("다람쥐 헌 쳇바퀴에 타고파", 10)


def test_free_test_sentences_never_in_training_sets():
    _, held_out = split_free_sentences(load_free_sentences(), 0.2, seed=0)
    assert not set(free_sentence_pool("mixed")) & set(held_out)
    assert set(free_sentence_pool("free-test")) == set(held_out)
    assert free_sentence_pool("grammar") == []


def test_speakers_depend_on_seed_and_index_only():
    assert sample_speaker(3, 0, 2, 160) == sample_speaker(3, 0, 2, 160)
    assert sample_speaker(3, 0, 2, 160) != sample_speaker(4, 0, 2, 160)
    assert sample_speaker(3, 0, 2, 160) != sample_speaker(3, 1, 2, 160)


def test_first_session_numbers_the_files_and_keeps_older_cache_keys():
    from lipnet_ko.synth.corpus import plan_corpus

    config = SynthConfig(speakers=2, sentences=5, sentences_per_session=2, held_out_speakers=1)
    assert [p.stem[-6:] for p in plan_corpus(config, 1)][:3] == ["_A_001", "_A_002", "_A_003"]
    later = SynthConfig(speakers=2, sentences=5, sentences_per_session=2, held_out_speakers=1, first_session=101)
    assert [p.stem[-6:] for p in plan_corpus(later, 1)][:3] == ["_A_101", "_A_102", "_A_103"]
    assert "first_session" not in config.cache_key()  # corpora made before the field keep their key
    assert later.cache_key()["first_session"] == 101
    with pytest.raises(ValueError, match="first_session"):
        SynthConfig(first_session=0)


def test_pause_frames_keep_older_cache_keys_and_survive_json():
    assert "pause_frames" not in SynthConfig().cache_key()  # corpora made before the field keep their key
    longer = SynthConfig(pause_frames=(48, 57))
    assert longer.cache_key()["pause_frames"] == [48, 57]
    assert json.loads(json.dumps(longer.cache_key())) == longer.cache_key()  # what synth.json compares
    assert SynthConfig(pause_frames=[48, 57]) == longer  # a config read back from JSON
    for bad in [(0, 5), (5, 5), (1, 2, 3)]:
        with pytest.raises(ValueError, match="pause_frames"):
            SynthConfig(pause_frames=bad)


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="held_out_speakers"):
        SynthConfig(speakers=2, held_out_speakers=2)
    with pytest.raises(ValueError, match="sentence_set"):
        SynthConfig(sentence_set="news")
    with pytest.raises(ValueError, match="px wide"):
        SynthConfig(frame_size=100)


def test_default_held_out_speakers_leave_both_sides_a_speaker():
    assert default_held_out_speakers(SynthConfig().speakers) == SynthConfig().held_out_speakers == 8  # the default corpus
    assert [default_held_out_speakers(n) for n in (1, 2, 3, 4, 5, 10, 12)] == [0, 1, 1, 1, 1, 2, 2]
    for speakers in range(2, 200):
        held_out = default_held_out_speakers(speakers)
        assert 1 <= held_out <= speakers - 1, speakers
        SynthConfig(speakers=speakers, held_out_speakers=held_out)  # always valid


# ---------------------------------------------------------------- CLI (no rendering)


def _synth_cli(argv: list[str], monkeypatch, fail: Exception | None = None) -> tuple[int, list[SynthConfig]]:
    """``lipnet-ko synth ARGV`` through the dispatcher, with generation replaced by a stub that records its config."""
    from lipnet_ko.app.cli import main
    from lipnet_ko.synth import corpus as synth

    seen: list[SynthConfig] = []

    def stub(out, config, progress=False):
        seen.append(config)
        if fail is not None:
            raise fail
        held_out = config.held_out_speakers
        return {"out": str(out), "sessions": 1, "written": 1, "skipped": 0, "sentences": config.sentences, "frames": 10,
                "seconds": 0.1, "frames_per_second": 100.0, "train_speakers": config.speakers - held_out,
                "test_speakers": held_out}  # fmt: skip

    monkeypatch.setattr(synth, "generate_corpus", stub)
    return main(["synth", *argv]), seen


@pytest.mark.parametrize("speakers, held_out", [(40, 8), (2, 1), (3, 1), (10, 2)])
def test_cli_holds_out_a_share_of_the_speakers_by_default(speakers, held_out, tmp_path, monkeypatch, capsys):
    # `lipnet-ko synth --speakers 2` used to exit 2: the fixed default of 8 held-out speakers left none to train on.
    code, seen = _synth_cli(["--out", str(tmp_path / "c"), "--speakers", str(speakers)], monkeypatch)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert seen[0].speakers == speakers and seen[0].held_out_speakers == held_out
    assert f"unseen speakers: the last {held_out}" in captured.out and "error" not in captured.err


def test_cli_with_one_speaker_holds_out_none_and_says_so(tmp_path, monkeypatch, capsys, caplog):
    code, seen = _synth_cli(["--out", str(tmp_path / "c"), "--speakers", "1"], monkeypatch)
    assert code == 0 and seen[0].held_out_speakers == 0
    assert "no unseen speaker is held out" in caplog.text
    assert "unseen speakers: none" in capsys.readouterr().out


def test_cli_keeps_an_explicit_held_out_count(tmp_path, monkeypatch):
    code, seen = _synth_cli(["--out", str(tmp_path / "c"), "--speakers", "5", "--held-out-speakers", "3"], monkeypatch)
    assert code == 0 and seen[0].held_out_speakers == 3
    code, seen = _synth_cli(["--out", str(tmp_path / "c"), "--speakers", "5", "--held-out-speakers", "0"], monkeypatch)
    assert code == 0 and seen[0].held_out_speakers == 0


@pytest.mark.parametrize("argv, fail, message", [
    (["--speakers", "2", "--held-out-speakers", "2"], None, "held_out_speakers"),
    (["--jobs", "0"], None, "jobs"),
    (["--speakers", "2"], ValueError("holds a synthetic corpus made with other settings"), "other settings"),
    (["--speakers", "2"], FileNotFoundError("--faces x: no such file or folder"), "no such file"),
    (["--speakers", "2"], RuntimeError("dlib is required for face detection"), "dlib is required"),
])  # fmt: skip
def test_cli_errors_go_to_standard_error(argv, fail, message, tmp_path, monkeypatch, capsys):
    code, _ = _synth_cli(["--out", str(tmp_path / "c"), *argv], monkeypatch, fail=fail)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("error: ") and message in captured.err
    assert captured.out == ""


def test_cli_help_names_the_held_out_default(capsys):
    from lipnet_ko.app.cli import main

    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: 20% of --speakers" in text and "8 of 40" in text


# ---------------------------------------------------------------- renderer and corpus (dlib)


@pytest.fixture(scope="module")
def faces():
    from lipnet_ko.synth.corpus import load_faces

    return load_faces(TINY)[0]


@pytest.mark.dlib
def test_warp_never_folds_for_any_target(faces):
    from lipnet_ko.synth.face import FaceRenderer, FaceStyle

    shapes = [REST_SHAPE, *MOUTH_SHAPES.values()]
    for style in (FaceStyle(), FaceStyle(mouth_scale=1.12, lip_thickness=1.35, opening=1.15, roundness=1.2),
                  FaceStyle(mouth_scale=0.85, lip_thickness=0.75, opening=0.8, roundness=0.8)):  # fmt: skip
        renderer = FaceRenderer(faces[0], style)
        reference = np.sign(renderer.triangle_areas(np.array(MOUTH_SHAPES["M:eo"].astuple())))
        for shape in shapes:
            areas = renderer.triangle_areas(np.array(shape.astuple()))
            assert np.all((np.sign(areas) == reference) | (np.abs(areas) < 1e-6)), shape


def test_every_default_speaker_articulates_clearly():
    # Version 1 of the corpus drew weak articulation (strength 0.7-1.2): its weakest speaker opened the jaw
    # to 0.56 at most in "살짝 다시 놓아" and kept the lips 0.25 wide in "우리 두 부부", so most vowels
    # showed as a thin slit and the default training stalled. Every default speaker must now open wide
    # for ㅏ and round for ㅜ.
    for index in range(1, SynthConfig().speakers + 1):
        speaker = sample_speaker(index, 0, 2, SynthConfig().frame_size)
        options = dict(rate=speaker.rate, strength=speaker.strength, coarticulation=speaker.coarticulation,
                       rng=np.random.default_rng(index))  # fmt: skip
        jaw = articulate("살짝 다시 놓아", **options).params[:, MOUTH_FIELDS.index("jaw_open")].max()
        width = articulate("우리 두 부부", **options).params[:, MOUTH_FIELDS.index("lip_width")].min()
        assert jaw >= 0.8 and width <= 0.2, (speaker.speaker_id, jaw, width)


@pytest.mark.dlib
def test_warp_never_folds_for_sampled_speakers_speaking(faces):
    from lipnet_ko.synth.face import FaceRenderer

    for index in range(1, 25):
        speaker = sample_speaker(index, 0, len(faces), TINY.frame_size)
        renderer = FaceRenderer(faces[speaker.face], speaker.style)
        reference = np.sign(renderer.triangle_areas(np.array(MOUTH_SHAPES["M:eo"].astuple())))
        params = articulate("왜 봐 우리 엄마 사진을 쥐어", rate=speaker.rate, strength=speaker.strength,
                            rng=np.random.default_rng(index)).params  # fmt: skip
        for row in params[::2]:
            areas = renderer.triangle_areas(row)
            assert np.all((np.sign(areas) == reference) | (np.abs(areas) < 1e-6)), (speaker.speaker_id, row)


@pytest.mark.dlib
def test_rendered_mouths_differ_between_classes_and_close_for_bilabials(faces):
    from lipnet_ko.synth.face import FaceRenderer

    renderer = FaceRenderer(faces[0])

    def mouth(name):
        points = renderer.render(np.array(MOUTH_SHAPES[name].astuple()))[1]
        return np.linalg.norm(points[62] - points[66]), np.linalg.norm(points[54] - points[48])  # lip gap, width

    gap_a, width_a = mouth("M:a")
    gap_u, width_u = mouth("M:u")
    gap_b, _ = mouth("I:bilabial")
    assert gap_a > 3 * gap_u and width_u < 0.85 * width_a
    assert gap_b < 0.5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    summary = generate_corpus(out, TINY)
    return out, summary


def _videos(out: Path) -> list[Path]:
    return sorted(out.rglob("*.mp4"))


@pytest.mark.dlib
def test_corpus_loads_through_the_aihub_reader(corpus):
    out, summary = corpus
    assert summary["sessions"] == 4 and summary["written"] == 4 and summary["sentences"] == 8
    result = corpora.scan(f"synthetic:{out}")
    assert result.skipped == []
    assert len(result.clips) == 8 and result.speakers == ["C001", "C002"]
    assert result.box_order == "yxyx"
    texts = [s["sentence_text"] for p in sorted(out.rglob("lip_*.json")) for s in json.loads(p.read_text())[0]["Sentence_info"]]
    assert sorted(c.text for c in result.clips) == sorted(texts)
    for clip in result.clips:
        assert len(clip.mouth_boxes) == round((clip.end - clip.start) * TINY.fps)
        assert fits_ctc(clip.text, len(clip.mouth_boxes))


@pytest.mark.dlib
def test_data_inspect_reports_no_skipped_clips(corpus):
    from lipnet_ko.app.cli import main

    out, _ = corpus
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["data", "inspect", f"synthetic:{out}", "--json"])
    report = json.loads(stdout.getvalue())
    assert code == 0 and report["skipped"] == [] and report["clips"] == 8


@pytest.mark.dlib
def test_every_frame_has_a_face_and_the_predicted_mouth_lies_in_the_lip_box(corpus):
    from lipnet_ko.video.landmarks import detect_landmarks_naive
    from lipnet_ko.video.reader import read_frames

    out, _ = corpus
    for video in _videos(out):
        frames = read_frames(video).frames
        label = json.loads(video.with_suffix(".json").read_text())[0]
        boxes = np.array(label["Bounding_box_info"]["Lip_bounding_box"]["xtl_ytl_xbr_ybr"])
        assert len(boxes) == len(frames)
        landmarks = detect_landmarks_naive(frames, upsample=0)
        found = ~np.isnan(landmarks).any(axis=(1, 2))
        assert found.all(), f"{video.name}: no face in frames {np.flatnonzero(~found)[:10]}"
        mouth = landmarks[:, 48:68]  # [T, 20, 2]
        tolerance = 2.0  # px
        x, y = mouth[..., 0], mouth[..., 1]
        inside = ((x >= boxes[:, None, 1] - tolerance) & (x <= boxes[:, None, 3] + tolerance)
                  & (y >= boxes[:, None, 0] - tolerance) & (y <= boxes[:, None, 2] + tolerance))  # fmt: skip
        assert inside.mean() > 0.99, f"{video.name}: {1 - inside.mean():.1%} of predicted mouth points outside the lip box"


@pytest.mark.dlib
def test_same_seed_same_corpus_and_rerun_is_a_no_op(corpus, tmp_path):
    from lipnet_ko.video.reader import read_frames

    out, _ = corpus
    again = generate_corpus(tmp_path / "again", TINY)
    assert again["written"] == 4
    first, second = _videos(out), _videos(tmp_path / "again")
    assert [p.relative_to(out) for p in first] == [p.relative_to(tmp_path / "again") for p in second]
    for a, b in zip(first, second):
        assert a.with_suffix(".json").read_bytes() == b.with_suffix(".json").read_bytes()
        assert np.array_equal(read_frames(a).frames, read_frames(b).frames)
    rerun = generate_corpus(out, TINY)
    assert rerun["written"] == 0 and rerun["skipped"] == 4
    other = generate_corpus(tmp_path / "other", SynthConfig(**{**TINY.__dict__, "seed": 4}))
    labels = sorted(p.read_text() for p in (tmp_path / "other").rglob("lip_*.json"))
    assert labels != sorted(p.read_text() for p in out.rglob("lip_*.json")) and other["written"] == 4


@pytest.mark.dlib
def test_other_settings_in_the_same_folder_are_refused(corpus):
    out, _ = corpus
    with pytest.raises(ValueError, match="other settings"):
        generate_corpus(out, SynthConfig(**{**TINY.__dict__, "sentences": 6}))


@pytest.mark.dlib
def test_split_holds_out_the_last_speakers(corpus):
    out, _ = corpus
    split = corpora.read_split(out / SPLIT_NAME, corpora.scan(f"synthetic:{out}").clips)
    assert {c.speaker for c in split["test"]} == {"C002"} and {c.speaker for c in split["train"]} == {"C001"}
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["test_speakers"] == ["C002"] and manifest["config"]["seed"] == TINY.seed


@pytest.mark.dlib
def test_cli_writes_corpus_and_preview(tmp_path):
    from lipnet_ko.synth import corpus as synth

    parser = argparse.ArgumentParser()
    synth.configure_parser(parser)
    # No --held-out-speakers: with 2 speakers the default holds out the last one.
    args = parser.parse_args(["--out", str(tmp_path / "c"), "--speakers", "2", "--sentences", "1",
                              "--jobs", "2", "--preview", "--sentence-set", "free-test"])  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert synth.run(args) == 0
    manifest = json.loads((tmp_path / "c" / "synth.json").read_text())
    assert manifest["train_speakers"] == ["C001"] and manifest["test_speakers"] == ["C002"]
    assert (tmp_path / "c" / "preview.png").is_file() and (tmp_path / "c" / "preview.gif").is_file()
    sheet = cv2.imread(str(tmp_path / "c" / "preview.png"))
    assert sheet is not None and sheet.shape[0] >= 3 * 160
    _, held_out = split_free_sentences(load_free_sentences(), 0.2, seed=0)
    assert all(c.text in held_out for c in corpora.scan(f"synthetic:{tmp_path / 'c'}").clips)


@pytest.mark.dlib
def test_faces_from_real_grid_frames(grid_videos, tmp_path):
    from lipnet_ko.video.landmarks import detect_landmarks_naive
    from lipnet_ko.video.reader import read_frames

    folder = tmp_path / "faces"
    folder.mkdir()
    for video in grid_videos[:2]:
        frame = read_frames(video, 0.0, 0.2).frames[0]
        cv2.imwrite(str(folder / f"{video.stem}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    config = SynthConfig(speakers=2, sentences=1, sentences_per_session=1, held_out_speakers=1, faces=str(folder))
    summary = generate_corpus(tmp_path / "c", config)
    assert summary["written"] == 2
    manifest = json.loads((tmp_path / "c" / "synth.json").read_text())
    assert [f["used"] for f in manifest["faces"]] == [True, True]
    for video in _videos(tmp_path / "c"):
        frames = read_frames(video).frames[::3]
        assert not np.isnan(detect_landmarks_naive(frames, upsample=0)).any(), video.name
