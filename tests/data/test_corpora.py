import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lipnet_ko.data import corpora
from lipnet_ko.app.cli import main
from lipnet_ko.data.corpora import (
    detect_box_order,
    grid_text_from_name,
    parse_spec,
    read_split,
    scan,
    split_by_speaker,
    split_by_utterance,
    write_split,
)
from lipnet_ko.data.clips import Clip
from videos import write_video

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def flat_video(path: Path, frames: int = 100, size=(640, 360), fps: float = 25.0) -> None:
    """A faceless mp4 whose frame i is a flat grey of level i."""
    levels = (np.arange(frames) % 255).astype(np.uint8)[:, None, None, None]
    write_video(path, np.broadcast_to(levels, (frames, size[1], size[0], 3)), fps, fourcc="mp4v")


@pytest.fixture(scope="module")
def aihub_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("aihub")
    (root / "label").mkdir()
    (root / "video").mkdir()
    for label in (FIXTURES / "aihub").glob("*.json"):
        shutil.copy(label, root / "label" / label.name)
        flat_video(root / "video" / f"{label.stem}.mp4")
    flat_video(root / "video" / "lip_K_1_M_40_C105_A_001.mp4")  # no label
    flat_video(root / "video" / "not_an_aihub_name.mp4")
    return root


def reasons(result) -> dict[str, str]:
    """Skip reason per skipped file name, with ``#N`` appended for a skipped sentence N of that file."""
    out = {}
    for item in result.skipped:
        sentence = "#" + item["path"].split("sentence ")[1] if "sentence " in item["path"] else ""
        out[Path(item["path"]).name.split(" ")[0] + sentence] = item["reason"]
    return out


def test_aihub_scan_reports_and_skips(aihub_dir):
    result = scan(f"aihub:{aihub_dir}")
    ids = sorted(c.clip_id for c in result.clips)
    assert ids == [
        "lip_J_2_F_30_C103_A_001_1",
        "lip_J_3_F_41_E104_A_002_1",
        "lip_K_5_M_06_C920_A_001_1",
        "lip_K_5_M_06_C920_A_001_2",
    ]
    why = reasons(result)
    assert "past the end of the video" in why["lip_K_5_M_06_C920_A_001.json#3"]
    assert "empty transcript" in why["lip_K_5_M_06_C920_A_001.json#4"]
    assert "malformed JSON" in why["lip_J_2_F_30_C101_A_001.json"]
    assert "Bounding_box_info" in why["lip_J_2_F_30_C102_A_001.json"]
    assert "50 boxes" in why["lip_J_2_F_30_C103_A_001.json#2"]
    assert "no label" in why["lip_K_1_M_40_C105_A_001.mp4"]
    assert "file name" in why["not_an_aihub_name.mp4"]
    assert not any("C920_B" in c.clip_id for c in result.clips)  # angle B filtered, not reported as failure
    assert not any("C920_B" in item["path"] for item in result.skipped)


def test_aihub_clip_contents(aihub_dir):
    result = scan(f"aihub:{aihub_dir}")
    clip = next(c for c in result.clips if c.clip_id == "lip_K_5_M_06_C920_A_001_2")
    assert clip.text == "삼 퍼센트 올랐어요"  # normalised, pronounced form
    assert clip.speaker == "C920" and (clip.start, clip.end) == (2.0, 3.6)
    assert clip.mouth_boxes.shape == (40, 4)  # 1.6 s at 25 fps
    x0, y0, x1, y1 = clip.mouth_boxes[0]
    assert x1 - x0 == 80 and y1 - y0 == 40  # converted to x-y order: wider than tall
    assert result.box_order == "yxyx"
    assert result.speakers == ["C103", "C920", "E104"]
    assert result.summary()["seconds"] == pytest.approx(1.6 + 1.6 + 1.4 + 2.0)


def test_aihub_filters(aihub_dir):
    all_angles = scan(f"aihub:{aihub_dir}", angles=None)
    assert any(c.clip_id == "lip_K_5_M_06_C920_B_001_1" for c in all_angles.clips)
    only = scan(f"aihub:{aihub_dir}", speakers=["E104"])
    assert [c.speaker for c in only.clips] == ["E104"]
    assert scan(f"aihub:{aihub_dir}", noise=[5]).speakers == ["C920"]


