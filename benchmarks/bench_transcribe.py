"""End-to-end transcription speed: ``lipnet_ko.app.transcribe.transcribe`` against its targets, stage by stage.

The figure is the real-time factor, RTF = compute seconds per second of video, with the model (and
the LM) loaded once and the whole machine's cores free to use (2 on the development machine). Each
``transcribe`` call fills ``timings`` with seconds per stage: video decoding, face/mouth finding
(detection, landmarks, cropping), segmentation, the model and the beam search. "other" is the rest
of ``total`` (tiny: batching, subtitle segments). Measured in one run:

1. GRID clips (360x288, 25 fps, 3 s; ``../shared/data/grid/*.mpg`` from the repository root, skipped
   with a message when absent): RTF of all clips together; target <= 0.1. Shown beside the old
   student demo's RTF of 15 for context (not re-measured here).
2. A 1920x1080, 30 fps, MPEG-4 part 2 video made in a temporary folder from a synthetic speaking face:
   a tiny corpus from ``lipnet_ko.synth.corpus.generate_corpus`` (one speaker, rendered at 30 fps), each
   160x160 frame scaled to 1080x1080 and edge-padded to 1920x1080, frames looped to ``--hd-seconds``
   (default 10). Baseline, the floor: reading every frame of that file with ``lipnet_ko.video.reader.VideoReader``
   (BGR, as ``transcribe`` reads it) and nothing else, timed in the same run; target <= 2.5x the floor.

Timed calls come after one untimed warm-up call (tracing the model, loading the landmark predictor).
With no trained model (``runs/latest`` missing and no ``--model``), an untrained ``small`` preset model
with the jamo vocabulary is built and saved to a temporary run folder: the weights do not change the
cost of inference, only the text it prints.

Keep other benchmarks off the machine meanwhile:

    flock /tmp/lipnet-bench.lock python benchmarks/bench_transcribe.py
    flock /tmp/lipnet-bench.lock python benchmarks/bench_transcribe.py --repeats 1 --grid-clips 1 --hd-seconds 2   # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lipnet_ko  # noqa: F401  (first: sets TensorFlow's environment before TensorFlow is imported)

import cv2

from lipnet_ko.app.transcribe import TranscribeOptions, transcribe
from lipnet_ko.video.reader import VideoReader, read_frames

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GRID = REPO_ROOT.parent / "shared" / "data" / "grid"
STAGES = ("decode", "face", "segment", "model", "search")
STAGE_NAMES = {
    "decode": "video decoding",
    "face": "face/mouth",
    "segment": "segmentation",
    "model": "model",
    "search": "beam search",
}
STUDENT_DEMO_RTF = 15.0  # the old student demo (per the issue), for context only
GRID_TARGET_RTF = 0.1
HD_TARGET_X_FLOOR = 2.5
HD_SIZE = (1920, 1080)  # px, width x height
HD_FPS = 30.0


def median(values) -> float:
    return float(statistics.median(values))


def untrained_run(folder: Path) -> Path:
    """A run folder holding an untrained ``small`` model with the jamo vocabulary and default crops."""
    from lipnet_ko.model.inference import write_side_files
    from lipnet_ko.model.network import build_model
    from lipnet_ko.model.config import model_config
    from lipnet_ko.video.extract import PreprocessConfig
    from lipnet_ko.text.tokenizer import get_tokenizer

    tokenizer = get_tokenizer("jamo")
    config = model_config("small", vocabulary_size=tokenizer.vocab_size)
    folder.mkdir(parents=True, exist_ok=True)
    build_model(config).save(folder / "model.keras")
    write_side_files(folder, config, tokenizer, PreprocessConfig())
    return folder


def load_model(path: str | None, workdir: Path):
    """(recognizer, trained?): ``path``, else runs/latest, else an untrained small model."""
    from lipnet_ko.model.inference import load_recognizer

    if path is not None:
        return load_recognizer(path), True  # an explicit --model that fails to load is an error, not a fallback
    try:
        return load_recognizer(None), True
    except FileNotFoundError as error:
        print(f"no trained model ({error}); using an untrained small model instead", file=sys.stderr)
        return load_recognizer(untrained_run(workdir / "untrained_run")), False


def load_lm(recognizer, no_lm: bool):
    """The shipped jamo LM for jamo models (what ``transcribe`` would load on every call), or None."""
    from lipnet_ko.text.tokenizer import JamoTokenizer

    if no_lm or not isinstance(recognizer.tokenizer, JamoTokenizer):
        return None
    from lipnet_ko.decoding.lm import load_default_lm

    return load_default_lm()


def timed_transcribe(video: Path, recognizer, options: TranscribeOptions, lm) -> dict:
    timings: dict = {}
    transcript = transcribe(video, recognizer, options, timings=timings, lm=lm)
    timings["text"] = transcript.text
    timings["segments"] = len(transcript.segments)
    return timings


def summarize(runs: list[list[dict]]) -> dict:
    """Runs (repeats x videos of timings) -> RTF, stage seconds and shares, from medians over repeats."""
    video_seconds = sum(t["video_seconds"] for t in runs[0])
    total = median([sum(t["total"] for t in run) for run in runs])
    seconds = {k: median([sum(t[k] for t in run) for run in runs]) for k in STAGES}
    shares = {k: v / total for k, v in seconds.items()}
    shares["other"] = 1.0 - sum(shares.values())
    return {"video_seconds": video_seconds, "total_s": total, "rtf": total / video_seconds, "stage_s": seconds, "shares": shares,
            "spread_rtf": [min(sum(t["total"] for t in run) for run in runs) / video_seconds,
                           max(sum(t["total"] for t in run) for run in runs) / video_seconds]}  # fmt: skip


def bench_grid(videos: list[Path], recognizer, options: TranscribeOptions, lm, repeats: int) -> dict:
    runs = [[timed_transcribe(path, recognizer, options, lm) for path in videos] for _ in range(repeats)]
    result = summarize(runs)
    result["clips"] = len(videos)
    result["texts"] = {path.name: t["text"] for path, t in zip(videos, runs[0])}
    result["target_rtf"] = GRID_TARGET_RTF
    result["student_demo_rtf"] = STUDENT_DEMO_RTF
    result["x_faster_than_demo"] = STUDENT_DEMO_RTF / result["rtf"]
    return result


def synth_source(workdir: Path, seconds: float) -> Path:
    """A small synthetic speaking-face video rendered at HD_FPS (160x160); about ``seconds`` long or less."""
    from lipnet_ko.synth.corpus import SynthConfig, generate_corpus

    sentences = max(1, math.ceil(seconds / 2.5))  # a sentence with its pauses lasts about 2-3 s
    config = SynthConfig(speakers=1, held_out_speakers=0, sentences=sentences, val_sentences=0, unseen_sentences=0,
                         sentences_per_session=sentences, fps=HD_FPS, output="video")
    out = workdir / "synth"
    generate_corpus(out, config)
    return sorted(out.glob("*/*.mp4"))[0]


def make_hd(source: Path, target: Path, seconds: float) -> Path:
    """``source`` scaled to 1080 px high, edge-padded to 1920x1080, looped to ``seconds``, MPEG-4 part 2 at HD_FPS."""
    frames = read_frames(source).frames  # small: [T, 160, 160, 3]
    width, height = HD_SIZE
    count = round(seconds * HD_FPS)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), HD_FPS, HD_SIZE)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v here; reinstall opencv-python-headless, which bundles FFmpeg")
    scaled_width = round(frames.shape[2] * height / frames.shape[1])
    left = (width - scaled_width) // 2
    try:
        for index in range(count):
            big = cv2.resize(frames[index % len(frames)], (scaled_width, height), interpolation=cv2.INTER_CUBIC)
            canvas = cv2.copyMakeBorder(big, 0, 0, left, width - scaled_width - left, cv2.BORDER_REPLICATE)
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return target


def decode_floor(path: Path) -> tuple[float, int]:
    """Seconds to read every frame with VideoReader (BGR, as transcribe reads), keeping none; and the frame count."""
    t = time.perf_counter()
    count = 0
    with VideoReader(path, rgb=False) as reader:
        for _ in reader:
            count += 1
    return time.perf_counter() - t, count


def bench_hd(path: Path, recognizer, options: TranscribeOptions, lm, repeats: int) -> dict:
    floors, runs = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        seconds, count = decode_floor(path)
        floors.append(seconds)
        runs.append([timed_transcribe(path, recognizer, options, lm)])
    result = summarize(runs)
    floor = median(floors)
    video_seconds = count / HD_FPS
    result.update(
        frames=count,
        floor_s=floor,
        floor_rtf=floor / video_seconds,
        x_floor=result["total_s"] / floor,
        decode_stage_x_floor=result["stage_s"]["decode"] / floor,  # transcribe's own decoding vs reading alone
        target_x_floor=HD_TARGET_X_FLOOR,
        text=runs[0][0]["text"],
        segments=runs[0][0]["segments"],
    )
    return result


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def print_stages(result: dict) -> None:
    parts = [f"{STAGE_NAMES.get(k, k)} {v:.0%}" for k, v in result["shares"].items()]
    print(f"  shares of total: {', '.join(parts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model",
                        help="run or export folder, or model file (default runs/latest; untrained small model if none)")
    parser.add_argument("--grid", type=Path, default=DEFAULT_GRID, help="folder of GRID .mpg clips")
    parser.add_argument("--grid-clips", type=int, help="use only the first N GRID clips (default all)")
    parser.add_argument("--hd-seconds", type=float, default=10.0, help="length of the 1080p test video")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; medians are reported")
    parser.add_argument("--beam", type=int, default=TranscribeOptions.beam_width, help="beam width (1 = greedy)")
    parser.add_argument("--no-lm", action="store_true", help="beam search without the language model")
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-hd", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.repeats < 1 or args.hd_seconds <= 0 or (args.grid_clips is not None and args.grid_clips < 1):
        parser.error("--repeats and --grid-clips must be >= 1, --hd-seconds > 0")

    videos = [] if args.skip_grid else sorted(args.grid.glob("*.mpg"))[: args.grid_clips]
    if not args.skip_grid and not videos:
        print(f"no GRID clips in {args.grid}: skipping the GRID part", file=sys.stderr)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, affinity {affinity}",
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "beam_width": args.beam,
        "repeats": args.repeats,
    }
    options = TranscribeOptions(beam_width=args.beam, lm=None if args.no_lm else "default")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        t = time.perf_counter()
        recognizer, trained = load_model(args.model, workdir)
        results["model"] = {"source": str(recognizer.source), "format": recognizer.format, "trained": trained,
                            "load_s": time.perf_counter() - t}  # fmt: skip
        t = time.perf_counter()
        lm = load_lm(recognizer, args.no_lm)
        results["lm"] = {"used": lm is not None, "load_s": time.perf_counter() - t}
        hd = None
        if not args.skip_hd:
            t = time.perf_counter()
            source = synth_source(workdir, args.hd_seconds)
            hd = make_hd(source, workdir / "synth_1080p30.mp4", args.hd_seconds)
            results["hd_setup_s"] = time.perf_counter() - t
        warm_up = videos[0] if videos else (source if hd else None)
        if warm_up is not None:
            t = time.perf_counter()
            timed_transcribe(warm_up, recognizer, options, lm)
            results["warm_up_s"] = time.perf_counter() - t
        if videos:
            results["grid"] = bench_grid(videos, recognizer, options, lm, args.repeats)
        if hd is not None:
            results["1080p"] = bench_hd(hd, recognizer, options, lm, args.repeats)

    print(json.dumps(results, indent=1, ensure_ascii=False))
    model = results["model"]
    print(f"\nmodel: {model['source']} ({model['format']}), loaded once in {model['load_s']:.1f} s"
          + ("" if model["trained"] else "; UNTRAINED (small preset): the cost of inference does not depend on the weights,"
             " only the texts are meaningless"))  # fmt: skip
    print(f"beam width {args.beam}, LM {'on' if results['lm']['used'] else 'off'}"
          f" (loaded once in {results['lm']['load_s']:.2f} s);"
          f" medians of {args.repeats} repeat(s); {results['machine']}")  # fmt: skip
    if "grid" in results:
        grid = results["grid"]
        print(f"\nGRID, {grid['clips']} clip(s), {grid['video_seconds']:.1f} s of video:")
        print(f"  RTF {grid['rtf']:.3f} (range {grid['spread_rtf'][0]:.3f}-{grid['spread_rtf'][1]:.3f})  vs  old student demo RTF"
              f" {STUDENT_DEMO_RTF:.0f} (context, not measured here): x{grid['x_faster_than_demo']:.0f} faster;"
              f" target <= {GRID_TARGET_RTF}: {verdict(grid['rtf'] <= GRID_TARGET_RTF)}")  # fmt: skip
        print_stages(grid)
    elif not args.skip_grid:
        print(f"\nGRID: skipped, no clips in {args.grid}")
    if "1080p" in results:
        hd_row = results["1080p"]
        print(f"\n1920x1080 {HD_FPS:.0f} fps synthetic face, {hd_row['frames']} frames ({hd_row['video_seconds']:.1f} s):")
        print(f"  transcribe RTF {hd_row['rtf']:.3f}  vs  decode floor RTF {hd_row['floor_rtf']:.3f}:"
              f" {hd_row['x_floor']:.2f}x floor;"
              f" target <= {HD_TARGET_X_FLOOR}x: {verdict(hd_row['x_floor'] <= HD_TARGET_X_FLOOR)}")  # fmt: skip
        print(f"  transcribe's own decoding stage: {hd_row['decode_stage_x_floor']:.2f}x the floor")
        print_stages(hd_row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
