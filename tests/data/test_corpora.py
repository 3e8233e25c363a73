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
    assert main(["data", "inspect", f"aihub:{aihub_dir}", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 4 and summary["speakers"] == 3 and summary["box_order"] == "yxyx"
    assert {"path", "reason"} <= set(summary["skipped"][0])
    assert summary["seconds"] == pytest.approx(6.6)


def test_data_split_command(aihub_dir, tmp_path, capsys):
    out = tmp_path / "split.json"
    assert main(["data", "split", f"aihub:{aihub_dir}", "--by", "speaker", "--held-out", "0.3", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert sum(len(v) for v in payload["splits"].values()) == 4 and payload["meta"]["by"] == "speaker"


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