def test_detect_box_order():
    xyxy = np.array([[100, 200, 180, 240], [102, 201, 182, 241]])  # lips: 80 wide, 40 tall
    assert detect_box_order(xyxy, 640, 360) == "xyxy"
    assert detect_box_order(xyxy[:, [1, 0, 3, 2]], 640, 360) == "yxyx"
    tall_frame = np.array([[500, 100, 540, 180]])  # y0=500 only fits as a y in a 360-wide, 640-tall frame
    assert detect_box_order(tall_frame, 360, 640) == "yxyx"
    with pytest.raises(ValueError, match="neither"):
        detect_box_order(np.array([[10, 10, 5, 5]]), 640, 360)


def test_grid_names_and_align(tmp_path):
    assert grid_text_from_name("bbaf2n") == "bin blue at f two now"
    assert grid_text_from_name("id2_vcd_swwp2s") == "set white with p two soon"
    with pytest.raises(ValueError):
        grid_text_from_name("xxxxxx")
    root = tmp_path / "grid"
    shutil.copytree(FIXTURES / "grid", root)
    flat_video(root / "s3" / "bgaa1p.mpg", 75, (360, 288))
    flat_video(root / "s3" / "broken.mpg", 75, (360, 288))  # its .align is malformed
    flat_video(root / "s3" / "lrwp9a.mpg", 75, (360, 288))  # no .align: text from the name
    result = scan(f"grid:{root}")
    texts = {c.clip_id: c.text for c in result.clips}
    assert texts == {"s3/bgaa1p": "bin green at a one please", "s3/lrwp9a": "lay red with p nine again"}
    assert "expected 'START END WORD'" in result.skipped[0]["reason"]
    trimmed = corpora.scan_grid(root, trim_silence=True)
    clip = next(c for c in trimmed.clips if c.clip_id == "s3/bgaa1p")
    assert (clip.start, clip.end) == pytest.approx((11000 / 25000, 52000 / 25000))


def test_grid_real_clips(grid_dir):
    result = scan(f"grid:{grid_dir}")
    assert len(result.clips) == 8 and not result.skipped
    texts = {c.clip_id.split("/")[-1]: c.text for c in result.clips}
    assert texts["pwij3p"] == "place white in j three please"
    assert texts["id2_vcd_swwp2s"] == "set white with p two soon"  # from the .align file
    assert result.summary()["seconds"] == pytest.approx(8 * 3.0, abs=0.5)


def test_grid_own_layout_videos_beside_alignments(tmp_path):
    """GRID ships s1/*.mpg beside alignments/s1/*.align; codes repeat across speakers, so a stem alone is ambiguous."""
    align = (FIXTURES / "grid" / "s3" / "bgaa1p.align").read_text(encoding="utf-8")
    other = align.replace("green", "blue")  # s4 says another sentence under the same code
    root = tmp_path / "GRID"
    for speaker, text in (("s3", align), ("s4", other)):
        (root / speaker).mkdir(parents=True)
        flat_video(root / speaker / "bgaa1p.mpg", 10, (64, 48))
        (root / "alignments" / speaker).mkdir(parents=True)
        (root / "alignments" / speaker / "bgaa1p.align").write_text(text, encoding="utf-8")
    result = scan(f"grid:{root}")
    assert {c.clip_id: (c.speaker, c.text) for c in result.clips} == {
        "s3/bgaa1p": ("s3", "bin green at a one please"),
        "s4/bgaa1p": ("s4", "bin blue at a one please"),
    }
    # video/ beside align/ (how ../shared/data/grid-s1 is laid out): the speaker is the corpus folder's name
    flat = tmp_path / "grid-s9"
    (flat / "video").mkdir(parents=True)
    flat_video(flat / "video" / "bgaa1p.mp4", 10, (64, 48))
    (flat / "align").mkdir()
    (flat / "align" / "bgaa1p.align").write_text(other, encoding="utf-8")
    (clip,) = scan(f"grid:{flat}").clips
    assert (clip.clip_id, clip.speaker, clip.text) == ("grid-s9/bgaa1p", "grid-s9", "bin blue at a one please")
    # two alignments of one code and neither under the video's speaker: skipped, with the reason
    (flat / "align" / "s1").mkdir()
    (flat / "align" / "s1" / "bgaa1p.align").write_text(align, encoding="utf-8")
    (flat / "align" / "bgaa1p.align").rename(flat / "align" / "s2.align")
    (flat / "align" / "s2").mkdir()
    (flat / "align" / "s2.align").rename(flat / "align" / "s2" / "bgaa1p.align")
    ambiguous = scan(f"grid:{flat}")
    assert not ambiguous.clips and "2 .align files named bgaa1p.align" in ambiguous.skipped[0]["reason"]


