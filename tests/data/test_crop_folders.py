"""lipnet_ko.data.crop_folders: ``crops:DIR`` corpora (LipNet's mouth-crop folders) through scan, the crop cache and
the examples, on small corpora written here and on the real korean-speaker clips."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipnet_ko.app.cli import main
from lipnet_ko.data.batching import load_examples
from lipnet_ko.data.corpora import parse_spec, scan
from lipnet_ko.data.crop_folders import FPS, crop_folder_fps, is_crop_folder, read_crop_corpus, read_crop_folder
from lipnet_ko.data.crops import expand_inputs, is_done, load_clip, output_path, run_batch
from lipnet_ko.text.tokenizer import JamoTokenizer
from lipnet_ko.training.run_data import DataConfig, corpus_examples, prepare_data
from lipnet_ko.video.extract import PreprocessConfig
from lipnet_ko.video.mouth import MouthConfig

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # as tests/conftest.py finds it
KOREAN_SPEAKER = SHARED_DATA / "korean-speaker"
VIDEO_TIMINGS = {"decode", "detect", "landmarks", "crop", "total"}  # the keys lipnet_ko.video.extract reports

TEXTS = {"a1": "학생 축구 그러나 사 주황", "b2": "  다람쥐   헌 쳇바퀴에 타고파 ", "c10": "학생 축구 하지만 칠 노랑"}
FRAMES = {"a1": 6, "b2": 8, "c10": 10}


def pattern(frames: int, height: int = 50, width: int = 100, seed: int = 0) -> np.ndarray:
    """uint8 [T, H, W, 3] RGB with a different picture per channel (R ramps across, G down, B with time), so
    a swapped channel order or a wrong frame order shows."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        out[t, ..., 0] = (x * 255 // max(width - 1, 1) + seed) % 256
        out[t, ..., 1] = (y * 255 // max(height - 1, 1) + 3 * seed) % 256
        out[t, ..., 2] = (20 * t + 7 * seed) % 256
    return out


def write_clip(folder: Path, rgb: np.ndarray, name: str = "mouth_{:03d}.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(rgb):
        assert cv2.imwrite(str(folder / name.format(t)), np.ascontiguousarray(frame[..., ::-1]))  # cv2 writes BGR
    return folder


def write_labels(root: Path, rows: list[str], header: str = "clip,text") -> None:
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """``speaker-one/``: three labelled clips of 6, 8 and 10 frames of 100x50 RGB PNGs."""
    root = tmp_path / "speaker-one"
    pixels = {name: pattern(FRAMES[name], seed=i) for i, name in enumerate(TEXTS)}
    for name, rgb in pixels.items():
        write_clip(root / "clips" / name, rgb)
    write_labels(root, [f"{name},{text}" for name, text in TEXTS.items()])
    return root, pixels


def skip_reasons(result) -> dict[str, str]:
    """Skip reason per skipped clip folder name, or per ``labels.csv:LINE``."""
    return {Path(item["path"]).name: item["reason"] for item in result.skipped}


def test_scan_finds_the_clips_with_text_speaker_ids_and_durations(corpus):
    root, _ = corpus
    assert parse_spec(f"crops:{root}") == ("crops", root)
    result = scan(f"crops:{root}")
    assert not result.skipped and not result.problem and result.spec == f"crops:{root}"
    by_id = {clip.clip_id: clip for clip in result.clips}
    assert sorted(by_id) == ["speaker-one/a1", "speaker-one/b2", "speaker-one/c10"]
    assert by_id["speaker-one/b2"].text == "다람쥐 헌 쳇바퀴에 타고파"  # normalised as AIHub transcripts are
    assert by_id["speaker-one/a1"].text == TEXTS["a1"]
    assert {clip.speaker for clip in result.clips} == {"speaker-one"}
    assert by_id["speaker-one/c10"].video == root / "clips" / "c10" and is_crop_folder(root / "clips" / "c10")
    assert (by_id["speaker-one/c10"].start, by_id["speaker-one/c10"].end) == (0.0, 10 / FPS)
    assert result.seconds() == pytest.approx(sum(FRAMES.values()) / FPS)


def test_speaker_and_fps_columns(corpus):
    root, _ = corpus
    write_labels(root, ["a1,학생 축구,30,kim", "b2,다람쥐,,", "c10,헌 쳇바퀴,12.5,lee"], header="clip,text,fps,speaker")
    clips = {clip.clip_id: clip for clip in scan(f"crops:{root}").clips}
    assert sorted(clips) == ["kim/a1", "lee/c10", "speaker-one/b2"]
    assert clips["kim/a1"].end == pytest.approx(6 / 30) and clips["speaker-one/b2"].end == pytest.approx(8 / FPS)
    assert crop_folder_fps(root / "clips" / "c10") == 12.5 and crop_folder_fps(root / "clips" / "b2") == FPS
    assert crop_folder_fps(root / "clips") == FPS  # not a clip folder of a corpus


def test_skip_reasons(corpus):
    root, _ = corpus
    write_clip(root / "clips" / "unlabelled", pattern(3))
    (root / "clips" / "empty").mkdir()
    write_clip(root / "clips" / "notext", pattern(3))
    write_clip(root / "clips" / "one", pattern(1))
    rows = [f"{name},{text}" for name, text in TEXTS.items()]
    rows += ["gone,학생 축구", "notext,", "a1,학생 다시", "empty,학생", "one,학생", "a1,학생 축구,extra"]
    write_labels(root, rows)
    result = scan(f"crops:{root}")
    assert sorted(c.clip_id for c in result.clips) == ["speaker-one/a1", "speaker-one/b2", "speaker-one/c10"]
    assert next(c for c in result.clips if c.clip_id.endswith("/a1")).text == TEXTS["a1"]  # the first row wins
    reasons = skip_reasons(result)
    assert reasons["gone"] == "labels.csv line 5 labels clip 'gone' but its folder does not exist"
    assert reasons["unlabelled"] == "no row of labels.csv labels this clip folder"
    assert reasons["labels.csv:6"] == "empty text for clip 'notext'"
    assert reasons["labels.csv:7"] == "clip 'a1' is labelled again (first at line 2); only that first row is used"
    assert reasons["empty"].startswith("no frames (.png, .jpg, .jpeg) in the clip folder")
    assert reasons["one"].startswith("1 frame (") and "at least 2" in reasons["one"]
    assert "more fields than the header's 2 columns" in reasons["labels.csv:10"]
    assert len(result.skipped) == 7 and not result.problem


@pytest.mark.parametrize(
    "setup, expected",
    [
        ("no labels", "labels.csv not found; a crops:DIR corpus is DIR/labels.csv"),
        ("no clips", "clips not found"),
        ("no text column", "labels.csv:1: the header must name the columns clip,text (optional: fps, speaker); got clip,words"),
        ("not utf-8", "labels.csv is not UTF-8 text"),
        ("header only", "labels.csv has no rows"),
        ("nothing usable", "none of the 1 rows of"),
    ],
)
def test_a_corpus_that_cannot_be_read_sets_the_problem(tmp_path, setup, expected, capsys):
    root = tmp_path / "corpus"
    root.mkdir()
    labels = root / "labels.csv"
    if setup != "no clips":
        write_clip(root / "clips" / "a", pattern(3))
    if setup == "no clips":
        write_labels(root, ["a,학생"])
    elif setup == "no text column":
        write_labels(root, ["a,학생"], header="clip,words")
    elif setup == "not utf-8":
        labels.write_bytes("clip,text\na,학생\n".encode("euc-kr"))
    elif setup == "header only":
        write_labels(root, [])
    elif setup == "nothing usable":
        write_labels(root, ["b,학생"])
    result = read_crop_corpus(root)
    assert expected in result.problem and not result.clips
    assert main(["data", "inspect", f"crops:{root}"]) == 2
    assert expected in capsys.readouterr().err


def test_read_crop_folder_gives_the_png_pixels_in_rgb_and_natural_order(tmp_path):
    rgb = pattern(12)
    folder = write_clip(tmp_path / "clip", rgb, name="mouth_{}.png")  # mouth_9.png, mouth_10.png, mouth_11.png
    result = read_crop_folder(folder, PreprocessConfig(), fps=30.0)
    np.testing.assert_array_equal(result.crops, rgb)
    assert result.crops.dtype == np.uint8 and result.crops.shape == (12, 50, 100, 3)
    assert result.landmarks.shape == (12, 68, 2) and np.isnan(result.landmarks).all() and result.boxes is None
    assert result.found.all() and result.searched.all() and result.found.dtype == bool
    np.testing.assert_array_equal(result.transforms, np.tile(np.eye(2, 3, dtype=np.float32), (12, 1, 1)))
    assert result.fps == 30.0 and np.allclose(result.timestamps, np.arange(12) / 30.0)
    assert set(result.timings) == VIDEO_TIMINGS
    assert read_crop_folder(folder).fps == FPS


def test_jpg_frames_and_a_time_range(tmp_path):
    rgb = pattern(10)
    folder = write_clip(tmp_path / "clip", rgb, name="frame_{:02d}.jpg")
    result = read_crop_folder(folder, start=0.08, end=0.2)  # frames at 0.08, 0.12, 0.16 s at 25 fps
    assert np.allclose(result.timestamps, [0.08, 0.12, 0.16])
    assert np.abs(result.crops.astype(int) - rgb[2:5]).mean() < 4  # JPEG is lossy
    with pytest.raises(ValueError, match=r"1 frames .* between 0.000 s and 0.040 s; a clip needs at least 2"):
        read_crop_folder(folder, end=0.04)  # only the frame at 0 s


def test_grey_config_makes_luma_as_the_video_path_does(tmp_path):
    rgb = pattern(4)
    folder = write_clip(tmp_path / "rgb", rgb)
    grey = PreprocessConfig(mouth=MouthConfig(grey=True))
    crops = read_crop_folder(folder, grey).crops
    assert crops.shape == (4, 50, 100, 1)
    np.testing.assert_array_equal(crops[..., 0], np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb]))
    grey_folder = tmp_path / "grey"
    grey_folder.mkdir()
    for t in range(3):
        cv2.imwrite(str(grey_folder / f"mouth_{t}.png"), crops[t, ..., 0])
    np.testing.assert_array_equal(read_crop_folder(grey_folder, grey).crops, crops[:3])
    with pytest.raises(ValueError, match=r"crops are grey \(1 channel\), the preprocessing config expects RGB"):
        read_crop_folder(grey_folder)


