"""The ``lipnet-ko`` command line: a thin dispatcher over the library.

Each subcommand lives in the module that owns its stage and exposes two functions,
``configure_parser(parser)`` and ``run(args) -> int`` (the exit code). The module is imported only
when its subcommand is chosen, so ``lipnet-ko --help`` stays fast and does not load TensorFlow or dlib.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lipnet_ko import __version__

# name -> (module, one-line help). Add a row here when a stage gains a command.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "preprocess": ("lipnet_ko.data.crops", "turn videos into mouth-crop .npz files"),
    "lm": ("lipnet_ko.decode.lm", "build or inspect an n-gram language model (ARPA)"),
    "normalize": ("lipnet_ko.text.normalize", "normalise Korean transcripts the way labels and metrics see them"),
    "score": ("lipnet_ko.text.metrics", "compute CER, jamo CER, WER, space-normalised WER and BLEU for text files"),
    "data": ("lipnet_ko.data.corpora", "inspect a corpus (aihub:DIR, grid:DIR, manifest:FILE) or write a train/test split"),
    "synth": ("lipnet_ko.synth.corpus", "generate the synthetic Korean speaking-face corpus (AIHub layout)"),
    "transcribe": (
        "lipnet_ko.app.transcribe",
        "turn silent videos into Korean text and subtitles (txt, srt, vtt, json, burned-in video)",
    ),
    "evaluate": ("lipnet_ko.app.evaluate", "score a trained model on a corpus: CER/WER/BLEU report with confusion plots"),
    "export": ("lipnet_ko.model.export", "export a trained run as a Keras, SavedModel or TFLite folder"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<12} {help_}" for name, (_, help_) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="lipnet-ko",
        description="Korean lipreading toolkit.",
        epilog=f"commands:\n{lines}\n\nRun 'lipnet-ko COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lipnet-ko {__version__}")
    parser.add_argument("command", nargs="?", choices=sorted(SUBCOMMANDS), metavar="COMMAND", help="one of the commands below")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0].startswith("-"):
        top.parse_args(argv)  # handles --help / --version, or errors on unknown options
        top.print_help()
        return 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        top.error(f"unknown command {name!r}; choose from {', '.join(SUBCOMMANDS)}")
    module_name, help_ = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"lipnet-ko {name}", description=help_)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    module.configure_parser(parser)
    args = parser.parse_args(rest)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(module.run(args) or 0)
