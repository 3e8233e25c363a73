"""Train a Korean lipreading model: `python train.py` (the open-vocabulary synthetic default, about 30 minutes on 2 cores).

Without arguments: generate (or reuse) the synthetic corpus (v4: sentences of real Korean text spoken by
synthetic speakers built on several face photographs, rendered straight to mouth crops; about 15 minutes the
first time), train the CPU preset for the time budget, evaluate on unseen_sentences (training identities,
sentences never seen) and unseen_speakers (identities from photos never used in training, sentences never
seen) with greedy, beam and beam + LM decoding, print the oracle floor (the same decoders on perfect-viseme
logits of the same sentences) beside them, and save everything under runs/<date-time>/ (runs/latest points
to it). Other data: --data aihub:DIR | grid:DIR | crops:DIR | manifest:FILE | synthetic:DIR; each kind
brings its own defaults where it needs them (lipnet_ko.training.recipes: grid: the letter tokenizer and
GRID's grammar LM; crops: a short few-clip recipe), and any flag overrides them.

Fine-tuning: --init RUN starts from the weights of a trained run (its folder, its model.keras or a keras
export; same tokenizer and network), and --freeze-frontend-epochs N keeps its STCNN fixed for the first N
epochs while the GRUs adapt.

Generated data (the synthetic corpus and its crop cache, e.g. data/synth/default-v4) goes to the data
folder: --data-dir, else $LIPNET_KO_DATA_DIR, else data/ in the working directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import lipnet_ko  # noqa: F401  (sets the oneDNN switch before TensorFlow loads)
from lipnet_ko.files import DATA_DIR_ENV
from lipnet_ko.model.run_folder import RunFolder
from lipnet_ko.training.config import SCHEDULES, STRATEGIES, TrainConfig
from lipnet_ko.training.recipes import apply_recipe
from lipnet_ko.training.trainer import default_run_dir, format_metrics, train

FLAGS = {  # flag -> (TrainConfig field, type); data.* fields live in DataConfig
    "--data": ("data.spec", str),
    "--tokenizer": ("data.tokenizer", str),
    "--cache-dir": ("data.cache_dir", str),
    "--data-dir": ("data.data_dir", str),
    "--preset": ("preset", str),
    "--batch-size": ("batch_size", int),
    "--epochs": ("epochs", int),
    "--learning-rate": ("learning_rate", float),
    "--schedule": ("schedule", str),
    "--max-minutes": ("max_minutes", float),
    "--curriculum-epochs": ("curriculum_epochs", int),
    "--strategy": ("strategy", str),
    "--seed": ("seed", int),
    "--init": ("init_from", str),
    "--freeze-frontend-epochs": ("freeze_frontend_epochs", int),
}
HELP = {  # flags whose help says more than the field's name
    "--data-dir": f"folder for generated data (synthetic corpora, crop caches); default ${DATA_DIR_ENV}, else data/ "
                  "in the working directory (TrainConfig.data.data_dir)",
    "--init": "fine-tune: start from the weights of this trained run (its folder, its model.keras or a keras export), "
              "which must have the same tokenizer and network (TrainConfig.init_from)",
    "--freeze-frontend-epochs": "with --init: keep the STCNN frontend fixed for the first N epochs, then train it too "
                                "(TrainConfig.freeze_frontend_epochs)",
}
METAVARS = {"--init": "RUN", "--freeze-frontend-epochs": "N"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--config", type=Path, help="a TrainConfig JSON (e.g. a run's config.json); flags override it")
    for flag, (name, kind) in FLAGS.items():
        choices = {"--schedule": SCHEDULES, "--strategy": STRATEGIES, "--tokenizer": ("jamo", "char")}.get(flag)
        parser.add_argument(flag, type=kind, choices=choices, metavar=METAVARS.get(flag),
                            help=HELP.get(flag, f"TrainConfig.{name}"))
    parser.add_argument("--no-time-limit", action="store_true", help="train all --epochs, whatever the time")
    parser.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    parser.add_argument("--run-dir", type=Path, help="run folder (default runs/<date-time>; runs/latest points to the newest)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir (or runs/latest) from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    config = TrainConfig.from_json(args.config) if args.config else TrainConfig()
    top, data = {}, {}
    for flag, (name, _) in FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            (data if name.startswith("data.") else top)[name.removeprefix("data.")] = value
    if args.no_time_limit:
        top["max_minutes"] = None
    if args.no_augment:
        top["augment"] = None
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, **data), **top)
    if args.config:  # a saved config is complete: its corpus's recipe was applied when it was made
        return config
    given = {f"data.{k}" for k in data} | set(top)
    return apply_recipe(config, given)  # the corpus kind's defaults (grid: letters, crops: few-clip fine-tuning)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        config = config_from_args(args)
        run_dir = args.run_dir or (RunFolder.latest().path if args.resume else default_run_dir())
        result = train(config, run_dir.resolve() if args.resume else run_dir, resume=args.resume, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: continue with `python train.py --resume --run-dir RUN`", file=sys.stderr)
        return 130
    print(f"\nrun folder: {result.run_dir}\n{format_metrics(result.metrics)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
