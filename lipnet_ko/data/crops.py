"""A corpus -> cached mouth crops: the ``lipnet-ko preprocess`` batch command and the ``.npz`` crop files.

Crops are made by ``lipnet_ko.video.extract`` (the one path from video to crops); a clip whose ``video`` is a
folder of frame images that are already mouth crops (``crops:DIR``) is read by
``lipnet_ko.data.crop_folders.read_crop_folder`` instead, with no face detection, into the same ``.npz``.
The command expands its inputs (video files, folders, manifests, or ``KIND:PATH`` specs registered in ``INPUT_KINDS``) into
``Clip``s, then writes one compressed ``.npz`` per clip (see ``save_clip`` for the keys), atomically,
skipping clips already done, in parallel worker processes, and finishes with a JSON report of what
succeeded and what failed and why.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import dataclasses
import datetime
import logging
import multiprocessing
import os
import signal
import sys
import time
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from lipnet_ko.files import temp_path, write_json_atomic
from lipnet_ko.data.clips import Clip, ManifestError, read_manifest
from lipnet_ko.data.crop_folders import crop_folder_fps, read_crop_folder
from lipnet_ko.video.landmarks import DetectorConfig
from lipnet_ko.video.mouth import MouthConfig, NoFaceError
from lipnet_ko.video.reader import VIDEO_EXTENSIONS, VideoError, find_videos
from lipnet_ko.video.extract import MouthResult, PreprocessConfig, process_tracker, extract_mouth_from_video

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # of the .npz files; bump when keys or their meaning change (resume redoes older files)
REPORT_NAME = "preprocess_report.json"
PREVIEW_NAME = "preview.png"
MANIFEST_EXTENSIONS = (".csv", ".jsonl")




# ---------------------------------------------------------------------------------------------------
# Output files


def output_path(out_dir: Path, clip: Clip) -> Path:
    """Where a clip's crops go: ``OUT/<clip_id>.npz``."""
    return out_dir / f"{clip.clip_id}.npz"


def _remove_stale_temps(final: Path) -> None:
    for stale in final.parent.glob(f".{final.name}.*.tmp"):
        try:
            stale.unlink()
            logger.debug("removed stale temporary file %s", stale)
        except OSError:
            pass


