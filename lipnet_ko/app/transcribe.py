"""Video -> Korean text and subtitles: ``transcribe(video, model)`` and ``lipnet-ko transcribe``.

The one preprocessing path (``lipnet_ko.video.extract.extract_mouth_from_video`` with the model's own
``PreprocessConfig``) makes the mouth crops; ``segmentation`` splits them into utterances by mouth
activity (long ones into overlapping windows whose texts are merged); the model gives logits; the
Hangul-constrained beam search (with the default jamo LM unless told otherwise) gives text; each
utterance becomes a subtitle segment timed from the video's own frame timestamps.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lipnet_ko.decode.search import DecodingOptions, decode
from lipnet_ko.video.segmentation import SegmentationConfig, find_utterances, merge_window_texts
from lipnet_ko.app.subtitles import Segment, Transcript, burn_subtitles, write_transcript

logger = logging.getLogger(__name__)

FORMATS = ("txt", "srt", "vtt", "json")


@dataclass(frozen=True)
class TranscribeOptions:
    """How a video is read out; the model's own preprocessing config is always used for the crops."""

    beam_width: int = 32  # 1 = greedy
    lm: str | None = "default"  # "default" (the shipped jamo 5-gram, Korean models only), an ARPA path, or None
    lm_weight: float = 0.8
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    min_frames: int = 6  # utterances shorter than this are dropped (too short to read)
    batch_size: int = 16


def _language_model(options: TranscribeOptions, tokenizer):
    from lipnet_ko.text.tokenizer import JamoTokenizer

    if options.lm is None:
        return None
    if options.lm == "default":
        if not isinstance(tokenizer, JamoTokenizer):
            return None
        from lipnet_ko.decode.lm import load_default_lm

        return load_default_lm()
    from lipnet_ko.decode.lm import NGramLM

    return NGramLM.read(options.lm)


def _recognizer(model):
    from lipnet_ko.model.inference import Recognizer, load_recognizer

    return model if isinstance(model, Recognizer) else load_recognizer(model)


def transcribe(video: str | Path, model=None, options: TranscribeOptions | None = None, *, timings: dict | None = None,
               lm=None) -> Transcript:
    """Transcribe one silent video.

    Args:
        video: a video file.
        model: a ``Recognizer``, a run/export folder, or None for ``runs/latest``.
        options: decoding and segmentation settings.
        timings: if given, filled with seconds per stage: ``decode`` (video), ``face`` (detection,
            landmarks and cropping), ``segment``, ``model``, ``search`` and ``total``.
        lm: an already loaded LM (overrides ``options.lm``; lets a batch load it once).

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
    result = extract_mouth_from_video(video, config=recognizer.preprocess)
    t_face = time.perf_counter()
    fps = float(result.fps or 25.0)
    stamps = result.timestamps if result.timestamps is not None else np.arange(len(result.crops)) / fps
    duration = float(stamps[-1] + 1.0 / fps) if len(stamps) else 0.0
    spans = [s for s in find_utterances(result, options.segmentation) if s.num_frames >= options.min_frames]
    t_seg = time.perf_counter()
    logits = recognizer.logits([result.crops[s.start : s.end] for s in spans], batch_size=options.batch_size) if spans else []
    t_model = time.perf_counter()
    decoding = DecodingOptions(beam_width=options.beam_width, lm=lm, lm_weight=options.lm_weight)
    texts, scores = [], []
    for item in logits:
        best = decode(item[None], np.array([len(item)]), recognizer.tokenizer, decoding)[0]
        texts.append(best.text)
        scores.append(best.score)
    t_search = time.perf_counter()
    segments = []
    by_utterance: dict[int, list[int]] = {}
    for index, span in enumerate(spans):
        by_utterance.setdefault(span.utterance, []).append(index)
    for members in by_utterance.values():
        first, last = spans[members[0]], spans[members[-1]]
        text = merge_window_texts([texts[i] for i in members])
        score = float(np.mean([scores[i] for i in members]))
        segments.append(Segment(float(stamps[first.start]), float(stamps[last.end - 1] + 1.0 / fps), text, score=score))
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
    return Transcript(source=str(video), segments=tuple(segments), duration=duration, fps=fps)


# ---------------------------------------------------------------------------------------------------
# Command line


def configure_parser(parser) -> None:
    parser.add_argument("videos", nargs="+", type=Path, help="silent video files of a face speaking Korean")
    parser.add_argument("--model", help="run folder or export (default runs/latest, saved by `python train.py`)")
    lm = parser.add_mutually_exclusive_group()
    lm.add_argument("--lm", help="ARPA jamo LM for the beam search (default: the shipped one)")
    lm.add_argument("--no-lm", action="store_true", help="beam search without a language model")
    parser.add_argument("--beam", type=int, default=32, help="beam width (1 = greedy)")
    parser.add_argument("--format", default="txt,srt,vtt,json", help="comma-separated: txt, srt, vtt, json")
    parser.add_argument("--out", type=Path, help="output folder (default: beside each video)")
    parser.add_argument("--burn", type=Path,
                        help="write the video with subtitles drawn in: OUT.mp4 or OUT.gif (one video), or a folder")


def _burn_target(burn: Path, video: Path, several: bool) -> Path:
    if burn.suffix.lower() in (".mp4", ".gif"):
        return burn
    return burn / f"{video.stem}.subtitled.mp4"


def run(args) -> int:
    """Transcribe every video; a failing one is reported and the rest carry on. Exit 0 all done, 1 some failed."""
    from lipnet_ko.video.mouth import NoFaceError
    from lipnet_ko.video.reader import VideoError

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        print(f"error: unknown --format {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    if args.burn and args.burn.suffix.lower() in (".mp4", ".gif") and len(args.videos) > 1:
        print("error: --burn FILE takes one video; pass a folder to --burn for several", file=sys.stderr)
        return 2
    if args.burn and args.burn.suffix and args.burn.suffix.lower() not in (".mp4", ".gif"):
        print(f"error: --burn writes .mp4 or .gif, not {args.burn.suffix}", file=sys.stderr)
        return 2
    try:
        recognizer = _recognizer(args.model)
        options = TranscribeOptions(beam_width=args.beam, lm=None if args.no_lm else (args.lm or "default"))
        lm = _language_model(options, recognizer.tokenizer)
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = []
    for video in args.videos:
        try:
            transcript = transcribe(video, recognizer, options, lm=lm)
            out_dir = args.out or video.parent
            written = write_transcript(transcript, out_dir, video.stem, formats)
            if args.burn:
                target = _burn_target(args.burn, video, len(args.videos) > 1)
                target.parent.mkdir(parents=True, exist_ok=True)
                written["burn"] = burn_subtitles(video, transcript, target)
        except (VideoError, NoFaceError, ValueError, OSError) as error:
            failed.append(video)
            print(f"{video}: failed: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        print(f"{video}: {len(transcript.segments)} segment(s): {transcript.text}")
        for kind, path in written.items():
            print(f"  {kind}: {path}")
    done = len(args.videos) - len(failed)
    print(f"{done} of {len(args.videos)} video(s) transcribed" + (f"; {len(failed)} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
