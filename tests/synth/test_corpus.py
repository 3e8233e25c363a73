"""Tests for the synthetic corpus: articulation (pure), the face renderer, and generated corpora (dlib)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipnet_ko.synth import articulation
from lipnet_ko.data import corpora
from lipnet_ko.synth.articulation import articulate
from lipnet_ko.synth.corpus import (
    SPLIT_NAME,
    SPLITS,
    SynthConfig,
    crops_dir,
    fits_ctc,
    generate_corpus,
    plan_corpus,
    sample_speaker,
    syllable_count,
)
from lipnet_ko.text.sentence_pool import load_pool as real_load_pool
from lipnet_ko.text.visemes import MOUTH_FIELDS, MOUTH_SHAPES, REST_SHAPE, viseme_string

# A stand-in for lipnet_ko.text.sentence_pool (helper A's data): disjoint train / val / test sentences.
POOL = {
    "train": ["오늘 날씨가 좋다", "우리 집에 가자", "바다를 보고 싶어", "밥을 먹었어요", "책을 읽는 사람", "문을 열어 주세요",
              "아이들이 뛰어논다", "커피 한 잔 주세요", "버스가 늦게 왔다", "꽃이 피었습니다"],
    "val": ["내일 다시 만나요", "길이 많이 막혀요"],
    "test": ["하늘이 파랗다", "노래를 부르자", "시장에 갔어요", "물을 마셔요"],
}  # fmt: skip
TINY = SynthConfig(speakers=2, sentences=4, val_sentences=1, unseen_sentences=1, held_out_speakers=1,
                   unseen_speaker_sentences=2, sentences_per_session=2, seed=3)  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def sentence_pool():
    from lipnet_ko.text import sentence_pool

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sentence_pool, "load_pool", lambda split: list(POOL[split]))
        yield


def _track(text: str, seed: int = 0, **options) -> np.ndarray:
    return articulate(text, rng=np.random.default_rng(seed), **options).params


# ---------------------------------------------------------------- articulation (pure numpy)



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




# ---------------------------------------------------------------- plan: speakers, splits, sentences (no rendering)


def _texts(plans, split):
    return [t for p in plans if p.split == split for t in p.texts]


def test_splits_draw_from_their_pools_only():
    plans = plan_corpus(TINY, (2, 2))
    assert {p.split for p in plans} == set(SPLITS)
    assert set(_texts(plans, "train")) <= set(POOL["train"]) and set(_texts(plans, "val")) <= set(POOL["val"])
    for split in ("unseen_sentences", "unseen_speakers"):
        assert _texts(plans, split) and set(_texts(plans, split)) <= set(POOL["test"])
    assert len(_texts(plans, "train")) == 8 and len(_texts(plans, "unseen_speakers")) == 2
    assert {p.speaker.speaker_id for p in plans if p.split == "unseen_speakers"} == {"C003"}
    assert all(p.speaker.held_out == (p.split == "unseen_speakers") for p in plans)


def test_sentences_repeat_as_little_as_possible_and_respect_the_length_cap():
    config = SynthConfig(speakers=4, sentences=5, held_out_speakers=0, max_syllables=7)
    short = [s for s in POOL["train"] if syllable_count(s) <= 7]
    assert 0 < len(short) < len(POOL["train"])
    train = _texts(plan_corpus(config, (2, 0)), "train")
    assert set(train) <= set(short)
    counts = {s: train.count(s) for s in short}
    assert max(counts.values()) - min(counts.values()) <= 1  # dealt from shuffled copies of the pool
    with pytest.raises(ValueError, match="max_syllables"):
        plan_corpus(SynthConfig(speakers=1, sentences=1, held_out_speakers=0, max_syllables=2), (2, 0))


def test_unseen_speakers_use_held_out_faces_only():
    plans = plan_corpus(SynthConfig(speakers=6, sentences=1, held_out_speakers=3, unseen_speaker_sentences=1), (4, 2))
    trained = {p.speaker.face for p in plans if not p.speaker.held_out}
    unseen = {p.speaker.face for p in plans if p.speaker.held_out}
    assert trained == {0, 1, 2, 3} and unseen == {4, 5}
    with pytest.raises(ValueError, match="held-out photo"):
        plan_corpus(TINY, (2, 0))


def test_the_shipped_pool_gives_the_default_corpus_few_repeats(monkeypatch):
    from lipnet_ko.synth.corpus import sentence_pools
    from lipnet_ko.text import sentence_pool

    monkeypatch.setattr(sentence_pool, "load_pool", real_load_pool)
    config = SynthConfig()
    pools = sentence_pools(config)
    assert len(pools["train"]) * 2 >= config.speakers * config.sentences  # each train sentence said at most twice
    assert len(pools["val"]) * 2 >= config.speakers * config.val_sentences
    assert len(pools["unseen_sentences"]) >= config.speakers * config.unseen_sentences  # test sentences: no repeat
    assert len(pools["unseen_speakers"]) >= config.held_out_speakers * config.unseen_speaker_sentences
    assert not set(pools["train"]) & set(pools["unseen_sentences"]) and not set(pools["val"]) & set(pools["unseen_sentences"])


def test_speakers_depend_on_seed_and_index_only():
    assert sample_speaker(3, 0, range(2), 160) == sample_speaker(3, 0, range(2), 160)
    assert sample_speaker(3, 0, range(2), 160) != sample_speaker(4, 0, range(2), 160)
    assert sample_speaker(3, 0, range(2), 160) != sample_speaker(3, 1, range(2), 160)


def test_default_corpus_size_and_cache_key():
    config = SynthConfig()
    assert config.output == "crops" and config.speakers * config.sentences >= 6000
    assert config.speakers * config.val_sentences == 288 and config.speakers * config.unseen_sentences == 288
    assert config.held_out_speakers * config.unseen_speaker_sentences == 324
    key = config.cache_key()
    assert key["version"] == 4 and "jobs" not in key and json.loads(json.dumps(key)) == key
    assert SynthConfig(pause_frames=[48, 57]) == SynthConfig(pause_frames=(48, 57))  # a config read back from JSON


def test_config_validation_names_the_problem():
    for options, name in [({"held_out_speakers": -1}, "held_out_speakers"), ({"sentence_set": "news"}, "sentence_set"),
                          ({"frame_size": 100}, "px wide"), ({"output": "gif"}, "output"),
                          ({"held_out_photos": 0}, "held_out_photos"), ({"pause_frames": (5, 5)}, "pause_frames"),
                          ({"sentences_per_session": 1, "sentences": 500}, "session numbers")]:  # fmt: skip
        with pytest.raises(ValueError, match=name):
            SynthConfig(**options)


def test_every_default_speaker_articulates_clearly():
    # Version 1 of the corpus drew weak articulation (strength 0.7-1.2): its weakest speaker opened the jaw
    # to 0.56 at most in "살짝 다시 놓아" and kept the lips 0.25 wide in "우리 두 부부", so most vowels
    # showed as a thin slit and the default training stalled. Every default speaker must open wide
    # for ㅏ and round for ㅜ.
    config = SynthConfig()
    for index in range(1, config.speakers + config.held_out_speakers + 1):
        speaker = sample_speaker(index, 0, range(2), config.frame_size)
        options = dict(rate=speaker.rate, strength=speaker.strength, coarticulation=speaker.coarticulation,
                       rng=np.random.default_rng(index))  # fmt: skip
        jaw = articulate("살짝 다시 놓아", **options).params[:, MOUTH_FIELDS.index("jaw_open")].max()
        width = articulate("우리 두 부부", **options).params[:, MOUTH_FIELDS.index("lip_width")].min()
        assert jaw >= 0.8 and width <= 0.2, (speaker.speaker_id, jaw, width)


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
        return {"out": str(out), "crops": None, "sessions": 1, "written": 1, "skipped": 0, "sentences": 3,
                "clips": {name: 1 for name in SPLITS}, "frames": 10, "seconds": 0.1, "frames_per_second": 100.0,
                "train_speakers": config.speakers, "test_speakers": config.held_out_speakers}  # fmt: skip

    monkeypatch.setattr(synth, "generate_corpus", stub)
    return main(["synth", *argv]), seen


def test_cli_writes_videos_by_default_and_crops_on_request(tmp_path, monkeypatch, capsys):
    code, seen = _synth_cli(["--out", str(tmp_path / "c"), "--speakers", "3", "--held-out-speakers", "1"], monkeypatch)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert seen[0].output == "video" and seen[0].speakers == 3 and seen[0].held_out_speakers == 1
    assert "splits: train 1, val 1, unseen_sentences 1, unseen_speakers 1" in captured.out
    code, seen = _synth_cli(["--out", str(tmp_path / "c"), "--output", "crops"], monkeypatch)
    assert code == 0 and seen[0].output == "crops"


@pytest.mark.parametrize("argv, fail, message", [
    (["--held-out-speakers", "-1"], None, "held_out_speakers"),
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


# ---------------------------------------------------------------- renderer and corpora (dlib)


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


@pytest.mark.dlib
def test_warp_never_folds_for_sampled_speakers_speaking(faces):
    from lipnet_ko.synth.corpus import speaker_face
    from lipnet_ko.synth.face import FaceRenderer

    for index in range(1, 25):
        speaker = sample_speaker(index, 0, range(len(faces)), TINY.frame_size)
        renderer = FaceRenderer(speaker_face(speaker, faces, 0), speaker.style)
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
def crops_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return out, generate_corpus(out, TINY)


@pytest.fixture(scope="module")
def video_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "videos"
    return out, generate_corpus(out, SynthConfig(**{**TINY.__dict__, "output": "video"}))


def _crop_files(out: Path) -> list[Path]:
    return sorted(crops_dir(out).glob("*.npz"))


@pytest.mark.dlib
def test_tiny_crops_corpus_is_fast_and_has_the_four_splits(crops_corpus):
    out, summary = crops_corpus
    assert summary["clips"] == {"train": 8, "val": 2, "unseen_sentences": 2, "unseen_speakers": 2}
    assert summary["seconds"] < 20  # about 3 s on the 2-core machine, dlib's face fit included
    assert not list(out.rglob("*.mp4")) and len(_crop_files(out)) == 14
    result = corpora.scan(f"synthetic:{out}")
    assert result.skipped == [] and len(result.clips) == 14 and result.speakers == ["C001", "C002", "C003"]
    split = corpora.read_split(out / SPLIT_NAME, result.clips)
    assert list(split) == list(SPLITS) and sum(len(v) for v in split.values()) == 14
    assert {c.clip_id for c in result.clips} == {p.stem for p in _crop_files(out)}


@pytest.mark.dlib
def test_split_sentences_come_from_their_pools(crops_corpus):
    out, _ = crops_corpus
    split = corpora.read_split(out / SPLIT_NAME, corpora.scan(f"synthetic:{out}").clips)
    for name in ("train", "val"):
        assert not {c.text for c in split[name]} & set(POOL["test"])
    assert {c.text for c in split["train"]} <= set(POOL["train"]) and {c.text for c in split["val"]} <= set(POOL["val"])
    for name in ("unseen_sentences", "unseen_speakers"):
        assert {c.text for c in split[name]} <= set(POOL["test"])
    assert {c.speaker for c in split["unseen_speakers"]} == {"C003"}
    assert not {c.speaker for c in split["unseen_speakers"]} & {c.speaker for c in split["train"]}


@pytest.mark.dlib
def test_no_held_out_photo_is_used_by_a_training_clip(crops_corpus):
    from lipnet_ko.synth.corpus import face_paths

    out, _ = crops_corpus
    photos = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in face_paths(None)}
    meta = json.loads((out / SPLIT_NAME).read_text())["meta"]
    held = set(meta["held_out_photos"])
    assert held and held <= set(photos.values()) and len(held) < len(photos)
    split = corpora.read_split(out / SPLIT_NAME, corpora.scan(f"synthetic:{out}").clips)
    used = {}
    for name, clips in split.items():
        for clip in clips:
            label = json.loads(clip.video.with_suffix(".json").read_text())[0]
            used.setdefault(name, set()).add(photos[label["speaker_info"]["face"].removesuffix("-mirrored")])
    for name in ("train", "val", "unseen_sentences"):
        assert not used[name] & held, name  # neither a held-out photo nor its mirror
    assert used["unseen_speakers"] <= held


@pytest.mark.dlib
def test_preprocess_finds_the_crops_done_and_names_missing_ones(crops_corpus, tmp_path, capsys):
    import shutil

    from lipnet_ko.app.cli import main

    out, _ = crops_corpus
    copy = tmp_path / "crops"
    shutil.copytree(crops_dir(out), copy)
    missing = sorted(copy.glob("*.npz"))[0]
    missing.unlink()
    code = main(["preprocess", f"synthetic:{out}", "--out", str(copy), "--jobs", "1", "--no-progress"])
    report = json.loads((copy / "preprocess_report.json").read_text())
    assert code == 1 and report["counts"]["skipped"] == 13 and report["counts"]["failed"] == 1
    failed = next(e for e in report["clips"] if e["status"] == "failed")
    assert failed["clip_id"] == missing.stem and "video not found" in failed["reason"]
    assert f"failed {missing.stem}: VideoError: video not found" in capsys.readouterr().out


@pytest.mark.dlib
def test_direct_crops_match_the_crops_of_the_written_video(video_corpus, crops_corpus):
    # The two corpora have the same settings but the output mode, so the same frames: the crops differ by the mp4 codec only.
    from lipnet_ko.data.crops import load_clip
    from lipnet_ko.video.extract import PreprocessConfig, extract_mouth_from_video

    videos, _ = video_corpus
    out, _ = crops_corpus
    clips = {c.clip_id: c for c in corpora.scan(f"synthetic:{videos}").clips}
    direct = {c.clip_id: c for c in corpora.scan(f"synthetic:{out}").clips}
    assert clips.keys() == direct.keys()
    errors = []
    for clip_id, clip in clips.items():
        assert np.array_equal(clip.mouth_boxes, direct[clip_id].mouth_boxes) and clip.text == direct[clip_id].text
        from_video = extract_mouth_from_video(clip.video, clip.start, clip.end, PreprocessConfig(), boxes=clip.mouth_boxes)
        stored = load_clip(crops_dir(out) / f"{clip_id}.npz")
        assert stored["crops"].shape == from_video.crops.shape
        np.testing.assert_allclose(stored["transforms"], from_video.transforms, atol=1e-4)
        errors.append(np.abs(stored["crops"].astype(np.float32) - from_video.crops).mean())
    # mp4v at OpenCV's default quality: measured mean absolute difference 2.8-4.8 grey levels (of 255) per clip of this
    # corpus, 99th percentile of the per-pixel difference at most 18; a misaligned crop would differ by far more.
    assert max(errors) < 6.0, errors


@pytest.mark.dlib
def test_every_frame_has_a_face_and_the_predicted_mouth_lies_in_the_lip_box(video_corpus):
    from lipnet_ko.video.landmarks import detect_landmarks_naive
    from lipnet_ko.video.reader import read_frames

    out, _ = video_corpus
    for video in sorted(out.rglob("*.mp4")):
        frames = read_frames(video).frames
        label = json.loads(video.with_suffix(".json").read_text())[0]
        boxes = np.array(label["Bounding_box_info"]["Lip_bounding_box"]["xtl_ytl_xbr_ybr"])
        assert len(boxes) == len(frames)
        landmarks = detect_landmarks_naive(frames, upsample=0)
        found = ~np.isnan(landmarks).any(axis=(1, 2))
        assert found.mean() > 0.95, f"{video.name}: no face in frames {np.flatnonzero(~found)[:10]}"
        mouth = landmarks[found, 48:68]  # [T, 20, 2]
        tolerance = 2.0  # px
        x, y, b = mouth[..., 0], mouth[..., 1], boxes[found]
        inside = ((x >= b[:, None, 1] - tolerance) & (x <= b[:, None, 3] + tolerance)
                  & (y >= b[:, None, 0] - tolerance) & (y <= b[:, None, 2] + tolerance))  # fmt: skip
        assert inside.mean() > 0.98, f"{video.name}: {1 - inside.mean():.1%} of predicted mouth points outside the lip box"


@pytest.mark.dlib
def test_same_seed_same_crops_and_rerun_is_a_no_op(crops_corpus, tmp_path):
    out, _ = crops_corpus
    again = generate_corpus(tmp_path / "again", TINY)
    assert again["written"] == 9
    for a, b in zip(_crop_files(out), _crop_files(tmp_path / "again"), strict=True):
        assert a.name == b.name
        with np.load(a) as x, np.load(b) as y:
            assert np.array_equal(x["crops"], y["crops"]) and np.array_equal(x["transforms"], y["transforms"])
    labels = lambda root: [p.read_bytes() for p in sorted(root.rglob("lip_*.json"))]  # noqa: E731
    assert labels(out) == labels(tmp_path / "again")
    rerun = generate_corpus(out, TINY)
    assert rerun["written"] == 0 and rerun["skipped"] == 9
    generate_corpus(tmp_path / "other", SynthConfig(**{**TINY.__dict__, "seed": 4}))
    assert labels(tmp_path / "other") != labels(out)


@pytest.mark.dlib
def test_other_settings_in_the_same_folder_are_refused(crops_corpus):
    out, _ = crops_corpus
    with pytest.raises(ValueError, match="other settings"):
        generate_corpus(out, SynthConfig(**{**TINY.__dict__, "sentences": 6}))


@pytest.mark.dlib
def test_cli_writes_a_video_corpus_and_preview(tmp_path):
    from lipnet_ko.synth import corpus as synth

    parser = argparse.ArgumentParser()
    synth.configure_parser(parser)
    args = parser.parse_args(["--out", str(tmp_path / "c"), "--speakers", "2", "--sentences", "1", "--val-sentences", "0",
                              "--unseen-sentences", "0", "--held-out-speakers", "1", "--unseen-speaker-sentences", "1",
                              "--jobs", "2", "--preview"])  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert synth.run(args) == 0
    manifest = json.loads((tmp_path / "c" / "synth.json").read_text())
    assert manifest["train_speakers"] == ["C001", "C002"] and manifest["test_speakers"] == ["C003"]
    assert len(list((tmp_path / "c").rglob("*.mp4"))) == 3
    assert (tmp_path / "c" / "preview.png").is_file() and (tmp_path / "c" / "preview.gif").is_file()
    sheet = cv2.imread(str(tmp_path / "c" / "preview.png"))
    assert sheet is not None and sheet.shape[0] >= 3 * 160
    assert len(corpora.scan(f"synthetic:{tmp_path / 'c'}").clips) == 3


@pytest.mark.dlib
def test_faces_from_real_grid_frames(grid_videos, tmp_path):
    from lipnet_ko.video.landmarks import detect_landmarks_naive
    from lipnet_ko.video.reader import read_frames

    folder = tmp_path / "faces"
    folder.mkdir()
    for video in grid_videos[:2]:
        frame = read_frames(video, 0.0, 0.2).frames[0]
        cv2.imwrite(str(folder / f"{video.stem}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    config = SynthConfig(speakers=1, sentences=1, val_sentences=0, unseen_sentences=0, held_out_speakers=1,
                         unseen_speaker_sentences=1, sentences_per_session=1, faces=str(folder), output="video")  # fmt: skip
    summary = generate_corpus(tmp_path / "c", config)
    assert summary["written"] == 2
    manifest = json.loads((tmp_path / "c" / "synth.json").read_text())
    assert [f["used"] for f in manifest["faces"]] == [True, True] and [f["held_out"] for f in manifest["faces"]] == [False, True]
    for video in sorted((tmp_path / "c").rglob("*.mp4")):
        frames = read_frames(video).frames[::3]
        assert np.isnan(detect_landmarks_naive(frames, upsample=0)).any(axis=(1, 2)).mean() < 0.1, video.name
