"""Model outputs -> decoded text -> corpus figures, for a list of preprocessed examples.

Used by training (validation each epoch, final metrics) and by ``lipnet-ko evaluate``. The model is
anything callable as ``model((crops, crop_lengths))`` returning logits ``[B, T, V]``; crops are fed
as float32 in [0, 1] (the model also takes the uint8 batches the training pipeline makes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lipnet_ko.data import Example
from lipnet_ko.decoding import DecodingOptions, decode
from lipnet_ko.metrics import Scores, score_corpus
from lipnet_ko.model import TEMPORAL_STRIDE

logger = logging.getLogger(__name__)


def _batches(examples: Sequence[Example], batch_size: int):
    """Index batches in length order (less padding), each padded to its longest clip."""
    order = sorted(range(len(examples)), key=lambda i: examples[i].num_frames)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        clips = [examples[i].load() for i in indices]
        lengths = np.array([len(c) for c in clips], dtype=np.int32)
        crops = np.zeros((len(clips), lengths.max(), *clips[0].shape[1:]), dtype=np.float32)
        for row, clip in enumerate(clips):
            np.multiply(clip, np.float32(1 / 255), out=crops[row, : len(clip)], casting="unsafe")
        yield indices, crops, lengths


def predict_logits(predict, examples: Sequence[Example], batch_size: int = 16) -> list[np.ndarray]:
    """Per-clip logits ``[T_i, V]`` (padding removed), in the order of ``examples``.

    ``predict`` maps ``(crops, crop_lengths)`` to logits, e.g. ``model.predict_on_batch``.
    """
    out: list[np.ndarray | None] = [None] * len(examples)
    for indices, crops, lengths in _batches(examples, batch_size):
        logits = np.asarray(predict((crops, lengths)))
        for row, index in enumerate(indices):
            out[index] = logits[row, : lengths[row] // TEMPORAL_STRIDE]
    return out  # type: ignore[return-value]


def decode_logits(logits: Sequence[np.ndarray], tokenizer, options: DecodingOptions) -> list[str]:
    """Texts for per-clip logits (one clip at a time: beam search is per utterance anyway)."""
    texts = []
    for item in logits:
        result = decode(item[None], np.array([len(item)]), tokenizer, options)[0]
        texts.append(result.text)
    return texts


@dataclass
class Evaluation:
    """Decoded texts and corpus figures of one set of examples under several decoders."""

    references: list[str]
    hypotheses: dict[str, list[str]]  # decoder name -> texts
    scores: dict[str, Scores]
    seconds: dict[str, float] = field(default_factory=dict)  # "model" and each decoder

    def to_dict(self) -> dict:
        """``{decoder: {syllable_cer, jamo_cer, wer, swer, bleu, utterances}}``."""
        return {
            name: {
                "syllable_cer": round(s.cer, 5),
                "jamo_cer": round(s.jamo_cer, 5),
                "wer": round(s.wer, 5),
                "swer": round(s.swer, 5),
                "bleu": round(s.bleu, 3),
                "utterances": s.utterances,
            }
            for name, s in self.scores.items()
        }


def evaluate(
    predict,
    examples: Sequence[Example],
    tokenizer,
    decoders: Mapping[str, DecodingOptions],
    *,
    batch_size: int = 16,
    logits: Sequence[np.ndarray] | None = None,
) -> Evaluation:
    """Runs the model once and every decoder on its logits; scores against the examples' texts."""
    seconds = {}
    if logits is None:
        t0 = time.perf_counter()
        logits = predict_logits(predict, examples, batch_size)
        seconds["model"] = time.perf_counter() - t0
    references = [e.text for e in examples]
    hypotheses, scores = {}, {}
    for name, options in decoders.items():
        t0 = time.perf_counter()
        hypotheses[name] = decode_logits(logits, tokenizer, options)
        seconds[name] = time.perf_counter() - t0
        scores[name] = score_corpus(references, hypotheses[name])
    return Evaluation(references, hypotheses, scores, {k: round(v, 3) for k, v in seconds.items()})


def standard_decoders(beam_width: int = 32, lm=None, lm_weight: float | None = None) -> dict[str, DecodingOptions]:
    """``greedy``, ``beam`` (Hangul-constrained, no LM) and, with an LM, ``beam_lm``."""
    decoders = {"greedy": DecodingOptions(beam_width=1), "beam": DecodingOptions(beam_width=beam_width)}
    if lm is not None:
        extra = {} if lm_weight is None else {"lm_weight": lm_weight}
        decoders["beam_lm"] = DecodingOptions(beam_width=beam_width, lm=lm, **extra)
    return decoders


# ---------------------------------------------------------------------------------------------------
# `lipnet-ko evaluate`: a saved model on a corpus -> report (JSON, Markdown, confusion heatmaps)


