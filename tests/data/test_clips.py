"""lipnet_ko.data.clips: the Clip record and manifest reading (CSV and JSON Lines)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lipnet_ko.data.clips import Clip, ManifestError, read_manifest


def test_csv_manifest(tmp_path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(
        "video,start,end,text,speaker\n"
        "videos/a.mp4,1.5,3.25,다람쥐 헌 쳇바퀴에 타고파,spk1\n"
        "/abs/b.mov,,,,\n"
        'videos/a.mp4,4,5,"쉼표, 있는 문장",spk1\n',
        encoding="utf-8",
    )
    clips = read_manifest(manifest)
    assert [c.video for c in clips] == [tmp_path / "videos" / "a.mp4", Path("/abs/b.mov"), tmp_path / "videos" / "a.mp4"]
    assert (clips[0].start, clips[0].end, clips[0].text, clips[0].speaker) == (1.5, 3.25, "다람쥐 헌 쳇바퀴에 타고파", "spk1")
    assert clips[1].start is None and clips[1].end is None and clips[1].text == ""
    assert clips[2].text == "쉼표, 있는 문장"
    assert [c.clip_id for c in clips] == ["videos/a_1.500-3.250", "b", "videos/a_4.000-5.000"]


def test_jsonl_manifest_with_clip_ids(tmp_path):
    manifest = tmp_path / "clips.jsonl"
    rows = [{"video": "x.mp4", "start": 0, "text": "안녕", "clip_id": "s1/0001"}, {"video": "y.mp4", "end": 2.0}]
    manifest.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    first, second = read_manifest(manifest)
    assert first.clip_id == "s1/0001" and first.start == 0.0 and first.end is None and first.text == "안녕"
    assert second.clip_id == "y_0.000-2.000" and second.video == tmp_path / "y.mp4"


def test_bom_and_extra_columns_are_tolerated(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes("\ufeffvideo,notes\nclip.mp4,whatever\n".encode("utf-8"))
    (clip,) = read_manifest(manifest)
    assert clip.video == tmp_path / "clip.mp4"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("m.csv", "file,start\nx.mp4,1\n", r"m.csv:1: the header must name a 'video' column"),
        ("m.csv", "video,start,end\nx.mp4,1,2\ny.mp4,soon,3\n", r"m.csv:3: column 'start' must be a number"),
        ("m.csv", "video,start,end\nx.mp4,3,2\n", r"m.csv:2: end \(2.0\) must be after start \(3.0\)"),
        ("m.csv", "video,start\nx.mp4,-1\n", r"m.csv:2: column 'start' must be a finite number >= 0"),
        ("m.csv", "video,start\n,1\n", r"m.csv:2: the 'video' column is missing or empty"),
        ("m.csv", "video\nx.mp4,extra\n", r"m.csv:2: more fields than the header"),
        ("m.jsonl", '{"video": "x.mp4"}\n{"video": \n', r"m.jsonl:2: not valid JSON"),
        ("m.jsonl", '["x.mp4"]\n', r"m.jsonl:1: each line must be a JSON object"),
        ("m.jsonl", '{"video": "x.mp4", "end": "nan"}\n', r"m.jsonl:1: column 'end' must be a finite number"),
        ("m.jsonl", '{"video": "x.mp4", "clip_id": "../up"}\n', r"m.jsonl:1: .*without '\.\.'"),
        ("m.jsonl", '{"video": "a/x.mp4"}\n{"video": "b/../a/x.mp4", "clip_id": "a/x"}\n', r"clip_id 'a/x' appears twice"),
        ("m.txt", "video\nx.mp4\n", r"must be .csv or .jsonl"),
    ],
)
def test_malformed_manifests_name_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ManifestError, match=message):
        read_manifest(path)


def test_missing_manifest_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        read_manifest(tmp_path / "nope.csv")


def test_clip_defaults_and_validation():
    clip = Clip(video="talks/t.mp4", start=2, end=4.5)
    assert clip.video == Path("talks/t.mp4") and clip.clip_id == "t_2.000-4.500" and isinstance(clip.start, float)
    assert Clip(video="t.mp4", start=3.0).clip_id == "t_3.000-end"
    boxes = Clip(video="t.mp4", mouth_boxes=[[1, 2, 3, 4]] * 5).mouth_boxes
    assert boxes.dtype == np.float32 and boxes.shape == (5, 4)
    assert hash(Clip(video="t.mp4", mouth_boxes=boxes)) == hash(Clip(video="t.mp4"))  # boxes are not part of identity
    with pytest.raises(ValueError, match="end"):
        Clip(video="t.mp4", start=2, end=1)
    with pytest.raises(ValueError, match=r"\[T, 4\]"):
        Clip(video="t.mp4", mouth_boxes=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="relative"):
        Clip(video="t.mp4", clip_id="/abs/name")