def test_grid_s1_real_speaker_in_grids_layout(grid_s1_dir):
    result = scan(f"grid:{grid_s1_dir}")
    assert len(result.clips) == 900 and not result.skipped
    assert {c.speaker for c in result.clips} == {grid_s1_dir.name}
    for clip in result.clips:  # every alignment agrees with the sentence GRID's file name spells
        assert clip.text == grid_text_from_name(clip.video.stem), clip.clip_id


def make_clips(speakers=6, per_speaker=10):
    return [Clip(video=Path(f"/v/{s}_{i}.mp4"), text="가", speaker=f"spk{s}", clip_id=f"spk{s}/{i}")
            for s in range(speakers) for i in range(per_speaker)]


def test_speaker_split_is_disjoint_and_reproducible(tmp_path):
    clips = make_clips()
    split = split_by_speaker(clips, 0.34, seed=3)
    train_speakers = {c.speaker for c in split["train"]}
    test_speakers = {c.speaker for c in split["test"]}
    assert not train_speakers & test_speakers and len(test_speakers) == 2
    assert len(split["train"]) + len(split["test"]) == len(clips)
    assert split == split_by_speaker(clips, 0.34, seed=3)
    assert {c.speaker for c in split_by_speaker(list(reversed(clips)), 0.34, seed=3)["test"]} == test_speakers
    assert any({c.speaker for c in split_by_speaker(clips, 0.34, seed=s)["test"]} != test_speakers for s in range(4, 10))
    assert {c.speaker for c in split_by_speaker(clips, ["spk1"])["test"]} == {"spk1"}
    with pytest.raises(ValueError, match="not in the corpus"):
        split_by_speaker(clips, ["nobody"])
    path = tmp_path / "split.json"
    write_split(path, split, seed=3)
    assert read_split(path, clips) == split
    with pytest.raises(ValueError, match="missing from the corpus"):
        read_split(path, clips[:5])


def test_utterance_split_is_stable_when_data_grows():
    clips = make_clips()
    split = split_by_utterance(clips, 0.2, seed=1)
    ids = {c.clip_id for c in split["test"]}
    assert not ids & {c.clip_id for c in split["train"]}
    assert 4 <= len(ids) <= 24
    grown = split_by_utterance(clips + make_clips(8, 10)[60:], 0.2, seed=1)
    assert ids <= {c.clip_id for c in grown["test"]}
    assert split_by_utterance(clips, 0.2, seed=2)["test"] != split["test"]


def test_spec_parsing():
    assert parse_spec("aihub:/data/x") == ("aihub", Path("/data/x"))
    with pytest.raises(ValueError, match="KIND:PATH"):
        parse_spec("youtube:/x")
    with pytest.raises(FileNotFoundError):
        scan("grid:/no/such/folder")


def test_data_inspect_json(aihub_dir, capsys):
    assert main(["data", "inspect", f"aihub:{aihub_dir}", "--json"]) == 1  # clips, and some files skipped
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 4 and summary["speakers"] == 3 and summary["box_order"] == "yxyx"
    assert {"path", "reason"} <= set(summary["skipped"][0])
    assert summary["seconds"] == pytest.approx(6.6)
    assert summary["filtered_out"] == 1 and summary["missing_videos"] == 0 and summary["problem"] is None


def test_data_split_command(aihub_dir, tmp_path, capsys):
    out = tmp_path / "split.json"
    assert main(["data", "split", f"aihub:{aihub_dir}", "--by", "speaker", "--held-out", "0.3", "--out", str(out)]) == 1
    payload = json.loads(out.read_text())
    assert sum(len(v) for v in payload["splits"].values()) == 4 and payload["meta"]["by"] == "speaker"
    assert "skipped (left out of the split" in capsys.readouterr().out