def examples_for(recognizer, run_config, spec: str | None, progress: bool = True) -> dict[str, list[Example]]:
    """Test examples per split.

    Without ``spec`` (or with the run's own spec), the run's saved splits (``seen``, ``unseen``,
    ``free``) are rebuilt through ``training_data.prepare_data`` (cached crops are reused). Another spec
    is evaluated whole, as split ``all``, cropped with the model's own preprocessing config.
    """
    from lipnet_ko.training_data import EVAL_SPLITS, corpus_examples, prepare_data

    if run_config is not None and (spec is None or spec in (run_config.data.spec, "synthetic")):
        data = prepare_data(run_config.data, recognizer.tokenizer, recognizer.preprocess, progress=progress)
        return {name: data.splits[name] for name in EVAL_SPLITS if data.splits.get(name)}
    if spec is None:
        raise ValueError("--data SPEC is needed: the model has no training run beside it to take splits from")
    examples, skipped = corpus_examples(spec, recognizer.tokenizer, recognizer.preprocess, progress=progress)
    for item in skipped:
        logger.warning("skipped %s", item)
    return {"all": examples}


def evaluate_splits(recognizer, splits: Mapping[str, Sequence[Example]], decoders: Mapping[str, DecodingOptions]):
    """Decode every split with every decoder: ``({split: Evaluation}, [report.Utterance])``."""
    from lipnet_ko.report import Utterance

    results, utterances = {}, []
    for split, examples in splits.items():
        logits = recognizer.logits([e.load() for e in examples])
        result = evaluate(None, examples, recognizer.tokenizer, decoders, logits=logits)
        results[split] = result
        for i, example in enumerate(examples):
            clip_id = example.clip_id or f"{split}-{i}"
            utterances.append(Utterance(clip_id, example.text, {name: texts[i] for name, texts in result.hypotheses.items()},
                                        speaker=example.speaker or None, split=split))
    return results, utterances


def configure_parser(parser) -> None:
    parser.add_argument("--model", help="run folder or export (default runs/latest)")
    parser.add_argument("--data", help="corpus spec (aihub:DIR, grid:DIR, manifest:FILE, synthetic:DIR); default: the run's own test splits")
    parser.add_argument("--lm", help="ARPA jamo LM for beam + LM (default: the shipped one)")
    parser.add_argument("--beam", type=int, default=32, help="beam width")
    parser.add_argument("--report", required=True, help="output folder for report.json, report.md and confusion PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    """Decode the test data with greedy, beam and beam + LM; write the report; print corpus figures."""
    import sys
    from pathlib import Path

    from lipnet_ko.inference import load_recognizer
    from lipnet_ko.report import build_report, jamo_confusions, viseme_confusions, write_report
    from lipnet_ko.tokenizer import JamoTokenizer

    try:
        recognizer = load_recognizer(args.model)
        run_config = None
        config_path = recognizer.source.parent / "config.json"
        if config_path.exists():
            from lipnet_ko.training import TrainConfig

            run_config = TrainConfig.from_json(config_path)
        lm = None
        if isinstance(recognizer.tokenizer, JamoTokenizer):
            from lipnet_ko.lm import NGramLM, load_default_lm

            lm = NGramLM.read(args.lm) if args.lm else load_default_lm()
        splits = examples_for(recognizer, run_config, args.data, progress=not args.quiet)
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    decoders = standard_decoders(args.beam, lm)
    results, utterances = evaluate_splits(recognizer, splits, decoders)
    for split, result in results.items():
        print(f"{split}: {len(result.references)} clips")
        for name, scores in result.scores.items():
            print(f"  {name:<8} syllable CER {scores.cer:7.2%}  jamo CER {scores.jamo_cer:7.2%}  WER {scores.wer:7.2%}  "
                  f"sWER {scores.swer:7.2%}  BLEU {scores.bleu:5.1f}")
    meta = {"model": str(recognizer.source), "data": args.data or (run_config.data.spec if run_config else None),
            "splits": {k: len(v) for k, v in splits.items()}, "decoders": list(decoders), "beam_width": args.beam}
    report = build_report(utterances, title="lipnet-ko evaluation", meta=meta)
    confusions = {}
    if isinstance(recognizer.tokenizer, JamoTokenizer):
        last = list(decoders)[-1]
        pairs = [(u.reference, u.hypotheses[last]) for u in utterances]
        labels, matrix = jamo_confusions(pairs, recognizer.tokenizer)
        confusions[f"jamo_confusions_{last}"] = (labels, matrix)
        confusions[f"viseme_confusions_{last}"] = viseme_confusions(labels, matrix)
    paths = write_report(report, Path(args.report), confusions=confusions)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