def test_geometry_errors_name_the_folder_and_both_sizes(tmp_path):
    big = write_clip(tmp_path / "big", pattern(3, height=60, width=120))
    message = (f"{big}: crops are 120x60 px, the preprocessing config expects 100x50 (MouthConfig.width x height); "
               "resize them, or set MouthConfig(width=120, height=60)")  # fmt: skip
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_crop_folder(big)
    small = PreprocessConfig(mouth=MouthConfig(width=120, height=60))
    assert read_crop_folder(big, small).crops.shape == (3, 60, 120, 3)

    mixed = write_clip(tmp_path / "mixed", pattern(3))
    cv2.imwrite(str(mixed / "mouth_002.png"), pattern(1, height=50, width=90)[0])
    with pytest.raises(ValueError, match="frame mouth_002.png is 90x50 px with 3 channels but mouth_000.png is 100x50 px"):
        read_crop_folder(mixed)

    alpha = tmp_path / "alpha"
    alpha.mkdir()
    for t in range(2):
        cv2.imwrite(str(alpha / f"mouth_{t}.png"), np.zeros((50, 100, 4), np.uint8))
    with pytest.raises(ValueError, match="frame mouth_0.png has 4 channels"):
        read_crop_folder(alpha)

    broken = write_clip(tmp_path / "broken", pattern(3))
    (broken / "mouth_001.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=f"{broken}: cannot read frame mouth_001.png"):
        read_crop_folder(broken)

    single = write_clip(tmp_path / "single", pattern(1))
    with pytest.raises(ValueError, match="1 frames .*; a clip needs at least 2"):
        read_crop_folder(single)


def test_run_batch_writes_the_pixels_and_load_examples_reads_them(corpus, tmp_path):
    root, pixels = corpus
    clips = expand_inputs([f"crops:{root}"])
    assert sorted(c.clip_id for c in clips) == ["speaker-one/a1", "speaker-one/b2", "speaker-one/c10"]
    cache, config = tmp_path / "cache", PreprocessConfig()
    entries, interrupted = run_batch(clips, cache, config, jobs=1, progress=False)
    assert not interrupted and [e["status"] for e in entries] == ["done"] * 3
    assert {e["frames"] for e in entries} == set(FRAMES.values()) and all(e["missing_frames"] == 0 for e in entries)
    for clip in clips:
        data = load_clip(output_path(cache, clip))
        np.testing.assert_array_equal(data["crops"], pixels[clip.video.name])  # exact, and RGB (pattern differs per channel)
        assert str(data["source"]) == str(clip.video) and float(data["fps"]) == FPS
        assert str(data["text"]) == clip.text and str(data["speaker"]) == "speaker-one"
        assert (float(data["start"]), float(data["end"])) == (0.0, FRAMES[clip.video.name] / FPS)
        assert is_done(output_path(cache, clip), config)
    again, _ = run_batch(clips, cache, config, jobs=1, progress=False)
    assert [e["status"] for e in again] == ["skipped"] * 3

    tokenizer = JamoTokenizer()
    paths = [output_path(cache, clip) for clip in clips]
    examples, rejected = load_examples(paths, tokenizer, in_memory=True, clip_ids=[c.clip_id for c in clips])
    assert not rejected and len(examples) == 3
    for example, clip in zip(examples, clips):
        assert example.ids == tuple(tokenizer.encode(clip.text)) and example.num_frames == FRAMES[clip.video.name]
        assert example.clip_id == clip.clip_id and example.crops.shape == (FRAMES[clip.video.name], 50, 100, 3)


def test_a_clip_of_the_wrong_size_fails_alone(corpus, tmp_path):
    root, _ = corpus
    write_clip(root / "clips" / "b2", pattern(8, height=60, width=120))
    entries, _ = run_batch(scan(f"crops:{root}").clips, tmp_path / "cache", PreprocessConfig(), progress=False)
    by_id = {e["clip_id"]: e for e in entries}
    assert by_id["speaker-one/b2"]["status"] == "failed"
    assert "ValueError" in by_id["speaker-one/b2"]["reason"] and "crops are 120x60 px" in by_id["speaker-one/b2"]["reason"]
    assert by_id["speaker-one/a1"]["status"] == by_id["speaker-one/c10"]["status"] == "done"


def test_corpus_examples_and_prepare_data(corpus, tmp_path):
    root, _ = corpus
    spec, tokenizer = f"crops:{root}", JamoTokenizer()
    examples, skipped = corpus_examples(spec, tokenizer, PreprocessConfig(), cache_dir=str(tmp_path / "cache"), jobs=1,
                                        progress=False)  # fmt: skip
    assert not skipped and sorted(e.clip_id for e in examples) == ["speaker-one/a1", "speaker-one/b2", "speaker-one/c10"]
    assert (tmp_path / "cache" / "speaker-one" / "a1.npz").is_file()
    data = prepare_data(DataConfig(spec=spec, cache_dir=str(tmp_path / "cache"), jobs=1), tokenizer, progress=False)
    assert sum(len(items) for items in data.splits.values()) == 3 and data.corpus == spec and not data.skipped


def test_data_inspect_counts_the_seconds(corpus, capsys):
    root, _ = corpus
    assert main(["data", "inspect", f"crops:{root}", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 3 and summary["speakers"] == 1 and summary["seconds"] == pytest.approx(24 / FPS)


@pytest.fixture(scope="module")
def korean_speaker() -> Path:
    """The 27 real mouth-crop clips (``../shared/data/korean-speaker``); skips the test when they are missing."""
    if not (KOREAN_SPEAKER / "labels.csv").is_file():
        pytest.skip(f"real korean-speaker crops not found at {KOREAN_SPEAKER} (../shared/data/korean-speaker next to the repo)")
    return KOREAN_SPEAKER


def test_real_korean_speaker_clips(korean_speaker):
    result = scan(f"crops:{korean_speaker}")
    assert len(result.clips) == 27 and not result.skipped and result.speakers == ["korean-speaker"]
    assert all(clip.text.startswith("학생 축구 ") for clip in result.clips)
    assert result.seconds() == pytest.approx(27 * 3.0)
    crops = read_crop_folder(result.clips[0].video, PreprocessConfig())
    assert crops.crops.shape == (75, 50, 100, 3) and crops.crops.dtype == np.uint8 and crops.fps == 25.0


def test_reframe_cuts_each_frame_to_the_box_and_keeps_the_labels(tmp_path, capsys):
    from lipnet_ko.data.crop_folders import reframe_box

    # A wide 200x100 crop of another pipeline; the project's crop is its centre 100x50: reframing must give exactly it
    rgb = pattern(5, height=100, width=200)
    root = tmp_path / "wide"
    write_clip(root / "clips" / "w1", rgb)
    write_clip(root / "clips" / "w2", rgb[:3])
    write_labels(root, ["w1,학생 축구", "w2,그러나 사"])
    with pytest.raises(ValueError, match="crops are 200x100 px"):
        read_crop_folder(root / "clips" / "w1")
    out = tmp_path / "framed"
    assert main(["data", "reframe", f"crops:{root}", "--box", "50", "25", "150", "75", "--out", str(out)]) == 0
    assert "2 clips -> crops:" in capsys.readouterr().out
    framed = read_crop_folder(out / "clips" / "w1")  # now the project's geometry: read without complaint
    assert np.array_equal(framed.crops, rgb[:, 25:75, 50:150])  # a 1:1 box is a plain cut
    assert [c.text for c in scan(f"crops:{out}").clips] == ["학생 축구", "그러나 사"]
    assert json.loads((out / "reframe.json").read_text(encoding="utf-8"))["box"] == [50.0, 25.0, 150.0, 75.0]
    # A box half the crop size is enlarged 2x: a pixel at source (x, y) lands at crop ((x - x0) * 2 + 0.5, ...)
    matrix = reframe_box((10, 5, 60, 30), 100, 50)
    assert matrix @ np.array([10 - 0.5 + 0.25, 5 - 0.5 + 0.25, 1.0]) == pytest.approx([0.0, 0.0], abs=1e-6)
    assert main(["data", "reframe", f"crops:{root}", "--box", "10", "5", "60", "30", "--out", str(tmp_path / "zoom")]) == 0
    zoomed = read_crop_folder(tmp_path / "zoom" / "clips" / "w1").crops
    expected = cv2.resize(np.ascontiguousarray(rgb[0, 5:30, 10:60]), (100, 50), interpolation=cv2.INTER_LINEAR)
    assert np.abs(zoomed[0].astype(int) - expected.astype(int)).max() <= 1  # bilinear, as cv2.resize at the same centres
    # bad requests: not a crops corpus, an empty box, writing over the source
    assert main(["data", "reframe", f"grid:{root}", "--box", "0", "0", "10", "10", "--out", str(tmp_path / "x")]) == 2
    assert main(["data", "reframe", f"crops:{root}", "--box", "10", "0", "10", "10", "--out", str(tmp_path / "x")]) == 2
    assert main(["data", "reframe", f"crops:{root}", "--box", "0", "0", "10", "10", "--out", str(root)]) == 2
    assert "is the corpus itself" in capsys.readouterr().err


def test_preprocess_of_one_spec_without_out_fills_the_cache_training_reads(corpus, capsys):
    from lipnet_ko.training.run_data import _cache_dir

    root, pixels = corpus
    spec = f"crops:{root}"
    assert main(["preprocess", spec, "--jobs", "1", "--no-progress"]) == 0
    cache = _cache_dir(DataConfig(spec=spec), root, spec)
    assert cache == root.with_name(root.name + "-crops") and f"crops -> {cache}" in capsys.readouterr().out
    assert np.array_equal(load_clip(cache / "speaker-one" / "a1.npz")["crops"], pixels["a1"])
    assert main(["preprocess", spec, str(root / "clips" / "a1"), "--jobs", "1", "--no-progress"]) == 2  # two inputs
    assert "--out DIR is needed" in capsys.readouterr().err
