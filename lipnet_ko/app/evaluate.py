"""``lipnet-ko evaluate``: a saved model on a corpus -> corpus figures and a report (JSON, Markdown, confusion heatmaps).

The scoring itself is ``lipnet_ko.training.evaluation``; this module picks the clips (a run's own test splits
or a whole corpus), runs the decoders and writes the report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from lipnet_ko.app.report import Utterance
from lipnet_ko.data.batching import Example
from lipnet_ko.decode.search import DecodingOptions
from lipnet_ko.training.evaluation import evaluate, standard_decoders
from lipnet_ko.training.run_data import EVAL_SPLITS, corpus_examples, prepare_data

logger = logging.getLogger(__name__)


def examples_for(recognizer, run_config, spec: str | None, progress: bool = True) -> dict[str, list[Example]]:
    """Test examples per split.

    Without ``spec`` (or with the run's own spec), the run's saved splits (``seen``, ``unseen``,
    ``free``) are rebuilt through ``lipnet_ko.training.run_data.prepare_data`` (cached crops are reused). Another spec
    is evaluated whole, as split ``all``, cropped with the model's own preprocessing config.
    """
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
    results, utterances = {}, []
    for split, examples in splits.items():
        result = evaluate(recognizer, examples, decoders)
        results[split] = result
        for i, example in enumerate(examples):
            clip_id = example.clip_id or f"{split}-{i}"
            utterances.append(Utterance(clip_id, example.text, {name: texts[i] for name, texts in result.hypotheses.items()},
                                        speaker=example.speaker or None, split=split))
    return results, utterances


def configure_parser(parser) -> None:
    parser.add_argument("--model", help="run folder or export (default runs/latest)")
    parser.add_argument("--data", help="corpus spec (aihub:DIR, grid:DIR, manifest:FILE, synthetic:DIR); "
                                       "default: the run's own test splits")
    parser.add_argument("--lm", help="ARPA jamo LM for beam + LM (default: the shipped one)")
    parser.add_argument("--beam", type=int, default=32, help="beam width")
    parser.add_argument("--report", required=True, help="output folder for report.json, report.md and confusion PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    """Decode the test data with greedy, beam and beam + LM; write the report; print corpus figures."""
    import sys
    from pathlib import Path

    from lipnet_ko.model.inference import load_recognizer
    from lipnet_ko.model.run_folder import RunFolder
    from lipnet_ko.app.report import build_report, jamo_confusions, viseme_confusions, write_report
    from lipnet_ko.text.tokenizer import JamoTokenizer

    try:
        recognizer = load_recognizer(args.model)
        run_config = None
        config_path = RunFolder(recognizer.source.parent).config_json  # a run's TrainConfig, beside its model.keras
        if config_path.exists():
            from lipnet_ko.training.config import TrainConfig

            run_config = TrainConfig.from_json(config_path)
        lm = None
        if isinstance(recognizer.tokenizer, JamoTokenizer):
            from lipnet_ko.decode.lm import NGramLM, load_default_lm

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
