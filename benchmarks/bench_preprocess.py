"""Benchmark for issue 3: mouth-region extraction, lipnet-ko's pipeline vs the naive LipNet baseline.

Measures, side by side in one run:

1. GRID clips (360x288, 25 fps), one process: the naive baseline (decode everything, full-resolution
   HOG detection upsampled once on every frame, the 68-point predictor, then the same crop) against
   ``extract_mouth_from_video`` with the default config and with ``landmark_every=2``. Real-time
   factor = compute seconds per second of video; stage shares; crop agreement with the baseline.
2. Throughput of ``lipnet-ko preprocess`` with ``--jobs 1`` and ``--jobs 2`` (whole command, both cores).
3. A 1920x1080 30 fps MPEG-4 video made by upscaling a GRID clip: decoding alone (the floor) against
   the pipeline with detection and with mouth boxes given (as from AIHub labels).

Pin to one core for per-core figures (the script itself does not pin), and keep other benchmarks off
the machine meanwhile:

    flock /tmp/lipnet-bench.lock taskset -c 0 python benchmarks/bench_preprocess.py --skip-jobs
    flock /tmp/lipnet-bench.lock python benchmarks/bench_preprocess.py --only-jobs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lipnet_ko.video.landmarks import DetectorConfig, LandmarkTracker, detect_landmarks_naive, load_models
from lipnet_ko.video.mouth import MOUTH, apply_transform, crop_mouth
from lipnet_ko.video.extract import PreprocessConfig, extract_mouth_from_video
from lipnet_ko.video.reader import read_frames

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GRID = REPO_ROOT.parent / "shared" / "data" / "grid"


def naive_pipeline(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Decode all, detect (upsample 1) + predict on every frame, crop: (crops, landmarks, transforms, timings)."""
    t0 = time.perf_counter()
    frames = read_frames(path).frames
    t1 = time.perf_counter()
    landmarks = detect_landmarks_naive(frames, upsample=1)
    t2 = time.perf_counter()
    crops = crop_mouth(frames, landmarks, PreprocessConfig().mouth)
    t3 = time.perf_counter()
    timings = {"decode": t1 - t0, "detect+landmarks": t2 - t1, "crop": t3 - t2, "total": t3 - t0}
    return crops.crops, landmarks, crops.transforms, timings


def median(values):
    return float(statistics.median(values))


