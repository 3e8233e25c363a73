"""Benchmark for issue 5: the synthetic corpus generator (``lipnet-ko synth``).

Measures:

1. Per-frame cost in one process: rendering (warp + mouth painting), the camera stage, and the whole
   ``write_session`` (mp4 encoding included), in frames per second.
2. The default corpus (``SynthConfig()`` with ``--jobs`` workers): wall seconds, frames, frames/s.
3. A second run over the finished corpus (the cache): seconds.
4. dlib on the default corpus: the share of a frame sample in which the HOG detector (no upsampling)
   finds the face, and the share of predicted mouth points inside the label's lip box.

Run alone, serialised with the other benchmarks:

    flock /tmp/lipnet-bench.lock .venv/bin/python benchmarks/bench_synth.py --jobs 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lipnet_ko.synth.face import FaceRenderer, apply_camera, pose_matrix
from lipnet_ko.synth.corpus import SynthConfig, generate_corpus, load_faces, plan_corpus, write_session
from lipnet_ko.text.visemes import MOUTH_SHAPES


def per_frame(config: SynthConfig) -> dict:
    cv2.setNumThreads(1)
    faces, _ = load_faces(config)
    plans = plan_corpus(config, len(faces))[:4]
    renderer = FaceRenderer(faces[0], plans[0].speaker.style)
    shapes = [np.array(s.astuple()) for s in MOUTH_SHAPES.values()]
    t0 = time.perf_counter()
    n = 0
    for _ in range(20):
        for params in shapes:
            renderer.render(params)
            n += 1
    render_ms = (time.perf_counter() - t0) / n * 1e3
    image = renderer.render(shapes[0])[0]
    noise = np.random.default_rng(0).standard_normal(image.shape, dtype=np.float32)
    matrix = pose_matrix(2.0, 1.02, (1.0, -2.0), image.shape[1::-1])
    t0 = time.perf_counter()
    for _ in range(300):
        apply_camera(image, matrix, plans[0].speaker.camera, noise)
    camera_ms = (time.perf_counter() - t0) / 300 * 1e3
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frames = sum(write_session(p, faces[p.speaker.face], config, Path(tmp))["frames"] for p in plans)
        seconds = time.perf_counter() - t0
    return {"render_ms": round(render_ms, 3), "camera_ms": round(camera_ms, 3),
            "session_frames": frames, "session_frames_per_second": round(frames / seconds, 1)}  # fmt: skip


def dlib_check(out: Path, every: int) -> dict:
    from lipnet_ko.video.landmarks import detect_landmarks_naive
    from lipnet_ko.video.reader import read_frames

    found = inside = points = total = 0
    for video in sorted(out.rglob("*.mp4"))[::every]:
        frames = read_frames(video).frames[::5]
        label = json.loads(video.with_suffix(".json").read_text())[0]
        boxes = np.array(label["Bounding_box_info"]["Lip_bounding_box"]["xtl_ytl_xbr_ybr"])[::5]
        landmarks = detect_landmarks_naive(frames, upsample=0)
        ok = ~np.isnan(landmarks).any(axis=(1, 2))
        total += len(frames)
        found += int(ok.sum())
        mouth, b = landmarks[ok, 48:68], boxes[ok]
        inside += int(((mouth[..., 0] >= b[:, None, 1] - 2) & (mouth[..., 0] <= b[:, None, 3] + 2)
                       & (mouth[..., 1] >= b[:, None, 0] - 2) & (mouth[..., 1] <= b[:, None, 2] + 2)).sum())  # fmt: skip
        points += mouth.shape[0] * mouth.shape[1]
    return {"frames_checked": total, "face_found_share": round(found / total, 4),
            "mouth_in_box_share": round(inside / max(points, 1), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=None, help="where to write the default corpus (default: a temporary folder, removed)")
    parser.add_argument("--check-every", type=int, default=8, help="dlib check on every n-th video")
    args = parser.parse_args()
    config = SynthConfig(jobs=args.jobs)
    report = {"config": config.cache_key(), "per_frame": per_frame(config)}
    print(json.dumps(report["per_frame"]), flush=True)
    tmp = None if args.out else tempfile.mkdtemp(prefix="bench_synth_")
    out = Path(args.out or tmp) / "corpus"
    try:
        report["default_corpus"] = generate_corpus(out, config)
        print(json.dumps(report["default_corpus"]), flush=True)
        t0 = time.perf_counter()
        generate_corpus(out, config)
        report["cached_rerun_seconds"] = round(time.perf_counter() - t0, 2)
        report["dlib"] = dlib_check(out, args.check_every)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
