"""Video -> Korean text and subtitles: ``transcribe(video, model)`` and ``lipnet-ko transcribe``.

The one preprocessing path (``lipnet_ko.video.extract.extract_mouth_from_video`` with the model's own
``PreprocessConfig``) makes the mouth crops; ``segmentation`` splits them into utterances by mouth
activity (long ones into overlapping windows whose texts are merged); the model gives logits; the
Hangul-constrained beam search (with the default jamo LM unless told otherwise) gives text; each
utterance becomes a subtitle segment timed from the video's own frame timestamps.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lipnet_ko.decoding.search import DecodingOptions, ctc_log_likelihood, decode, log_softmax
from lipnet_ko.video.segmentation import SegmentationConfig, find_utterances, merge_window_texts
from lipnet_ko.app.subtitles import BURN_EXTENSIONS, Segment, Transcript, burn_subtitles, write_transcript
from lipnet_ko.files import nearest_existing

logger = logging.getLogger(__name__)

FORMATS = ("txt", "srt", "vtt", "json")


@dataclass(frozen=True)
class TranscribeOptions:
    """How a video is read out; the model's own preprocessing config is always used for the crops."""

    beam_width: int = 32  # 1 = greedy (which uses no LM)
    # "default" (the shipped jamo 5-gram, Korean models only, beam search only), an ARPA path, or None
    lm: str | None = "default"
    lm_weight: float = 0.8
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    min_frames: int = 6  # utterances shorter than this are dropped (too short to read)
    batch_size: int = 16

    def __post_init__(self) -> None:
        for name in ("beam_width", "min_frames", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TranscribeOptions.{name} must be at least 1, got {getattr(self, name)}")
        if not math.isfinite(self.lm_weight):
            raise ValueError(f"TranscribeOptions.lm_weight must be a finite number, got {self.lm_weight}")
        if self.beam_width == 1 and self.lm not in (None, "default"):
            raise ValueError(f"an LM ({self.lm}) needs beam_width >= 2: beam_width=1 is greedy decoding, which uses no LM")


def _language_model(options: TranscribeOptions, tokenizer):
    """The LM the beam search fuses, or None: none for greedy decoding, nor "default" for a non-jamo model.

    Raises:
        FileNotFoundError: no ARPA file at ``options.lm``, or the shipped LM is missing.
        ValueError: the file is not a readable ARPA model (``ARPAError``), or its units do not fit ``tokenizer``.
    """
    from lipnet_ko.decoding.lm import NGramLM, default_lm_for

    if options.lm is None or options.beam_width == 1:
        return None
    if options.lm == "default":
        return default_lm_for(tokenizer)

    lm = NGramLM.read_arpa(options.lm)
    lm.check_tokenizer(tokenizer)
    return lm


def _recognizer(model):
    from lipnet_ko.model.inference import Recognizer, load_recognizer

    return model if isinstance(model, Recognizer) else load_recognizer(model)


def _confidence(log_likelihoods: list[float], frames: list[int]) -> float | None:
    """exp(sum of log P_ctc(text) / frames): the per-frame (geometric mean) probability of the segment's text."""
    total = sum(frames)
    if total == 0:
        return None
    return float(min(1.0, max(0.0, math.exp(sum(log_likelihoods) / total))))


def _why_empty(num_frames: int, fps: float, found: int, options: TranscribeOptions) -> str:
    seconds = num_frames / fps
    shortest = max(options.min_frames / fps, options.segmentation.min_speech_s)
    if seconds < shortest:
        return (f"video too short to read: {num_frames} frame(s) ({seconds:.2f} s); an utterance needs at least "
                f"{shortest:.2f} s of a speaking face")  # fmt: skip
    if found:
        return f"no utterance long enough to read: {found} mouth movement(s) shorter than {options.min_frames} frames skipped"
    return f"no utterance found: the mouth does not move enough in {seconds:.2f} s of video"


def transcribe(video: str | Path, model=None, options: TranscribeOptions | None = None, *, timings: dict | None = None,
               lm=None, mouth=None) -> Transcript:
    """Transcribe one silent video.

    Each segment's ``confidence`` is the acoustic model's per-frame probability of the segment's text,
    ``exp(log P_ctc(text | frames) / frames)`` (the CTC probability summed over all alignments, without the
    LM, as a geometric mean over the segment's output frames; windows of a long utterance are pooled): near 1
    where the model is sure of every frame, near ``1 / vocabulary_size`` for noise. ``score`` is the beam
    search's own score (LM and insertion bonus included; natural log; the mean over windows).

    Args:
        video: a video file.
        model: a ``Recognizer``, a run/export folder, or None for ``runs/latest``.
        options: decoding and segmentation settings.
        timings: if given, filled with seconds per stage: ``decode`` (video), ``face`` (detection,
            landmarks and cropping), ``segment``, ``model``, ``search`` and ``total``.
        lm: an already loaded LM (overrides ``options.lm``; lets a batch load it once).
        mouth: the video's ``MouthResult`` when it was already extracted with the recognizer's preprocess
            config (the command line extracts the first video while the model loads).

    Returns:
        A ``Transcript``. When no text could be read (a clip too short, a mouth that does not move) it has
        no segments and its ``warnings`` say why.

    Raises:
        lipnet_ko.video.reader.VideoError: the video cannot be read.
        lipnet_ko.video.mouth.NoFaceError: no face in the video.
        FileNotFoundError / ValueError: no model, or a model that does not fit its tokenizer.
    """
    from lipnet_ko.video.extract import extract_mouth_from_video

    options = options or TranscribeOptions()
    t0 = time.perf_counter()
    recognizer = _recognizer(model)
    if lm is None:
        lm = _language_model(options, recognizer.tokenizer)
    result = mouth if mouth is not None else extract_mouth_from_video(video, config=recognizer.preprocess)
    t_face = time.perf_counter()
    fps = float(result.fps or 25.0)
    stamps = result.timestamps if result.timestamps is not None else np.arange(len(result.crops)) / fps
    duration = float(stamps[-1] + 1.0 / fps) if len(stamps) else 0.0
    found = find_utterances(result, options.segmentation)
    spans = [s for s in found if s.num_frames >= options.min_frames]
    warnings = () if spans else (_why_empty(len(result.crops), fps, len(found), options),)
    if warnings:
        logger.debug("%s: %s", video, warnings[0])
    t_seg = time.perf_counter()
    logits = recognizer.logits([result.crops[s.start : s.end] for s in spans], batch_size=options.batch_size) if spans else []
    t_model = time.perf_counter()
    decoding = DecodingOptions(beam_width=options.beam_width, lm=lm if options.beam_width > 1 else None,
                               lm_weight=options.lm_weight)  # fmt: skip
    texts, scores, log_likelihoods = [], [], []
    for item in logits:
        best = decode(item[None], np.array([len(item)]), recognizer.tokenizer, decoding)[0]
        texts.append(best.text)
        scores.append(best.score)
        log_likelihoods.append(ctc_log_likelihood(log_softmax(item), best.ids))
    t_search = time.perf_counter()
    segments = []
    by_utterance: dict[int, list[int]] = {}
    for index, span in enumerate(spans):
        by_utterance.setdefault(span.utterance, []).append(index)
    for members in by_utterance.values():
        first, last = spans[members[0]], spans[members[-1]]
        text = merge_window_texts([texts[i] for i in members])
        score = float(np.mean([scores[i] for i in members]))
        confidence = _confidence([log_likelihoods[i] for i in members], [len(logits[i]) for i in members])
        segments.append(Segment(float(stamps[first.start]), float(stamps[last.end - 1] + 1.0 / fps), text, score=score,
                                confidence=confidence))  # fmt: skip
    if timings is not None:
        stages = result.timings
        timings.update(
            decode=stages.get("decode", 0.0),
            face=stages.get("detect", 0.0) + stages.get("landmarks", 0.0) + stages.get("crop", 0.0),
            segment=t_seg - t_face,
            model=t_model - t_seg,
            search=t_search - t_model,
            total=time.perf_counter() - t0,
            video_seconds=duration,
        )
    return Transcript(source=str(video), segments=tuple(segments), duration=duration, fps=fps, warnings=warnings)


# ---------------------------------------------------------------------------------------------------
# Command line

EPILOG = """\
exit status:
  0  every video was transcribed (and burned in, with --burn); a video with no readable speech counts
     as done: its subtitle files are empty and a warning on stderr says why
  1  at least one video failed (unreadable, no face, the burn-in failed, ...): each failure is reported on
     stderr as it happens, the other videos are still transcribed, and a summary line ends the run
  2  nothing was done: bad options, no readable video, or no usable model or LM; checked before the
     model loads
Every file written is listed on stdout; each is written whole or not at all.
"""


def configure_parser(parser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("videos", nargs="+", type=Path, help="silent video files of a face speaking Korean")
    parser.add_argument("--model", help="run folder or export (default runs/latest, saved by `python train.py`)")
    lm = parser.add_mutually_exclusive_group()
    lm.add_argument("--lm", help="ARPA jamo LM for the beam search (default: the shipped one)")
    lm.add_argument("--no-lm", action="store_true", help="beam search without a language model")
    parser.add_argument("--beam", type=int, default=32, help="beam width (1 = greedy, which uses no LM)")
    parser.add_argument("--format", default="txt,srt,vtt,json", help="comma-separated: txt, srt, vtt, json")
    parser.add_argument("--out", type=Path, help="output folder (default: beside each video)")
    parser.add_argument("--burn", type=Path,
                        help="write the video with subtitles drawn in: OUT.mp4 or OUT.gif (one video), or a folder")


class _UsageError(ValueError):
    """A problem with the options or inputs, found before anything is loaded: exit 2."""


def _formats(spec: str) -> list[str]:
    formats = list(dict.fromkeys(f.strip().lower().lstrip(".") for f in spec.split(",") if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise _UsageError(f"unknown --format {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}")
    return formats


def _folder_problem(folder: Path) -> str | None:
    """Why files cannot be written into ``folder`` (created if missing), or None."""
    ancestor = nearest_existing(folder)
    if ancestor is None:
        return None
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"no permission to write in {ancestor}"
    return None


def _burn_file(burn: Path) -> bool:
    """Whether ``--burn`` names one output file (OUT.mp4/OUT.gif) rather than a folder."""
    return burn.suffix.lower() in BURN_EXTENSIONS and not burn.is_dir()


def _burn_target(burn: Path, video: Path) -> Path:
    return burn if _burn_file(burn) else burn / f"{video.stem}.subtitled.mp4"


def _check_outputs(args, videos: list[Path]) -> None:
    """Every --out/--burn problem that can be seen before loading the model, as a _UsageError."""
    if args.out is not None:
        problem = _folder_problem(args.out)
        if problem:
            raise _UsageError(f"--out {args.out}: cannot write there: {problem}")
    if args.burn is not None:
        if _burn_file(args.burn):
            if len(args.videos) > 1:
                raise _UsageError("--burn FILE takes one video; pass a folder to --burn for several")
            folder = args.burn.parent
        elif args.burn.suffix and not args.burn.is_dir():
            raise _UsageError(f"--burn writes .mp4 or .gif, not {args.burn.suffix}")
        else:
            folder = args.burn
        problem = _folder_problem(folder)
        if problem:
            raise _UsageError(f"--burn {args.burn}: cannot write there: {problem}")
        for video in videos:
            if _burn_target(args.burn, video).resolve() == video.resolve():
                raise _UsageError(f"--burn {args.burn} is the input video itself; choose another file")
        from lipnet_ko.app.subtitles import find_korean_font

        try:
            find_korean_font()
        except FileNotFoundError as error:
            raise _UsageError(f"--burn needs a Korean font: {error}") from None
    claimed: dict[Path, Path] = {}  # output stem or burned file -> the video that writes it
    for video in videos:
        targets = [(args.out or video.parent).resolve() / video.stem]
        if args.burn is not None:
            targets.append(_burn_target(args.burn, video).resolve())
        for target in targets:
            other = claimed.setdefault(target, video)
            if other is not video:
                what = f"{target}.*" if target.name == video.stem else str(target)
                raise _UsageError(f"{other} and {video} would both write {what}; transcribe them in separate runs")


def _one_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (TensorFlow's run on for pages)."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


def _quiet(args):
    """TensorFlow's start-up lines held back (it prints them when it loads, finds no GPU, runs the model first)."""
    from lipnet_ko.app.cli import quiet_native_logs

    return quiet_native_logs(enabled=not getattr(args, "verbose", False))


class _MouthPrefetch:
    """The first video's mouth crops made in a forked process while this one imports TensorFlow and loads the model.

    Both take seconds and use one core each (dlib and video decoding there, TensorFlow's import here), so on a
    2-core machine the crops are ready when the model is. Only before TensorFlow is imported (forking after it is
    unsafe) and where ``fork`` exists; otherwise, or if the worker fails to start, the video is cropped in this
    process as usual, and so is a video whose worker died. A video that cannot be read or shows no face raises
    its error from :meth:`result`, as cropping it here would. Forking is safe here because nothing before it has
    started threads that hold locks (no OpenCV call runs before the prefetch; ``data.crops`` spawns its workers
    instead, as it forks after cropping): keep it first in ``run``.
    """

    def __init__(self, video: Path, model_path):
        self.video, self.config, self._future, self._pool = video, None, None, None
        if "tensorflow" in sys.modules or "fork" not in multiprocessing.get_all_start_methods():
            return
        try:
            from lipnet_ko.model.inference import read_preprocess_config
            from lipnet_ko.video.extract import extract_mouth_from_video

            self.config = read_preprocess_config(model_path)
        except (OSError, ValueError):
            return  # loading the model reports it
        try:  # the fork happens in submit(): it can fail (no memory, a process limit); then crop here as usual
            self._pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
            self._future = self._pool.submit(extract_mouth_from_video, video, config=self.config)
        except (OSError, RuntimeError):
            logger.debug("could not start a worker to crop %s while the model loads", video, exc_info=True)
            self.close()

    def result(self, video: Path, config):
        """The prefetched ``MouthResult`` for ``video`` made with ``config``, or None (then crop here)."""
        if self._future is None or video != self.video or config != self.config:
            return None
        from lipnet_ko.video.mouth import NoFaceError
        from lipnet_ko.video.reader import VideoError

        try:
            mouth = self._future.result()
            logger.debug("%s was cropped in a worker process while the model loaded", video)
            return mouth
        except (VideoError, NoFaceError):
            raise  # the video's own error, as cropping here would raise it (without cropping it twice)
        except Exception:  # a worker that died, or an error that did not survive pickling: crop here instead
            logger.debug("prefetching %s failed; cropping it here", video, exc_info=True)
            return None
        finally:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._future = None, None


def _load(args, options: TranscribeOptions, lm):
    """(recognizer, lm): the model and the LM that fits it. Raises _UsageError."""
    try:
        with _quiet(args):
            recognizer = _recognizer(args.model)
    except (FileNotFoundError, ValueError, OSError) as error:
        raise _UsageError(_one_line(error)) from None
    except Exception as error:  # a damaged model file can fail anywhere in Keras or TensorFlow
        logger.debug("loading the model failed", exc_info=True)
        raise _UsageError(f"cannot load the model {args.model or 'runs/latest'}: {type(error).__name__}: "
                          f"{_one_line(error)}") from None  # fmt: skip
    try:
        if lm is not None:
            lm.check_tokenizer(recognizer.tokenizer)
        else:
            lm = _language_model(options, recognizer.tokenizer)
    except (FileNotFoundError, ValueError) as error:
        raise _UsageError(f"--lm: {error}" if args.lm else str(error)) from None
    return recognizer, lm


def _report_written(written: dict[str, Path]) -> None:
    for kind, path in written.items():
        print(f"  {kind}: {path}")


def run(args) -> int:
    """Transcribe every video; a failing one is reported and the rest carry on. Exit status as in ``EPILOG``."""
    try:
        formats = _formats(args.format)
        if args.beam < 1:
            raise _UsageError(f"--beam must be at least 1 (1 = greedy), got {args.beam}")
        if args.lm and args.beam == 1:
            raise _UsageError("--lm needs --beam 2 or more: --beam 1 is greedy decoding, which uses no language model")
        videos = [v for v in args.videos if v.is_file()]
        for video in args.videos:
            if not video.is_file():
                why = "is a folder, not a video file" if video.is_dir() else "does not exist"
                if videos:
                    print(f"{video}: failed: {why}", file=sys.stderr)
                else:
                    print(f"error: {video} {why}", file=sys.stderr)
        if not videos:
            return 2
        _check_outputs(args, videos)
        options = TranscribeOptions(beam_width=args.beam, lm=None if args.no_lm else (args.lm or "default"))
        lm = None
        if args.lm:  # read (and check) the file before the model: a bad path fails in a moment, not after loading
            from lipnet_ko.decoding.lm import NGramLM

            try:
                lm = NGramLM.read_arpa(args.lm)
            except (OSError, ValueError) as error:  # FileNotFoundError, ARPAError, a folder, no permission
                raise _UsageError(f"--lm: {error}") from None
        prefetch = _MouthPrefetch(videos[0], args.model)
        try:
            recognizer, lm = _load(args, options, lm)
        except BaseException:
            prefetch.close()
            raise
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        return _transcribe_all(args, videos, formats, recognizer, options, lm, prefetch)
    finally:
        prefetch.close()


def _transcribe_all(args, videos: list[Path], formats: list[str], recognizer, options: TranscribeOptions, lm,
                    prefetch: _MouthPrefetch) -> int:
    from lipnet_ko.video.landmarks import LandmarkModelError

    failed = [v for v in args.videos if v not in videos]
    empty = 0
    for video in videos:
        try:
            mouth = prefetch.result(video, recognizer.preprocess)
            with _quiet(args):
                transcript = transcribe(video, recognizer, options, lm=lm, mouth=mouth)
            written = write_transcript(transcript, args.out or video.parent, video.stem, formats)
        except LandmarkModelError as error:  # dlib or its model missing: no video can be read
            print(f"error: {_one_line(error)}", file=sys.stderr)
            return 2 if video is videos[0] else 1
        except Exception as error:  # one bad video must not stop the others; the traceback is in the -v log
            logger.debug("%s failed", video, exc_info=True)
            failed.append(video)
            print(f"{video}: failed: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
            continue
        if transcript.segments:
            print(f"{video}: {len(transcript.segments)} segment(s): {transcript.text}")
        else:
            empty += 1
            print(f"{video}: no text; wrote empty subtitles:")
        _report_written(written)
        sys.stdout.flush()
        for warning in transcript.warnings:
            print(f"warning: {video}: {warning}", file=sys.stderr)
        if args.burn:
            target = _burn_target(args.burn, video)
            try:
                _report_written({"burn": burn_subtitles(video, transcript, target)})
            except Exception as error:
                logger.debug("burning %s failed", target, exc_info=True)
                failed.append(video)
                print(f"{video}: failed: burning subtitles into {target}: {type(error).__name__}: {_one_line(error)} "
                      f"(its {', '.join(written)} files were written)", file=sys.stderr)  # fmt: skip
    sys.stdout.flush()
    done = len(args.videos) - len(failed)
    summary = f"{done} of {len(args.videos)} video(s) transcribed"
    if empty:
        summary += f" ({empty} with no text)"
    if failed:
        summary += f"; {len(failed)} failed: {', '.join(map(str, failed))}"
    print(summary, file=sys.stderr)
    return 1 if failed else 0