def bench_grid(videos: list[Path], repeats: int) -> dict:
    variants = {
        "tracked, landmark_every=1": PreprocessConfig(detector=DetectorConfig(landmark_every=1)),
        "tracked, default (every=2)": PreprocessConfig(),
    }
    rows: dict[str, dict] = {}
    naive_runs = []
    for _ in range(repeats):
        naive_runs.append([naive_pipeline(path) for path in videos])
    frames_total = sum(len(run[0]) for run in naive_runs[0])
    fps = 25.0
    naive_total = median([sum(r[3]["total"] for r in run) for run in naive_runs])
    rows["naive (HOG up1 every frame)"] = {
        "ms_per_frame": 1000 * naive_total / frames_total,
        "rtf": naive_total / (frames_total / fps),
        "shares": {
            k: median([sum(r[3][k] for r in run) for run in naive_runs]) / naive_total
            for k in ("decode", "detect+landmarks", "crop")
        },
    }
    reference = naive_runs[0]
    for name, config in variants.items():
        tracker_local = LandmarkTracker(config.detector)
        runs = []
        for _ in range(repeats):
            runs.append([extract_mouth_from_video(path, config=config, tracker=tracker_local) for path in videos])
        total = median([sum(r.timings["total"] for r in run) for run in runs])
        stages = ("decode", "detect", "landmarks", "crop")
        shares = {k: median([sum(r.timings[k] for r in run) for run in runs]) / total for k in stages}
        shares["other"] = 1.0 - sum(shares.values())
        pixel_diff, centre_offset, landmark_error = [], [], []
        for result, (naive_crops, naive_landmarks, naive_transforms, _) in zip(runs[0], reference):
            pixel_diff.append(np.abs(result.crops.astype(np.int16) - naive_crops).mean())
            # Where the baseline's mouth centre lands in our crop vs in its own (crop px).
            centre = naive_landmarks[:, MOUTH].mean(axis=1, keepdims=True)
            ours = apply_transform(result.transforms, centre)[:, 0]
            theirs = apply_transform(naive_transforms, centre)[:, 0]
            centre_offset.append(np.linalg.norm(ours - theirs, axis=-1).mean())
            measured = result.found
            mouth_offsets = result.landmarks[measured, 48:68] - naive_landmarks[measured, 48:68]
            landmark_error.append(np.linalg.norm(mouth_offsets, axis=-1).mean())
        rows[name] = {
            "ms_per_frame": 1000 * total / frames_total,
            "rtf": total / (frames_total / fps),
            "shares": shares,
            "crop_mean_abs_diff_vs_naive": float(np.mean(pixel_diff)),
            "crop_centre_offset_vs_naive_px": float(np.mean(centre_offset)),
            "mouth_landmark_error_vs_naive_px": float(np.mean(landmark_error)),
        }
    baseline = rows["naive (HOG up1 every frame)"]["rtf"]
    for row in rows.values():
        row["speedup_vs_naive"] = baseline / row["rtf"]
    # Per-frame floor: the predictor alone (one call on one frame, repeated).
    detector, predictor = load_models()
    import dlib

    frame = read_frames(videos[0], end=0.1).frames[0]
    rect = detector(frame, 0)[0]
    times = []
    for _ in range(300):
        t = time.perf_counter()
        predictor(frame, rect)
        times.append(time.perf_counter() - t)
    predictor_ms = 1000 * median(times)
    del dlib
    return {"clips": len(videos), "frames": frames_total, "rows": rows,
            "predictor_alone_ms": predictor_ms, "predictor_alone_rtf": predictor_ms * fps / 1000}


