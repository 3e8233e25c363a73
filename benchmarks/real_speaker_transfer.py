"""Does synthetic pretraining help a real face? Zero-shot, from scratch and fine-tuned, on one real speaker's clips.

Issue 19's experiment on ``crops:DIR`` (default ``../shared/data/korean-speaker``, 27 clips of one real Korean
speaker). The clips are dealt into ``--folds`` folds by a hash of their sentence (each sentence is in one fold
only, so every test sentence is one the training never saw); each fold in turn is the test set and the other
folds the training clips (``--val`` of them held out to pick the checkpoint), or with ``--few`` the reverse,
one fold to train on and the others to test (the low-data case):

- (a) zero-shot: ``--model`` (a run trained on the synthetic default) as it is;
- (b) scratch: the same network trained from random weights on the training clips, ``--minutes`` of training;
- (c) fine-tuned: the same, started from ``--model``'s weights (``TrainConfig.init_from``), the same budget.

Every condition is scored on the fold's test clips with the same decoders: greedy, beam, beam + the default LM,
and beam with a lexicon of the training clips' words (a closed vocabulary, as the speaker's grammar is). The
figures are pooled over folds (edit distances summed over all clips); per-fold figures are in ``--out``.
Training uses the ``crops:`` recipe (``lipnet_ko.training.recipes``) except for the budget and split.

    .venv/bin/python benchmarks/real_speaker_transfer.py --model runs/v4-c --minutes 4 --out /tmp/transfer.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path

import lipnet_ko  # noqa: F401  (sets TensorFlow's CPU options first)
from lipnet_ko.decoding.lexicon import Lexicon
from lipnet_ko.decoding.lm import default_lm_for
from lipnet_ko.decoding.search import DecodingOptions
from lipnet_ko.model.inference import load_recognizer
from lipnet_ko.text.metrics import score_corpus
from lipnet_ko.training.config import TrainConfig
from lipnet_ko.training.evaluation import evaluate, score_dict, standard_decoders
from lipnet_ko.training.recipes import apply_recipe
from lipnet_ko.training.run_data import DataConfig, RunData, corpus_examples
from lipnet_ko.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "korean-speaker"
CONDITIONS = ("zero_shot", "scratch", "fine_tuned")


def folds_by_sentence(examples, folds: int) -> list[list]:
    """Examples dealt round-robin into ``folds`` folds in the order of a hash of their sentence (one sentence, one fold)."""
    texts = sorted({e.text for e in examples}, key=lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())
    fold_of = {text: i % folds for i, text in enumerate(texts)}
    return [[e for e in examples if fold_of[e.text] == k] for k in range(folds)]


def decoders_for(recognizer, train_examples, beam: int) -> dict[str, DecodingOptions]:
    decoders = standard_decoders(beam, default_lm_for(recognizer.tokenizer))
    words = {w for e in train_examples for w in e.text.split()}
    decoders["beam_lexicon"] = DecodingOptions(beam_width=beam, lexicon=Lexicon(words, recognizer.tokenizer))
    return decoders


def score(recognizer, train_examples, test_examples, beam: int) -> dict:
    result = evaluate(recognizer, test_examples, decoders_for(recognizer, train_examples, beam))
    return {"references": result.references, "hypotheses": result.hypotheses,
            "scores": {name: score_dict(s) for name, s in result.scores.items()}}  # fmt: skip


def pooled(per_fold: list[dict]) -> dict:
    """Corpus figures over the clips of every fold together."""
    references = [r for fold in per_fold for r in fold["references"]]
    out = {}
    for name in per_fold[0]["hypotheses"]:
        hypotheses = [h for fold in per_fold for h in fold["hypotheses"][name]]
        out[name] = score_dict(score_corpus(references, hypotheses))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"crops:{DEFAULT_DATA}", help="the real speaker's clips (default %(default)s)")
    parser.add_argument("--model", required=True, help="a run trained on the synthetic default (its folder)")
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget of (b) and (c), each fold")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--val", type=int, default=3, help="training clips held out per fold to pick the checkpoint")
    parser.add_argument("--few", action="store_true",
                        help="the low-data case: train on one fold, test on all the others (instead of the reverse)")
    parser.add_argument("--freeze-frontend-epochs", type=int, default=0, help="(c): epochs with the STCNN frozen")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), help="which to run")
    parser.add_argument("--beam", type=int, default=32)
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary folder)")
    parser.add_argument("--out", type=Path, required=True, help="JSON of every figure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    pretrained = load_recognizer(args.model)
    examples, skipped = corpus_examples(args.data, pretrained.tokenizer, pretrained.preprocess, progress=False)
    if skipped:
        print(f"skipped {len(skipped)} clips: {skipped[:3]}")
    folds = folds_by_sentence(examples, args.folds)
    work = args.work or Path(tempfile.mkdtemp(prefix="transfer-"))
    base = TrainConfig.from_json(Path(args.model) / "config.json")
    results: dict[str, list[dict]] = {name: [] for name in args.conditions}
    seconds: dict[str, float] = {"scratch": 0.0, "fine_tuned": 0.0}
    for k, held in enumerate(folds):
        others = [e for j, fold in enumerate(folds) if j != k for e in fold]
        rest, test = (held, others) if args.few else (others, held)
        val, fit = rest[: args.val], rest[args.val :]
        print(f"fold {k + 1}/{args.folds}: {len(fit)} training, {len(val)} val, {len(test)} test clips", flush=True)
        if "zero_shot" in results:
            results["zero_shot"].append(score(pretrained, rest, test, args.beam))
        for name, init in (("scratch", None), ("fine_tuned", str(args.model))):
            if name not in results:
                continue
            config = apply_recipe(TrainConfig(data=DataConfig(spec=args.data, tokenizer=base.data.tokenizer),
                                              preset=base.preset, model=base.model))  # fmt: skip
            config = dataclasses.replace(config, max_minutes=args.minutes, epochs=10_000, init_from=init,
                                         freeze_frontend_epochs=args.freeze_frontend_epochs if init else 0)  # fmt: skip
            data = RunData({"train": fit, "val": val, "seen": test}, {"train": [e.clip_id for e in fit],
                           "val": [e.clip_id for e in val], "seen": [e.clip_id for e in test]}, [], args.data)  # fmt: skip
            t0 = time.perf_counter()
            run = train(config, work / f"fold{k + 1}-{name}", progress=False, data=data)
            seconds[name] += time.perf_counter() - t0
            results[name].append(score(load_recognizer(run.run_dir), rest, test, args.beam))
        for name, per_fold in results.items():
            s = per_fold[-1]["scores"]
            print(f"  {name:<11} " + "  ".join(f"{d} {v['syllable_cer']:.1%}/{v['wer']:.1%}" for d, v in s.items()), flush=True)
    summary = {name: pooled(per_fold) for name, per_fold in results.items()}
    print("\npooled over folds (syllable CER / WER):")
    for name, s in summary.items():
        print(f"  {name:<11} " + "  ".join(f"{d} {v['syllable_cer']:.1%}/{v['wer']:.1%}" for d, v in s.items()))
    payload = {"data": args.data, "model": str(args.model), "minutes": args.minutes, "folds": args.folds, "val": args.val,
               "few": args.few,
               "freeze_frontend_epochs": args.freeze_frontend_epochs, "pooled": summary, "per_fold": results,
               "training_seconds": {k: round(v, 1) for k, v in seconds.items()}}  # fmt: skip
    args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
