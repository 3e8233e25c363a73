"""Benchmark for issues 5 and 18: the synthetic corpus generator (``lipnet-ko synth``).

Measures:

1. Old path vs direct path on the same sessions, one process: render + mp4 encode (``write_session``)
   then decode + crop + save (``extract_mouth_from_video`` with the label's boxes and ``save_clip``, as
   ``lipnet-ko preprocess`` does), against rendering straight to crops (``crop_session``, ``output="crops"``).
   Frames/s of clip frames (the frames that end up in crops), and the ratio.
2. The default corpus (``SynthConfig()``; ``--fraction`` keeps that share of its speakers, same
   sentences per speaker) with ``--jobs`` workers: wall seconds, frames, clips per split.
3. A second run over the finished corpus (the cache): seconds.

Run alone, serialised with the other benchmarks:

    flock /tmp/lipnet-bench.lock .venv/bin/python benchmarks/bench_synth.py --jobs 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2

from lipnet_ko.synth.corpus import (
    SynthConfig,
    crop_session,
    generate_corpus,
    load_faces,
    plan_corpus,
    session_clips,
    speaker_face,
    write_session,
)


def side_by_side(config: SynthConfig, sessions: int) -> dict:
    from lipnet_ko.data.crops import output_path, save_clip
    from lipnet_ko.video.extract import PreprocessConfig, extract_mouth_from_video

    cv2.setNumThreads(1)
    faces, _, num_train = load_faces(config)
    plans = plan_corpus(config, (num_train, len(faces) - num_train))[:sessions]
    preprocess = PreprocessConfig()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "video"
        clip_frames = 0
        t0 = time.perf_counter()
        for plan in plans:
            face = speaker_face(plan.speaker, faces, config.seed)
            write_session(plan, face, config, out)
            label_path = out / plan.speaker.speaker_id / f"{plan.stem}.json"
            label = json.loads(label_path.read_text(encoding="utf-8"))[0]
            for clip in session_clips(label, label_path.with_suffix(".mp4")):  # what lipnet-ko preprocess does per clip
                result = extract_mouth_from_video(clip.video, clip.start, clip.end, preprocess, boxes=clip.mouth_boxes)
                save_clip(output_path(Path(tmp) / "video-crops", clip), result, clip, preprocess)
                clip_frames += len(result.crops)
        old = time.perf_counter() - t0
        out = Path(tmp) / "direct"
        t0 = time.perf_counter()
        for plan in plans:
            crop_session(plan, speaker_face(plan.speaker, faces, config.seed), config, out, preprocess)
        direct = time.perf_counter() - t0
    return {"sessions": len(plans), "clip_frames": clip_frames,
            "old_video_then_preprocess_frames_per_second": round(clip_frames / old, 1),
            "direct_crops_frames_per_second": round(clip_frames / direct, 1), "speedup": round(old / direct, 2)}  # fmt: skip


def crop_storage(config: SynthConfig, repeats: int = 5) -> dict:
    """``save_clip`` with and without deflate on the crops of one rendered session: bytes, write and read ms per clip.

    The direct path stores synthetic crops uncompressed (``compress=False``): their sensor noise leaves deflate
    little to remove, and writing and reading compressed files cost most of the generator's and the training
    stream's time. Medians of ``repeats``.
    """
    import statistics

    from lipnet_ko.data.crops import load_clip, output_path, save_clip
    from lipnet_ko.video.extract import MouthResult, PreprocessConfig

    cv2.setNumThreads(1)
    faces, _, num_train = load_faces(config)
    plan = plan_corpus(config, (num_train, len(faces) - num_train))[0]
    preprocess = PreprocessConfig()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        crop_session(plan, speaker_face(plan.speaker, faces, config.seed), config, Path(tmp) / "s", preprocess)
        label_path = next((Path(tmp) / "s").rglob("lip_*.json"))
        clips = session_clips(json.loads(label_path.read_text(encoding="utf-8"))[0], label_path.with_suffix(".mp4"))
        cache = Path(tmp) / "s-crops"
        arrays = [load_clip(output_path(cache, clip)) for clip in clips]
        results = [MouthResult(a["crops"], a["landmarks"], a["boxes"], a["found"], a["searched"], a["transforms"],
                               float(a["fps"]), a["timestamps"], {}) for a in arrays]  # fmt: skip
        for compress in (True, False):
            writes, reads, size = [], [], 0
            for _ in range(repeats):
                t0 = time.perf_counter()
                paths = []
                for clip, result in zip(clips, results):
                    path = Path(tmp) / f"c{int(compress)}" / f"{clip.clip_id}.npz"
                    save_clip(path, result, clip, preprocess, compress=compress)
                    paths.append(path)
                writes.append((time.perf_counter() - t0) / len(clips))
                t0 = time.perf_counter()
                for path in paths:
                    load_clip(path)["crops"]
                reads.append((time.perf_counter() - t0) / len(clips))
                size = sum(p.stat().st_size for p in paths) / len(paths)
            out["deflate" if compress else "stored"] = {"kb_per_clip": round(size / 1e3, 1),
                                                        "write_ms": round(1e3 * statistics.median(writes), 2),
                                                        "read_ms": round(1e3 * statistics.median(reads), 2)}  # fmt: skip
    out["write_ratio"] = round(out["deflate"]["write_ms"] / out["stored"]["write_ms"], 1)
    out["read_ratio"] = round(out["deflate"]["read_ms"] / out["stored"]["read_ms"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=6, help="sessions in the side-by-side comparison")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the default corpus's speakers to generate")
    parser.add_argument("--compare-only", action="store_true", help="only the side-by-side comparison")
    parser.add_argument("--out", default=None, help="where to write the corpus (default: a temporary folder, removed)")
    args = parser.parse_args()
    defaults = SynthConfig()
    config = dataclasses.replace(defaults, jobs=args.jobs, speakers=max(1, round(defaults.speakers * args.fraction)),
                                 held_out_speakers=max(1, round(defaults.held_out_speakers * args.fraction)))  # fmt: skip
    report = {"config": config.cache_key(), "fraction": args.fraction, "crop_storage": crop_storage(config)}
    print(json.dumps(report["crop_storage"]), flush=True)
    report["side_by_side"] = side_by_side(config, args.sessions)
    print(json.dumps(report["side_by_side"]), flush=True)
    if args.compare_only:
        return
    tmp = None if args.out else tempfile.mkdtemp(prefix="bench_synth_")
    out = Path(args.out or tmp) / "corpus"
    try:
        report["corpus"] = generate_corpus(out, config)
        print(json.dumps(report["corpus"]), flush=True)
        t0 = time.perf_counter()
        generate_corpus(out, config)
        report["cached_rerun_seconds"] = round(time.perf_counter() - t0, 2)
        report["crops_bytes"] = sum(p.stat().st_size for p in (out.parent / "corpus-crops").glob("*.npz"))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
