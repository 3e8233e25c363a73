"""lipnet_ko.data.crops: the one frames -> crops path on real GRID clips, and the batch command's
outcomes for bad inputs, resume, interruption, reports and previews."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipnet_ko.data import crops as preprocess
from lipnet_ko.video import extract
from lipnet_ko.app.cli import main
from lipnet_ko.data.clips import Clip
from lipnet_ko.video.mouth import MouthConfig, apply_transform
from lipnet_ko.data.crops import FORMAT_VERSION, expand_inputs, is_done, load_clip, save_clip
from lipnet_ko.video.extract import PreprocessConfig, extract_mouth, extract_mouth_from_video
from lipnet_ko.video.reader import read_frames
from videos import write_video

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_avi(path: Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    """RGB frames [T, H, W, 3] -> an MJPG AVI."""
    return write_video(path, frames, fps)


def gradient_video(path: Path, count: int = 20) -> Path:
    ramp = np.linspace(0, 255, 360, dtype=np.float32)
    frames = np.stack([np.stack([np.tile(ramp + t, (288, 1)) % 256] * 3, -1) for t in range(count)]).astype(np.uint8)
    return write_avi(path, frames)


def face_leaving_video(path: Path, source: Path) -> Path:
    """A GRID clip whose picture slides off to the right from the middle on (frame 37), 40 px a frame."""
    frames = read_frames(source).frames.copy()
    for t in range(37, len(frames)):
        shift = min((t - 36) * 40, frames.shape[2])
        frames[t, :, shift:] = frames[t, :, : frames.shape[2] - shift].copy()
        frames[t, :, :shift] = frames[t, :, :1]
    return write_avi(path, frames)


def mouth_in_crop(landmarks: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """The mouth landmarks (48-67) in crop px, [T, 20, 2]."""
    return apply_transform(transforms, landmarks[:, 48:68])


def run_cli(*args: str) -> int:
    return main(["preprocess", *map(str, args), "--no-progress"])


def read_report(out: Path) -> dict:
    return json.loads((out / preprocess.REPORT_NAME).read_text())


@pytest.mark.dlib
def test_grid_clip_crops_are_centred_on_the_mouth(grid_videos):
    config = PreprocessConfig()
    result = extract_mouth_from_video(grid_videos[0], config=config)
    assert result.crops.shape == (75, 50, 100, 3) and result.crops.dtype == np.uint8
    assert result.found[::2].all() and not result.found[1::2].any()  # landmark_every=2: odd frames interpolated
    assert np.array_equal(result.searched, result.found) and np.isfinite(result.landmarks).all()
    assert result.fps == pytest.approx(25.0) and len(result.timestamps) == 75
    mouth = mouth_in_crop(result.landmarks, result.transforms)
    assert mouth[..., 0].min() >= 10 and mouth[..., 0].max() <= 89  # corners sit about 19 px in from each side
    assert mouth[..., 1].min() >= 0 and mouth[..., 1].max() <= 49  # lips never cut off at the top or bottom
    np.testing.assert_allclose(mouth.mean(axis=1), [[49.5, 24.5]] * 75, atol=2.0)  # centred (smoothing moves it a little)
    assert set(result.timings) >= {"decode", "detect", "landmarks", "crop", "total"}


@pytest.mark.dlib
def test_frames_in_memory_and_streamed_file_give_the_same_crops(grid_videos):
    streamed = extract_mouth_from_video(grid_videos[1])
    in_memory = extract_mouth(read_frames(grid_videos[1]).frames)
    np.testing.assert_array_equal(streamed.crops, in_memory.crops)
    np.testing.assert_array_equal(streamed.landmarks, in_memory.landmarks)


@pytest.mark.dlib
def test_batch_over_all_grid_clips_in_parallel(grid_dir, grid_videos, tmp_path):
    out = tmp_path / "out"
    assert run_cli(grid_dir, "--out", out, "--jobs", "2", "--preview") == 0
    report = read_report(out)
    assert report["counts"] == {"done": 8, "skipped": 0, "failed": 0, "not_started": 0}
    for path in grid_videos:
        data = load_clip(out / f"{path.stem}.npz")
        assert data["crops"].shape == (75, 50, 100, 3) and data["crops"].dtype == np.uint8
        assert data["found"][data["searched"]].all() and data["landmarks"].shape == (75, 68, 2)
        assert int(data["format_version"]) == FORMAT_VERSION and float(data["fps"]) == 25.0
        assert str(data["source"]) == str(path) and np.isnan(data["start"]) and np.isnan(data["end"])
        mouth = apply_transform(data["transforms"], data["landmarks"][:, 48:68])
        assert mouth[..., 0].min() >= 8 and mouth[..., 0].max() <= 91
        assert mouth[..., 1].min() >= -1 and mouth[..., 1].max() <= 50
        assert PreprocessConfig.from_json(str(data["config"])) == PreprocessConfig()
    sheet = cv2.imread(str(out / preprocess.PREVIEW_NAME))
    assert sheet is not None and sheet.shape[0] >= 8 * 100 and sheet.shape[1] >= 8 * 200
    assert not list(out.rglob("*.tmp"))


@pytest.mark.dlib
def test_bad_inputs_fail_with_reasons_and_the_batch_carries_on(grid_videos, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "zero.mp4").write_bytes(b"")
    (inputs / "garbage.mp4").write_bytes(b"\x00\x01 definitely not a video " * 400)
    gradient_video(inputs / "gradient.avi")
    face_leaving_video(inputs / "leaves.avi", grid_videos[1])
    good = inputs / "good.mpg"
    good.symlink_to(grid_videos[0])
    out = tmp_path / "out"
    assert run_cli(inputs, "--out", out, "--jobs", "1") == 1  # some clips failed (one succeeded)
    report = read_report(out)
    status = {entry["clip_id"]: entry for entry in report["clips"]}
    assert status["good"]["status"] == "done" and status["good"]["frames"] == 75
    reasons = {name: status[name].get("reason", "") for name in ("zero", "garbage", "gradient", "leaves")}
    assert all(status[name]["status"] == "failed" for name in reasons)
    assert reasons["zero"].startswith("VideoError") and "empty" in reasons["zero"]
    assert reasons["garbage"].startswith("VideoError") and "cannot open" in reasons["garbage"]
    assert reasons["gradient"].startswith("NoFaceError") and "no face found in any" in reasons["gradient"]
    assert reasons["leaves"].startswith("NoFaceError") and "max_missing_share" in reasons["leaves"]
    assert sorted(p.name for p in out.glob("*.npz")) == ["good.npz"]  # never a file of uncropped frames
    assert report["counts"] == {"done": 1, "skipped": 0, "failed": 4, "not_started": 0}


def test_one_failed_clip_exits_1_after_the_others_are_done(tmp_path, monkeypatch, capsys):
    """Exit status 1 as soon as any clip fails, not only when all do: the good clip is still cropped and the
    summary and report name the failure. Mouth boxes come with the clips, so no face detector is needed."""
    frames = np.broadcast_to((np.arange(10, dtype=np.uint8) * 20)[:, None, None, None], (10, 90, 160, 3))
    good = write_avi(tmp_path / "good.avi", np.ascontiguousarray(frames))
    (tmp_path / "broken.avi").write_bytes(b"")
    boxes = np.tile(np.array([[40, 40, 120, 80]], np.float32), (10, 1))
    clips = [Clip(video=good, clip_id="good", mouth_boxes=boxes), Clip(video=tmp_path / "broken.avi", clip_id="broken")]
    monkeypatch.setitem(preprocess.INPUT_KINDS, "toy", lambda path: clips)
    out = tmp_path / "out"
    assert run_cli("toy:corpus", "--out", out, "--jobs", "1") == 1
    printed = capsys.readouterr().out
    report = read_report(out)
    assert report["counts"] == {"done": 1, "skipped": 0, "failed": 1, "not_started": 0}
    status = {entry["clip_id"]: entry for entry in report["clips"]}
    assert status["good"]["status"] == "done" and load_clip(out / "good.npz")["crops"].shape[0] == 10
    assert status["broken"]["status"] == "failed" and status["broken"]["reason"].startswith("VideoError")
    assert "1 done, 0 skipped (already done), 1 failed" in printed and "  failed broken: VideoError" in printed
    assert run_cli("toy:corpus", "--out", out, "--jobs", "1") == 1  # resumed: the good clip is skipped, still a failure
    assert read_report(out)["counts"] == {"done": 0, "skipped": 1, "failed": 1, "not_started": 0}


def test_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["preprocess", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 when every clip was cropped (or already done); 1 when any clip failed" in text
    assert "2 when nothing was done" in text and "130 when interrupted" in text


def test_everything_failing_exits_1(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b.avi").write_bytes(b"junk" * 100)
    out = tmp_path / "out"
    assert run_cli(tmp_path / "a.mp4", tmp_path / "b.avi", "--out", out, "--jobs", "1") == 1
    assert read_report(out)["counts"]["failed"] == 2


@pytest.mark.parametrize(
    "args",
    [
        ["does-not-exist.mp4", "--out", "{out}"],
        ["{empty_dir}", "--out", "{out}"],
        ["{notes}", "--out", "{out}"],
        ["{bad_manifest}", "--out", "{out}"],
        ["{clash_a}", "{clash_b}", "--out", "{out}"],
        ["nokind:whatever", "--out", "{out}"],
        ["{clash_a}", "--out", "{out}", "--jobs", "0"],
        ["{clash_a}", "--out", "{out}", "--margin", "0.7"],
    ],
    ids=["missing", "no-videos", "not-a-video", "bad-manifest", "same-output", "unknown-kind", "jobs-0", "bad-margin"],
)
def test_misuse_exits_2(tmp_path, args, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "bad.csv").write_text("video,start\nx.mp4,soon\n")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "clip.mp4").write_bytes(b"")
    names = {
        "out": tmp_path / "out", "empty_dir": tmp_path / "empty", "notes": tmp_path / "notes.txt",
        "bad_manifest": tmp_path / "bad.csv", "clash_a": tmp_path / "a" / "clip.mp4", "clash_b": tmp_path / "b" / "clip.mp4",
    }
    assert run_cli(*[a.format(**names) for a in args]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.dlib
def test_manifest_time_range_and_text(grid_videos, tmp_path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f"video,start,end,text,speaker\n{grid_videos[0]},1.0,2.0,bin blue,s1\n")
    out = tmp_path / "out"
    assert run_cli(manifest, "--out", out, "--grey", "--width", "64", "--height", "32") == 0
    (path,) = out.rglob("*.npz")
    data = load_clip(path)
    assert data["crops"].shape == (25, 32, 64, 1)
    assert float(data["start"]) == 1.0 and float(data["end"]) == 2.0
    assert data["timestamps"][0] == pytest.approx(1.0) and data["timestamps"][-1] < 2.0
    assert str(data["text"]) == "bin blue" and str(data["speaker"]) == "s1"


@pytest.mark.dlib
def test_given_mouth_boxes_skip_the_detector(grid_videos, monkeypatch):
    detected = extract_mouth_from_video(grid_videos[2])
    mouth = detected.landmarks[:, 48:68]
    boxes = np.concatenate([mouth.min(axis=1), mouth.max(axis=1)], axis=1)  # like a dataset's lip box
    monkeypatch.setattr(extract, "process_tracker", lambda config: pytest.fail("the detector ran"))
    result = extract_mouth_from_video(grid_videos[2], boxes=boxes)
    assert result.crops.shape == (75, 50, 100, 3) and np.isnan(result.landmarks).all()
    inside = apply_transform(result.transforms, mouth)
    assert inside[..., 0].min() >= 10 and inside[..., 0].max() <= 89
    np.testing.assert_allclose(inside.mean(axis=1), [[49.5, 24.5]] * 75, atol=4.0)


@pytest.mark.dlib
def test_resume_skips_done_clips_and_redoes_broken_ones(grid_videos, tmp_path):
    out = tmp_path / "out"
    clips = [str(p) for p in grid_videos[:3]]
    assert run_cli(*clips, "--out", out, "--jobs", "1") == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz")}
    assert len(first) == 3
    broken = out / f"{grid_videos[1].stem}.npz"
    broken.write_bytes(broken.read_bytes()[:5000])  # a truncated file must not pass for a finished one
    assert run_cli(*clips, "--out", out, "--jobs", "1") == 0
    report = read_report(out)
    assert report["counts"] == {"done": 1, "skipped": 2, "failed": 0, "not_started": 0}
    assert [e["clip_id"] for e in report["clips"] if e["status"] == "done"] == [grid_videos[1].stem]
    assert load_clip(broken)["crops"].shape[0] == 75
    assert run_cli(*clips, "--out", out, "--width", "64") == 0  # another crop config: redo everything
    assert read_report(out)["counts"]["done"] == 3


@pytest.mark.dlib
@pytest.mark.parametrize("jobs, signum", [(1, signal.SIGINT), (2, signal.SIGTERM)], ids=["ctrl-c", "sigterm-2-jobs"])
def test_interrupted_batch_leaves_no_partial_file_and_resumes(grid_dir, grid_videos, tmp_path, jobs, signum):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "lipnet_ko", "preprocess", str(grid_dir), "--out", str(out), "--jobs", str(jobs),
               "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(out.glob("*.npz")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()[-2000:]
    done = sorted(out.glob("*.npz"))
    assert 1 <= len(done) < 8
    assert not list(out.glob(".*.tmp"))  # no partial file left behind
    for path in done:
        assert load_clip(path)["crops"].shape == (75, 50, 100, 3)
    assert read_report(out)["interrupted"] is True
    assert run_cli(grid_dir, "--out", out, "--jobs", "1") == 0
    counts = read_report(out)["counts"]
    assert counts == {"done": 8 - len(done), "skipped": len(done), "failed": 0, "not_started": 0}


def test_save_is_atomic_and_is_done_checks_content(tmp_path):
    config = PreprocessConfig()
    result = preprocess.MouthResult(
        crops=np.zeros((3, 50, 100, 3), np.uint8),
        landmarks=np.zeros((3, 68, 2), np.float32),
        boxes=None,
        found=np.ones(3, bool),
        searched=np.ones(3, bool),
        transforms=np.zeros((3, 2, 3), np.float32),
        fps=25.0,
        timestamps=np.arange(3) / 25,
        timings={},
    )
    clip = Clip(video=Path("v.mp4"), clip_id="speaker/clip")
    path = preprocess.output_path(tmp_path, clip)
    assert path == tmp_path / "speaker" / "clip.npz"
    assert not is_done(path, config)
    save_clip(path, result, clip, config)
    assert is_done(path, config) and not is_done(path, PreprocessConfig(mouth=MouthConfig(grey=True)))
    assert list(path.parent.iterdir()) == [path]  # the temporary file was renamed, not left
    path.write_bytes(b"PK\x03\x04 half a zip")
    assert not is_done(path, config)
    with pytest.raises(ValueError, match="cannot read"):
        load_clip(path)

    class Boom(Exception):
        pass

    def failing_savez(handle, **arrays):
        handle.write(b"partial")
        raise Boom()

    original = np.savez_compressed
    np.savez_compressed = failing_savez
    try:
        with pytest.raises(Boom):
            save_clip(path, result, clip, config)
    finally:
        np.savez_compressed = original
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.npz"]  # temp removed, old file untouched


def test_expand_inputs_kinds(tmp_path, monkeypatch):
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "a.MP4").write_bytes(b"")
    (tmp_path / "s1" / "notes.txt").write_text("")
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "a.avi").write_bytes(b"")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"video": "s1/a.MP4", "start": 0.5, "end": 1.5}) + "\n")
    with pytest.raises(ValueError, match="both write a.npz"):
        expand_inputs([str(tmp_path / "s1"), str(tmp_path / "s2" / "a.avi")])
    folder = expand_inputs([str(tmp_path)])
    assert sorted(c.clip_id for c in folder) == ["s1/a", "s2/a"]
    (clip,) = expand_inputs([str(manifest)])
    assert clip.video == tmp_path / "s1" / "a.MP4" and (clip.start, clip.end) == (0.5, 1.5)
    monkeypatch.setitem(preprocess.INPUT_KINDS, "toy", lambda path: [Clip(video=Path(path) / "x.mp4", clip_id="toy/x")])
    (toy,) = expand_inputs(["toy:/data/corpus"])
    assert toy.video == Path("/data/corpus/x.mp4") and toy.clip_id == "toy/x"


def test_config_json_round_trip():
    config = PreprocessConfig(mouth=MouthConfig(grey=True, width=64))
    assert PreprocessConfig.from_json(config.to_json()) == config