def save_clip(path: Path, result: MouthResult, clip: Clip, config: PreprocessConfig, *, compress: bool = True) -> None:
    """Writes a clip's crops to ``path`` atomically (a temporary file in the same folder, then ``os.replace``).

    ``compress=False`` stores the arrays uncompressed (``np.savez``): for crops full of sensor noise, such as
    the synthetic corpus's, deflate saves about a quarter of the bytes but costs about 13x the write time and
    12x the read time (BENCHMARKS.md, synthetic corpus v4). :func:`load_clip` reads both.

    Keys: ``crops`` uint8 [T,H,W,C]; ``landmarks`` float32 [T,68,2] source px (NaN when boxes were given);
    ``boxes`` float32 [T,4] (NaN when detected); ``found`` bool [T] (measured, not interpolated); ``searched``
    bool [T] (False where skipped on purpose, ``landmark_every``); ``transforms`` float32 [T,2,3] source px
    -> crop px; ``timestamps`` float64 [T] s; ``fps``; ``source`` (video path, or the crop folder);
    ``start``/``end`` (s, NaN = open); ``text``; ``speaker``; ``clip_id``; ``config`` (PreprocessConfig JSON); ``format_version``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = len(result.crops)
    arrays = {
        "crops": result.crops,
        "landmarks": result.landmarks.astype(np.float32),
        "boxes": result.boxes if result.boxes is not None else np.full((frames, 4), np.nan, np.float32),
        "found": result.found,
        "searched": result.searched,
        "transforms": result.transforms,
        "timestamps": result.timestamps if result.timestamps is not None else np.full(frames, np.nan),
        "fps": np.float64(result.fps if result.fps is not None else np.nan),
        "source": np.str_(str(clip.video)),
        "start": np.float64(np.nan if clip.start is None else clip.start),
        "end": np.float64(np.nan if clip.end is None else clip.end),
        "text": np.str_(clip.text),
        "speaker": np.str_(clip.speaker),
        "clip_id": np.str_(clip.clip_id),
        "config": np.str_(config.to_json()),
        "format_version": np.int64(FORMAT_VERSION),
    }
    temp = temp_path(path)
    try:
        with open(temp, "wb") as handle:
            (np.savez_compressed if compress else np.savez)(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def load_clip(path: str | Path) -> dict[str, np.ndarray]:
    """Reads a file written by ``save_clip`` into a dict of arrays (see ``save_clip`` for the keys).

    Raises:
        ValueError: not such a file, or written by another format version.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"cannot read preprocessed clip {path}: {error}") from None
    version = int(arrays.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {version}, expected {FORMAT_VERSION}; preprocess it again")
    return arrays


def is_done(path: Path, config: PreprocessConfig) -> bool:
    """True when ``path`` is a complete output of this format version made with this exact config.

    Reads only the zip directory and two small members, so a truncated or foreign file is never
    mistaken for a finished clip.
    """
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            if not {"crops", "format_version", "config"} <= set(data.files):
                return False
            if int(data["format_version"]) != FORMAT_VERSION:
                return False
            return str(data["config"]) == config.to_json()
    except Exception:  # any unreadable file means "not done"
        return False


# ---------------------------------------------------------------------------------------------------
# Inputs -> clips

# Prefix -> loader for ``KIND:PATH`` inputs: manifests and the corpus readers of ``lipnet_ko.data.corpora``.
# Each loader takes the PATH part and returns clips with unique clip_ids.
def _corpus_loader(kind: str) -> Callable[[str], list[Clip]]:
    def load(path: str) -> list[Clip]:
        from lipnet_ko.data.corpora import scan  # corpus readers; their skipped files are logged one by one

        return scan(f"{kind}:{path}").clips

    return load


INPUT_KINDS: dict[str, Callable[[str], list[Clip]]] = {
    "manifest": lambda path: read_manifest(path),
    **{kind: _corpus_loader(kind) for kind in ("aihub", "grid", "synthetic", "crops")},
}


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def clips_from_folder(folder: Path) -> list[Clip]:
    """Every video under ``folder`` (recursively, by extension); clip_id = path relative to it, without suffix."""
    videos = find_videos(folder)
    return [Clip(video=p, clip_id=p.relative_to(folder).with_suffix("").as_posix()) for p in videos]


def expand_inputs(specs: Sequence[str]) -> list[Clip]:
    """Turns command-line inputs into clips.

    Each spec is a video file, a folder (searched recursively for ``VIDEO_EXTENSIONS``), a manifest
    (``.csv``/``.jsonl``, see ``lipnet_ko.data.clips.read_manifest``) or ``KIND:PATH`` for a loader in ``INPUT_KINDS``.

    Raises:
        ValueError: an input does not exist or is of no known kind, a manifest is malformed,
            or two clips would write the same output.
    """
    clips: list[Clip] = []
    for spec in specs:
        kind, _, rest = spec.partition(":")
        path = Path(spec)
        if rest and kind in INPUT_KINDS and not path.exists():
            found = INPUT_KINDS[kind](rest)
        elif path.is_dir():
            found = clips_from_folder(path)
            if not found:
                logger.warning("no videos (%s) under %s", ", ".join(VIDEO_EXTENSIONS), path)
        elif path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
            found = read_manifest(path)
        elif path.is_file() and _is_video(path):
            found = [Clip(video=path)]
        elif path.is_file():
            raise ValueError(
                f"{spec}: not a video ({', '.join(VIDEO_EXTENSIONS)}) or a manifest ({', '.join(MANIFEST_EXTENSIONS)})"
            )
        elif rest and len(kind) > 1 and kind.isidentifier():
            raise ValueError(f"{spec}: unknown input kind {kind!r}; known: {', '.join(sorted(INPUT_KINDS))}")
        else:
            raise ValueError(f"{spec}: no such file or folder")
        clips.extend(found)
    owners: dict[str, Clip] = {}
    for clip in clips:
        if clip.clip_id in owners:
            raise ValueError(
                f"two clips would both write {clip.clip_id}.npz: {owners[clip.clip_id].video} and {clip.video}; "
                "give them distinct clip_id values in a manifest, or pass their folders instead"
            )
        owners[clip.clip_id] = clip
    return clips


# ---------------------------------------------------------------------------------------------------
# Running the batch


def _init_worker(config: PreprocessConfig) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and lets running clips finish
    cv2.setNumThreads(1)  # one worker per core; OpenCV's own threads would oversubscribe
    process_tracker(config.detector)


def process_clip(clip: Clip, out_dir: Path, config: PreprocessConfig) -> dict:
    """Crops one clip and writes its ``.npz``; never raises for a bad clip.

    Returns:
        A report entry: ``clip_id``, ``video``, ``start``, ``end``, ``output``, ``status`` ("done" or
        "failed"), ``reason`` (for failures), ``frames``, ``missing_frames``, ``fps``, ``seconds`` (compute).
    """
    entry = {
        "clip_id": clip.clip_id,
        "video": str(clip.video),
        "start": clip.start,
        "end": clip.end,
        "output": str(output_path(out_dir, clip)),
    }
    t0 = time.perf_counter()
    final = output_path(out_dir, clip)
    try:
        _remove_stale_temps(final)
        result = _mouth_of(clip, config)
        save_clip(final, result, clip, config)
    except (VideoError, NoFaceError, ValueError, OSError) as error:
        entry.update(status="failed", reason=f"{type(error).__name__}: {error}")
    except Exception as error:  # a bug or a library failure on one clip must not stop the batch
        logger.debug("unexpected failure on %s", clip.video, exc_info=True)
        entry.update(status="failed", reason=f"unexpected {type(error).__name__}: {error}")
    else:
        entry.update(
            status="done",
            frames=int(len(result.crops)),
            missing_frames=int((result.searched & ~result.found).sum()),
            fps=result.fps,
            timings={k: round(v, 4) for k, v in result.timings.items()},
        )
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    return entry


def _mouth_of(clip: Clip, config: PreprocessConfig) -> MouthResult:
    """A video is cropped; a folder holds mouth crops already (``crops:DIR``) and is only read and checked.

    A folder's ``start``/``end`` cut its frames by time (frame i at i / fps, fps from the corpus's labels.csv),
    as a video's range cuts a video; mouth boxes have nothing to crop there and are refused.
    """
    if clip.video.is_dir():
        if clip.mouth_boxes is not None:
            raise ValueError(f"{clip.video} is a folder of mouth crops: mouth boxes cannot apply to it")
        return read_crop_folder(clip.video, config, crop_folder_fps(clip.video), start=clip.start, end=clip.end)
    return extract_mouth_from_video(clip.video, clip.start, clip.end, config, boxes=clip.mouth_boxes)


def _skipped_entry(clip: Clip, out_dir: Path) -> dict:
    return {
        "clip_id": clip.clip_id,
        "video": str(clip.video),
        "start": clip.start,
        "end": clip.end,
        "output": str(output_path(out_dir, clip)),
        "status": "skipped",
        "reason": "already done",
    }


def run_batch(
    clips: Sequence[Clip],
    out_dir: Path,
    config: PreprocessConfig,
    jobs: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[list[dict], bool]:
    """Processes clips, skipping those already done, in ``jobs`` worker processes.

    Returns:
        (report entries in input order, interrupted). On Ctrl-C, clips being processed finish, the rest
        are left out and ``interrupted`` is True.
    """
    from tqdm import tqdm

    entries: dict[int, dict] = {}
    todo: list[int] = []
    for index, clip in enumerate(clips):
        if not overwrite and is_done(output_path(out_dir, clip), config):
            entries[index] = _skipped_entry(clip, out_dir)
        else:
            todo.append(index)
    if entries:
        logger.info("%d of %d clips already done; %d to do", len(entries), len(clips), len(todo))
    bar = tqdm(total=len(todo), unit="clip", disable=None if progress else True, dynamic_ncols=True)
    failed = 0
    interrupted = False

    def record(index: int, entry: dict) -> None:
        nonlocal failed
        entries[index] = entry
        if entry["status"] == "failed":
            failed += 1
            logger.warning("%s: %s", entry["clip_id"], entry["reason"])
        bar.update(1)
        bar.set_postfix(failed=failed, refresh=False)

    try:
        if jobs <= 1 or len(todo) <= 1:
            for index in todo:
                record(index, process_clip(clips[index], out_dir, config))
        else:
            context = multiprocessing.get_context("spawn")  # fork is unsafe with dlib/OpenCV threads
            pool = futures.ProcessPoolExecutor(
                max_workers=min(jobs, len(todo)), mp_context=context, initializer=_init_worker, initargs=(config,)
            )
            pending = {pool.submit(process_clip, clips[i], out_dir, config): i for i in todo}
            try:
                for future in futures.as_completed(pending):
                    index = pending[future]
                    try:
                        record(index, future.result())
                    except futures.process.BrokenProcessPool as error:
                        entry = _skipped_entry(clips[index], out_dir)
                        entry.update(status="failed", reason=f"worker process died: {error}")
                        record(index, entry)
            except KeyboardInterrupt:
                interrupted = True
                logger.warning("interrupted: letting running clips finish, cancelling the rest")
                for future in pending:
                    future.cancel()
                for future, index in pending.items():
                    if not future.cancelled() and index not in entries:
                        try:
                            record(index, future.result())
                        except Exception:
                            pass
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted")
    finally:
        bar.close()
    return [entries[i] for i in sorted(entries)], interrupted


def write_batch_report(
    path: Path, entries: list[dict], config: PreprocessConfig, inputs: Sequence[str], interrupted: bool, total: int
) -> dict:
    """Writes the JSON report atomically and returns it."""
    counts = {status: sum(e["status"] == status for e in entries) for status in ("done", "skipped", "failed")}
    counts["not_started"] = total - len(entries)
    report = {
        "format_version": FORMAT_VERSION,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "inputs": list(inputs),
        "config": dataclasses.asdict(config),
        "interrupted": interrupted,
        "counts": counts,
        "clips": entries,
    }
    write_json_atomic(path, report)
    return report


def write_contact_sheet(paths: Sequence[Path], png: Path, per_clip: int = 8, zoom: int = 2) -> int:
    """Saves a PNG with one row of ``per_clip`` evenly spaced crops per clip, for a person to check.

    Returns:
        The number of clips drawn.
    """
    rows = []
    for path in paths:
        try:
            data = load_clip(path)
        except ValueError as error:
            logger.warning("preview: %s", error)
            continue
        crops = data["crops"]
        if crops.shape[-1] == 1:
            crops = np.repeat(crops, 3, axis=-1)
        picks = np.linspace(0, len(crops) - 1, min(per_clip, len(crops))).round().astype(int)
        height, width = crops.shape[1] * zoom, crops.shape[2] * zoom
        tiles = [cv2.resize(crops[i], (width, height), interpolation=cv2.INTER_NEAREST) for i in picks]
        tiles += [np.zeros_like(tiles[0])] * (per_clip - len(tiles))
        gap = np.full((height, 4, 3), 255, np.uint8)
        strip = np.hstack([part for tile in tiles for part in (tile, gap)])
        label = np.full((18, strip.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"{data['clip_id']}  ({len(crops)} frames; shown: {', '.join(map(str, picks))})",
                    (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.vstack([label, strip]))
    if not rows:
        return 0
    width = max(row.shape[1] for row in rows)
    sheet = np.vstack([np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows])
    png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(png), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {png}")
    return len(rows)


# ---------------------------------------------------------------------------------------------------
# Command line


def _default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


EXIT_STATUS_HELP = (
    "Exit status: 0 when every clip was cropped (or already done); 1 when any clip failed: the others are "
    "still cropped, each failure is reported, and the summary and report list them; 2 when nothing was done "
    "(bad options or inputs); 130 when interrupted."
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Adds the ``lipnet-ko preprocess`` arguments."""
    parser.epilog = EXIT_STATUS_HELP
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="video files, folders (searched recursively), manifests (.csv/.jsonl), or KIND:PATH")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="folder for the .npz files and the report; default, for one KIND:PATH input, the crop cache "
                             "training uses for it (<corpus>-crops beside it, or under the data folder where that is "
                             "read-only: lipnet_ko.files.corpus_cache_dir)")
    parser.add_argument("--jobs", type=int, default=_default_jobs(), help="worker processes (default: the number of cores)")
    parser.add_argument("--width", type=int, default=MouthConfig.width, help="crop width in px (default %(default)s)")
    parser.add_argument("--height", type=int, default=MouthConfig.height, help="crop height in px (default %(default)s)")
    parser.add_argument("--grey", action="store_true", help="one-channel crops instead of RGB")
    parser.add_argument("--margin", type=float, default=MouthConfig.margin,
                        help="share of the crop width on each side of the mouth corners (default %(default)s)")
    parser.add_argument("--smoothing", type=int, default=MouthConfig.smoothing,
                        help="frames in the moving average over landmarks; 1 = off (default %(default)s)")
    parser.add_argument("--max-missing-share", type=float, default=MouthConfig.max_missing_share,
                        help="fail a clip when a larger share of its frames has no face (default %(default)s)")
    parser.add_argument("--detect-every", type=int, default=DetectorConfig.detect_every,
                        help="frames between face re-detections while tracking (default %(default)s)")
    parser.add_argument("--landmark-every", type=int, default=DetectorConfig.landmark_every,
                        help="run the landmark predictor on every n-th frame, interpolate between (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="redo clips that are already done")
    parser.add_argument("--report", type=Path, default=None, help=f"JSON report path (default: DIR/{REPORT_NAME})")
    parser.add_argument("--preview", nargs="?", type=Path, const=True, default=None, metavar="PNG",
                        help=f"save a contact sheet of crops (default path: DIR/{PREVIEW_NAME})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_out_dir(inputs: Sequence[str]) -> Path | None:
    """The crop cache training reads for a single ``KIND:PATH`` input (``corpus_cache_dir``), so that
    ``lipnet-ko preprocess grid:DIR`` followed by ``python train.py --data grid:DIR`` crops each clip once;
    None for any other input."""
    from lipnet_ko.data.corpora import is_spec, parse_spec
    from lipnet_ko.files import corpus_cache_dir

    if len(inputs) != 1 or not is_spec(inputs[0]) or Path(inputs[0]).exists():
        return None
    return corpus_cache_dir(parse_spec(inputs[0])[1])


def config_from_args(args: argparse.Namespace) -> PreprocessConfig:
    """The ``PreprocessConfig`` the flags describe (raises ValueError on invalid values)."""
    return PreprocessConfig(
        mouth=MouthConfig(height=args.height, width=args.width, grey=args.grey, margin=args.margin,
                          smoothing=args.smoothing, max_missing_share=args.max_missing_share),
        detector=DetectorConfig(detect_every=args.detect_every, landmark_every=args.landmark_every),
    )


def run(args: argparse.Namespace) -> int:
    """Runs ``lipnet-ko preprocess``; returns the exit status of ``EXIT_STATUS_HELP``.

    0: every clip done or already done; 1: at least one clip failed (after every other clip was processed
    and the summary and report written); 2: misuse, nothing done; 130: interrupted (Ctrl-C or SIGTERM).
    """
    try:
        if args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
        config = config_from_args(args)
        clips = expand_inputs(args.inputs)
    except (ValueError, ManifestError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not clips:
        print(f"error: no videos found in {' '.join(args.inputs)}", file=sys.stderr)
        return 2
    out_dir: Path | None = args.out
    if out_dir is None:
        out_dir = default_out_dir(args.inputs)
        if out_dir is None:
            print("error: --out DIR is needed unless the input is one corpus spec (KIND:PATH), whose crops then go to "
                  "the cache training reads", file=sys.stderr)  # fmt: skip
            return 2
        print(f"crops -> {out_dir} (the crop cache of {args.inputs[0]})")
    if out_dir.exists() and not out_dir.is_dir():
        print(f"error: --out {out_dir} exists and is not a folder", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    logger.info("%d clips -> %s with %d worker(s)", len(clips), out_dir, args.jobs)

    previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops as cleanly as Ctrl-C
    try:
        entries, interrupted = run_batch(clips, out_dir, config, args.jobs, args.overwrite, not args.no_progress)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    report_path = args.report or out_dir / REPORT_NAME
    report = write_batch_report(report_path, entries, config, args.inputs, interrupted, len(clips))
    counts = report["counts"]
    if args.preview is not None:
        png = out_dir / PREVIEW_NAME if args.preview is True else args.preview
        done = [Path(e["output"]) for e in entries if e["status"] in ("done", "skipped")][:16]
        drawn = write_contact_sheet(done, png)
        if drawn:
            print(f"preview of {drawn} clips: {png}")
    print(
        f"{counts['done']} done, {counts['skipped']} skipped (already done), {counts['failed']} failed"
        + (f", {counts['not_started']} not started (interrupted)" if interrupted else "")
        + f"; report: {report_path}"
    )
    for entry in entries:
        if entry["status"] == "failed":
            print(f"  failed {entry['clip_id']}: {entry['reason']}")
    if interrupted:
        return 130
    return 1 if counts["failed"] else 0
