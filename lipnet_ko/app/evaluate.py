"""``lipnet-ko evaluate``: a saved model on a corpus -> corpus figures and a report (JSON, Markdown, confusion heatmaps).

The scoring itself is ``lipnet_ko.training.evaluation``; this module picks the clips (a run's own test splits
or a whole corpus), runs the decoders and writes the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lipnet_ko.app.report import Utterance
from lipnet_ko.data.batching import Example
from lipnet_ko.decoding.search import DecodingOptions
from lipnet_ko.training.evaluation import evaluate, standard_decoders
from lipnet_ko.training.run_data import EVAL_SPLITS, corpus_examples, prepare_data


def examples_for(recognizer, run_config, spec: str | None, progress: bool = True) -> tuple[dict[str, list[Example]], list[dict]]:
    """Test examples per split, and the test clips left out.

    Without ``spec`` (or with the run's own spec), the run's saved test splits (``unseen_sentences``,
    ``unseen_speakers`` for the synthetic default; ``seen``, ``unseen`` for other corpora) are rebuilt through
    ``lipnet_ko.training.run_data.prepare_data`` (cached crops are reused). Another spec is evaluated whole, as
    split ``all``, cropped with the model's own preprocessing config.

    Returns:
        ``({split: [Example]}, skipped)``: ``skipped`` holds one ``{"clip_id", "reason"}`` (and ``"split"``
        where known) per test clip that could not be scored: it failed cropping or loading or, for a whole
        corpus, its file or label entry was skipped by the scan (``clip_id`` is then that path). For a run's
        own splits, only clips of the evaluated splits count (not training clips, nor files the scan skipped
        before the corpus was split).
    """
    if run_config is not None and (spec is None or spec in (run_config.data.spec, "synthetic")):
        data = prepare_data(run_config.data, recognizer.tokenizer, recognizer.preprocess, progress=progress)
        splits = {name: data.splits[name] for name in EVAL_SPLITS if data.splits.get(name)}
        skipped = [_skipped_item(item, item["split"]) for item in data.skipped if item.get("split") in EVAL_SPLITS]
        return splits, skipped
    if spec is None:
        raise ValueError("--data SPEC is needed: the model has no training run beside it to take splits from")
    examples, skipped = corpus_examples(spec, recognizer.tokenizer, recognizer.preprocess, progress=progress)
    return {"all": examples}, [_skipped_item(item, "all") for item in skipped]


def _skipped_item(item: dict, split: str) -> dict:
    """A skipped entry of run_data -> the report's ``{"clip_id", "split", "reason"}``."""
    return {"clip_id": str(item.get("clip_id") or item.get("path")), "split": split, "reason": str(item["reason"])}


def _read_lm(path: str):
    """``--lm FILE`` -> NGramLM; a missing or unreadable file is a ValueError that names the flag and the file."""
    from lipnet_ko.decoding.lm import NGramLM

    try:
        return NGramLM.read_arpa(path)
    except (OSError, ValueError) as error:  # FileNotFoundError, ARPAError (a ValueError), a directory, ...
        raise ValueError(f"cannot read the language model given by --lm: {error}") from None


def _skipped_summary(scored: int, skipped: Sequence[dict], limit: int = 5) -> str:
    """``"N clips scored, M skipped: id1, id2, ... (reasons below and in the report)"``."""
    line = f"{scored} clips scored, {len(skipped)} skipped"
    if not skipped:
        return line
    names = ", ".join(item["clip_id"] for item in skipped[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"{line}: {names}{more} (reasons below and in the report)"


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
    parser.add_argument("--data", help="corpus spec (aihub:DIR, grid:DIR, crops:DIR, manifest:FILE, synthetic:DIR); "
                                       "default: the run's own test splits")
    parser.add_argument("--lm", help="ARPA LM (plain or .gz) for beam + LM, over the model's units "
                                     "(default: the shipped jamo LM for a jamo model, none otherwise)")
    parser.add_argument("--beam", type=int, default=32, help="beam width")
    parser.add_argument("--report", required=True, help="output folder for report.json, report.md and confusion PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.epilog = ("Exit status: 0 when every test clip was scored; 1 when some were skipped (each is listed, "
                     "and the report covers the others); 2 when nothing was scored (bad options, an unreadable "
                     "model, LM or corpus, or no clip left).")


def run(args) -> int:
    """Decode the test data with greedy, beam and beam + LM; write the report; print corpus figures.

    Exit status: 0, or 1 when clips were skipped (the report is still written), or 2 when nothing was scored.
    """
    import sys
    from pathlib import Path

    from lipnet_ko.model.inference import load_recognizer
    from lipnet_ko.model.run_folder import RunFolder
    from lipnet_ko.app.report import build_report, jamo_confusions, viseme_confusions, write_report
    from lipnet_ko.text.tokenizer import JamoTokenizer

    report_dir = Path(args.report)
    try:
        if report_dir.exists() and not report_dir.is_dir():
            raise ValueError(f"--report {report_dir} exists and is not a folder")
        if args.beam < 2:
            raise ValueError(f"--beam must be at least 2 (width 1 is greedy decoding, reported anyway), got {args.beam}")
        lm = _read_lm(args.lm) if args.lm else None  # before the model: a bad --lm fails at once
        lm_source = args.lm
        recognizer = load_recognizer(args.model)
        run_config = None
        config_path = RunFolder(recognizer.source.parent).config_json  # a run's TrainConfig, beside its model.keras
        if config_path.exists():
            from lipnet_ko.training.config import TrainConfig

            run_config = TrainConfig.from_json(config_path)
        if lm is not None:
            try:
                lm.check_tokenizer(recognizer.tokenizer)
            except ValueError as error:
                raise ValueError(f"--lm {args.lm} does not fit the model: {error}") from None
        else:
            from lipnet_ko.decoding.lm import default_lm_for, default_lm_path

            shipped = default_lm_path(recognizer.tokenizer)  # None for a letter (GRID) model: no LM
            lm, lm_source = default_lm_for(recognizer.tokenizer), shipped and str(shipped)
        decoders = standard_decoders(args.beam, lm)
        splits, skipped = examples_for(recognizer, run_config, args.data, progress=not args.quiet)
        if not any(splits.values()):
            for item in skipped:
                print(f"  skipped {item['clip_id']}: {item['reason']}", file=sys.stderr)
            raise ValueError(f"no test clip could be scored ({len(skipped)} skipped, listed above)")
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    splits = {name: examples for name, examples in splits.items() if examples}
    results, utterances = evaluate_splits(recognizer, splits, decoders)
    for split, result in results.items():
        print(f"{split}: {len(result.references)} clips")
        for name, scores in result.scores.items():
            print(f"  {name:<8} syllable CER {scores.cer:7.2%}  jamo CER {scores.jamo_cer:7.2%}  "
                  f"viseme CER {scores.viseme_cer:7.2%}  WER {scores.wer:7.2%}  "
                  f"sWER {scores.swer:7.2%}  BLEU {scores.bleu:5.1f}")
    # The decoders are the report's own "decoders" keys, so they are not repeated in meta.
    meta = {"model": str(recognizer.source), "data": args.data or (run_config.data.spec if run_config else None),
            "splits": {k: len(v) for k, v in splits.items()}, "beam_width": args.beam,
            "lm": lm_source}
    report = build_report(utterances, title="lipnet-ko evaluation", meta=meta, skipped=skipped)
    confusions = {}
    if isinstance(recognizer.tokenizer, JamoTokenizer):
        last = list(decoders)[-1]
        pairs = [(u.reference, u.hypotheses[last]) for u in utterances]
        labels, matrix = jamo_confusions(pairs, recognizer.tokenizer)
        confusions[f"jamo_confusions_{last}"] = (labels, matrix)
        confusions[f"viseme_confusions_{last}"] = viseme_confusions(labels, matrix)
    try:
        paths = write_report(report, report_dir, confusions=confusions)
    except OSError as error:
        print(f"error: cannot write the report to {report_dir}: {error.strerror or error}", file=sys.stderr)
        return 2
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    print(_skipped_summary(len(utterances), skipped))
    for item in skipped:
        print(f"  skipped {item['clip_id']}: {item['reason']}")
    return 1 if skipped else 0