def test_data_split_that_cannot_be_made_is_exit_2_and_writes_nothing(tmp_path, capsys):
    flat_video(tmp_path / "a.mp4", 5, (64, 48))
    (tmp_path / "m.csv").write_text("video,speaker\na.mp4,only\n", encoding="utf-8")
    out = tmp_path / "split.json"
    assert main(["data", "split", f"manifest:{tmp_path / 'm.csv'}", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "error: a speaker split needs at least two speakers, found ['only']"
    assert not out.exists()


# ---------------------------------------------------------------- data inspect: say why nothing, or what is missing


def inspect(spec: str, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["data", "inspect", spec, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    return line


def test_manifest_with_missing_videos_reports_them_and_counts_only_real_clips(tmp_path, capsys):
    flat_video(tmp_path / "here.mp4", 25, (64, 48))
    videos = ["here.mp4", *(f"gone/{i}.mp4" for i in range(5)), "gone/0.mp4"]  # gone/0.mp4 named by two clips
    manifest = tmp_path / "m.jsonl"
    rows = [{"video": video, "text": "가", "speaker": "s1", "clip_id": f"c{i}"} for i, video in enumerate(videos)]
    manifest.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    result = scan(f"manifest:{manifest}")
    assert [c.clip_id for c in result.clips] == ["c0"]
    assert result.missing_videos == [str(tmp_path / "gone" / f"{i}.mp4") for i in range(5)]
    assert len(result.skipped) == 6 and {s["reason"] for s in result.skipped} == {corpora.MISSING_VIDEO}
    code, out, err = inspect(f"manifest:{manifest}", capsys)
    assert code == 1
    assert out.splitlines()[0].startswith(f"manifest:{manifest}: 1 clips, 1 speakers")
    gone = ", ".join(str(tmp_path / "gone" / f"{i}.mp4") for i in range(3))
    assert f"missing: 6 clips name 5 video files that do not exist, e.g. {gone}" in out.splitlines()
    assert str(tmp_path / "gone" / "4.mp4") not in out  # the first few only
    assert "error:" not in err


def test_manifest_whose_videos_are_all_missing_is_exit_2(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,text\nclips/a.mp4,가\nclips/b.mp4,나\n", encoding="utf-8")
    code, out, err = inspect(f"manifest:{manifest}", capsys)
    assert code == 2
    assert out.splitlines()[0] == f"manifest:{manifest}: 0 clips, 0 speakers, 0.000 hours"
    assert error_line(err) == (
        f"error: manifest:{manifest}: no usable clip: every clip of {manifest} names a video that does not exist "
        f"(2 files, e.g. {tmp_path / 'clips' / 'a.mp4'}, {tmp_path / 'clips' / 'b.mp4'}); relative paths start at the "
        "manifest's folder"
    )
    manifest.write_text("video,text\n", encoding="utf-8")
    code, _, err = inspect(f"manifest:{manifest}", capsys)
    assert code == 2 and error_line(err).endswith(f"no usable clip: {manifest} has no clip rows")


def test_aihub_folder_with_nothing_recognisable_says_what_it_looked_for(tmp_path, capsys):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(b"")
    code, out, err = inspect(f"aihub:{tmp_path}", capsys)
    assert code == 2
    assert error_line(err) == (
        f"error: aihub:{tmp_path}: no usable clip: no lip_*.mp4 video with a same-stem .json label under {tmp_path}; "
        "found 3 .mp4 and 0 .json; video names must look like lip_K_5_M_06_C920_A_001.mp4, unlike a.mp4"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    code, _, err = inspect(f"aihub:{empty}", capsys)
    assert code == 2 and error_line(err).endswith("; found 0 video files and 0 .json (1 other files, e.g. notes.txt)")


def test_aihub_videos_without_labels_or_of_other_angles(aihub_dir, tmp_path, capsys):
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    shutil.copy(aihub_dir / "video" / "lip_K_1_M_40_C105_A_001.mp4", unlabelled)
    (unlabelled / "elsewhere.json").write_text("{}")
    code, _, err = inspect(f"aihub:{unlabelled}", capsys)
    assert code == 2
    assert error_line(err).endswith("none of the 1 lip_*.mp4 videos has one; found 1 .json (e.g. elsewhere.json)")

    side = tmp_path / "side"
    side.mkdir()
    shutil.copy(aihub_dir / "video" / "lip_K_5_M_06_C920_B_001.mp4", side)
    shutil.copy(aihub_dir / "label" / "lip_K_5_M_06_C920_B_001.json", side)
    code, out, err = inspect(f"aihub:{side}", capsys)
    assert code == 2
    line = error_line(err)
    assert "that the filters keep (angle A): the 1 lip_*.mp4 videos found have angle B" in line
    assert line.endswith("--angles all keeps them")
    code, out, _ = inspect(f"aihub:{side}", capsys, "--angles", "all")
    assert code == 0 and out.startswith(f"aihub:{side}: 1 clips")
    code, out, err = inspect(f"aihub:{side}", capsys, "--angles", "b")
    assert code == 2 and out == "" and err.strip() == "error: --angles takes camera angles A-I (e.g. A or ABC) or 'all', got 'b'"


def test_aihub_labels_that_all_fail_point_at_the_reasons(tmp_path, capsys):
    flat_video(tmp_path / "lip_J_2_F_30_C101_A_001.mp4", 25, (64, 48))
    shutil.copy(FIXTURES / "aihub" / "lip_J_2_F_30_C101_A_001.json", tmp_path)  # malformed JSON
    code, out, err = inspect(f"aihub:{tmp_path}", capsys)
    assert code == 2
    assert "malformed JSON" in out
    expected = f"none of the 1 labelled videos under {tmp_path} gave a usable clip (see the skipped reasons)"
    assert error_line(err).endswith(expected)


def test_grid_folder_without_videos_and_specs_that_are_not_folders(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("x")
    code, _, err = inspect(f"grid:{tmp_path}", capsys)
    assert code == 2 and "no video file (.mp4, " in error_line(err) and error_line(err).endswith("e.g. readme.txt")
    broken = tmp_path / "broken_grid" / "s3"
    broken.mkdir(parents=True)
    shutil.copy(FIXTURES / "grid" / "s3" / "broken.align", broken)
    flat_video(broken / "broken.mpg", 5, (64, 48))  # its .align is malformed
    code, out, err = inspect(f"grid:{broken.parent}", capsys)
    assert code == 2 and "expected 'START END WORD'" in out
    expected = f"none of the 1 videos under {broken.parent} has a usable transcript (see the skipped reasons)"
    assert error_line(err).endswith(expected)
    readme = tmp_path / "readme.txt"
    code, out, err = inspect(f"aihub:{readme}", capsys)
    assert code == 2 and out == ""
    assert err.strip() == f"error: aihub:{readme}: {readme} is a file; aihub:PATH takes the corpus folder"
    code, out, err = inspect(f"aihub:{tmp_path / 'nowhere'}", capsys)
    assert code == 2 and err.strip() == f"error: aihub:{tmp_path / 'nowhere'}: {tmp_path / 'nowhere'} does not exist"


def test_preprocess_a_corpus_uses_label_boxes(aihub_dir, tmp_path, capsys):
    from lipnet_ko.data.crops import load_clip

    out = tmp_path / "crops"
    # The fixture videos are flat grey frames with no face: only the label boxes can crop them.
    assert main(["preprocess", f"aihub:{aihub_dir}", "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    done = sorted(p.name for p in out.glob("*.npz"))
    expected = ["lip_J_2_F_30_C103_A_001_1", "lip_J_3_F_41_E104_A_002_1", "lip_K_5_M_06_C920_A_001_1",
                "lip_K_5_M_06_C920_A_001_2"]
    assert done == [f"{c}.npz" for c in expected]
    clip = load_clip(out / "lip_K_5_M_06_C920_A_001_2.npz")
    assert clip["crops"].shape == (40, 50, 100, 3)  # 2.0-3.6 s at 25 fps, cut from the 4 s video
    assert str(clip["text"]) == "삼 퍼센트 올랐어요" and float(clip["start"]) == 2.0
    assert np.isfinite(clip["boxes"]).all() and np.isnan(clip["landmarks"]).all()  # boxes given, nothing detected