def make_1080p(source: Path, target: Path, fps: float = 30.0) -> Path:
    """A GRID clip scaled to 1080 px high and padded to 1920x1080, written as MPEG-4 part 2 at 30 fps."""
    frames = read_frames(source).frames
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (1920, 1080))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v here")
    for frame in frames:
        big = cv2.resize(frame, (1350, 1080), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.copyMakeBorder(big, 0, 0, 285, 285, cv2.BORDER_REPLICATE)
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return target


def decode_floor(path: Path) -> tuple[float, int]:
    """Seconds to decode every frame with cv2.VideoCapture.read() (BGR, nothing else), and the frame count."""
    t = time.perf_counter()
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while True:
        ok, _ = capture.read()
        if not ok:
            break
        count += 1
    capture.release()
    return time.perf_counter() - t, count


def bench_1080p(source: Path, repeats: int, workdir: Path) -> dict:
    path = make_1080p(source, workdir / "grid_1080p30.mp4")
    config = PreprocessConfig()
    every_frame = PreprocessConfig(detector=DetectorConfig(landmark_every=1))
    tracker = LandmarkTracker(config.detector)
    tracker_every = LandmarkTracker(every_frame.detector)
    floors, detected, detected_every, boxed = [], [], [], []
    boxes = None
    for _ in range(repeats):
        seconds, count = decode_floor(path)
        floors.append(seconds)
        detected_every.append(extract_mouth_from_video(path, config=every_frame, tracker=tracker_every))
        result = extract_mouth_from_video(path, config=config, tracker=tracker)
        detected.append(result)
        mouth = result.landmarks[:, 48:68]
        boxes = np.concatenate([mouth.min(axis=1), mouth.max(axis=1)], axis=1)  # stands in for label boxes
        boxed.append(extract_mouth_from_video(path, config=config, boxes=boxes))
    floor = median(floors)
    fps = 30.0

    def row(results):
        total = median([r.timings["total"] for r in results])
        shares = {k: median([r.timings[k] for r in results]) / total for k in ("decode", "detect", "landmarks", "crop")}
        shares["other"] = 1.0 - sum(shares.values())
        return {"ms_per_frame": 1000 * total / count, "rtf": total / (count / fps), "x_floor": total / floor, "shares": shares}

    return {
        "frames": count,
        "floor": {"ms_per_frame": 1000 * floor / count, "rtf": floor / (count / fps), "x_floor": 1.0},
        "detection, landmark_every=1": row(detected_every),
        "detection, default (every=2)": row(detected),
        "boxes from labels": row(boxed),
        "found_all": bool(detected[0].found.all()),
    }


def bench_jobs(grid_dir: Path, copies: int, workdir: Path) -> dict:
    """Wall time of the whole command over ``copies`` x the GRID clips, --jobs 1 vs --jobs 2."""
    videos = sorted(grid_dir.glob("*.mpg"))
    manifest = workdir / "jobs.jsonl"
    with manifest.open("w") as handle:
        for copy in range(copies):
            for video in videos:
                handle.write(json.dumps({"video": str(video), "clip_id": f"c{copy}/{video.stem}"}) + "\n")
    clips = copies * len(videos)
    result = {"clips": clips, "video_seconds": clips * 3.0}
    for jobs in (1, 2):
        out = workdir / f"out_jobs{jobs}"
        command = [sys.executable, "-m", "lipnet_ko", "preprocess", str(manifest), "--out", str(out), "--jobs", str(jobs),
                   "--no-progress", "--overwrite"]
        t = time.perf_counter()
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - t
        result[f"jobs{jobs}"] = {"wall_s": wall, "clips_per_s": clips / wall, "video_s_per_s": clips * 3.0 / wall}
    result["speedup"] = result["jobs2"]["clips_per_s"] / result["jobs1"]["clips_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=Path, default=DEFAULT_GRID, help="folder of GRID .mpg clips")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=6, help="GRID clip copies for the --jobs throughput run")
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--only-jobs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    videos = sorted(args.grid.glob("*.mpg"))
    if not videos:
        sys.exit(f"no GRID clips in {args.grid}")
    cv2.setNumThreads(1)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, affinity {affinity}",
               "python": platform.python_version(), "opencv": cv2.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.only_jobs:
            results["grid"] = bench_grid(videos, args.repeats)
            results["1080p"] = bench_1080p(videos[0], args.repeats, Path(tmp))
        if not args.skip_jobs:
            results["jobs"] = bench_jobs(args.grid, args.copies, Path(tmp))
    print(json.dumps(results, indent=1))
    if "grid" in results:
        print("\nGRID, per frame (one process):")
        for name, row in results["grid"]["rows"].items():
            shares = ", ".join(f"{k} {v:.0%}" for k, v in row["shares"].items())
            quality = (f"; crop centre vs naive {row['crop_centre_offset_vs_naive_px']:.2f} px,"
                       f" mean |crop diff| {row['crop_mean_abs_diff_vs_naive']:.1f}"
                       if "crop_centre_offset_vs_naive_px" in row else "")
            print(f"  {name:28s} {row['ms_per_frame']:6.2f} ms  RTF {row['rtf']:.4f}  x{row['speedup_vs_naive']:.1f}"
                  f"  ({shares}){quality}")
        grid = results["grid"]
        print(f"  predictor alone: {grid['predictor_alone_ms']:.2f} ms, RTF {grid['predictor_alone_rtf']:.4f}")
    if "1080p" in results:
        print("\n1920x1080 30 fps:")
        for name in ("floor", "detection, landmark_every=1", "detection, default (every=2)", "boxes from labels"):
            row = results["1080p"][name]
            shares = ", ".join(f"{k} {v:.0%}" for k, v in row.get("shares", {}).items())
            print(f"  {name:30s} {row['ms_per_frame']:6.2f} ms/frame  RTF {row['rtf']:.3f}  {row['x_floor']:.2f}x floor"
                  f"  {shares}")
    if "jobs" in results:
        jobs = results["jobs"]
        print(f"\n--jobs: {jobs['clips']} clips; 1 job {jobs['jobs1']['wall_s']:.1f} s,"
              f" 2 jobs {jobs['jobs2']['wall_s']:.1f} s, x{jobs['speedup']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
