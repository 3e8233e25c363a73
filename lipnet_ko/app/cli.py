"""The ``lipnet-ko`` command line: a thin dispatcher over the library.

Each subcommand lives in the module that owns its stage and exposes two functions,
``configure_parser(parser)`` and ``run(args) -> int`` (the exit code). The module is imported only
when its subcommand is chosen, so ``lipnet-ko --help`` stays fast and does not load TensorFlow or dlib;
``lipnet-ko COMMAND --help`` imports that one module, which must not import TensorFlow at its top.

The dispatcher also owns what the process looks like to the user: TensorFlow's C++ start-up log is
turned down before TensorFlow loads (``TF_CPP_MIN_LOG_LEVEL``, unless set or ``-v``), and
:func:`quiet_native_logs` drops the start-up lines TensorFlow prints anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
from typing import Iterator

from lipnet_ko import __version__

# name -> (module, one-line help). Add a row here when a stage gains a command.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "preprocess": ("lipnet_ko.data.crops", "turn videos into mouth-crop .npz files"),
    "text": ("lipnet_ko.text.sentence_pool", "build the open Korean sentence pool (splits, LM text) from installed packages"),
    "lm": ("lipnet_ko.decoding.lm", "build or inspect an n-gram language model (ARPA)"),
    "normalize": ("lipnet_ko.text.normalize", "normalise Korean transcripts the way labels and metrics see them"),
    "score": ("lipnet_ko.text.metrics", "compute CER, jamo CER, WER, space-normalised WER and BLEU for text files"),
    "data": (
        "lipnet_ko.data.corpora",
        "inspect a corpus (aihub:DIR, grid:DIR, crops:DIR, manifest:FILE) or write a train/test split",
    ),
    "synth": ("lipnet_ko.synth.corpus", "generate the synthetic Korean speaking-face corpus (AIHub layout)"),
    "transcribe": (
        "lipnet_ko.app.transcribe",
        "turn silent videos into Korean text and subtitles (txt, srt, vtt, json, burned-in video)",
    ),
    "evaluate": ("lipnet_ko.app.evaluate", "score a trained model on a corpus: CER/WER/BLEU report with confusion plots"),
    "export": ("lipnet_ko.model.export", "export a trained run as a Keras, SavedModel or TFLite folder"),
}

EXIT_STATUS = """\
exit status (every command):
  0  everything succeeded
  1  the command ran, but at least one item (a clip, video or file) failed: each failure is reported
     on stderr as it happens, the other items are still done, and a summary ends the run
  2  nothing was done: bad usage or options, unreadable inputs, model or config
Errors are one 'error: ...' line on stderr; -v adds debug logs (and TensorFlow's own start-up log)."""

TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"  # TensorFlow's C++ log threshold: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR
QUIET_TF_LOG_LEVEL = "2"

# Lines TensorFlow writes straight to file descriptor 2 while it starts, whatever TF_CPP_MIN_LOG_LEVEL says (the
# XLA/TSL code logs through absl before absl::InitializeLog() runs): the absl banner, INFO/WARNING lines, and
# the errors that only mean "this machine has no GPU" or "no oneDNN kernel for that dtype". Other lines are kept.
_ABSL_LINE = r"\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "  # after the severity letter: MMDD hh:mm:ss.us thread file:line]
TF_STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rf"|[IW]{_ABSL_LINE}.*"
    rf"|E{_ABSL_LINE}(failed call to cuInit|oneDNN supports DT_\w+ only|Unable to register cu\w+ factory).*"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\] .*"
    r"|This TensorFlow binary is optimized to use available CPU instructions.*"
    r"|To enable the following instructions: .*"
)


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True) -> Iterator[None]:
    """Holds back what is written to standard error inside the block, then writes it out without
    TensorFlow's start-up noise (``TF_STARTUP_NOISE``).

    Native libraries write to file descriptor 2 directly, so ``sys.stderr`` cannot filter them: the
    descriptor is pointed at a temporary file for the duration. Python's own writes (logging, warnings)
    in the block are held back too and come out, in order, when it ends, also when it raises.
    ``enabled=False`` (``-v``) leaves standard error alone.
    """
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no stderr, or no descriptor 2: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not TF_STARTUP_NOISE.fullmatch(line.rstrip("\r\n")))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<12} {help_}" for name, (_, help_) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="lipnet-ko",
        description="Korean lipreading toolkit.",
        epilog=f"commands:\n{lines}\n\nRun 'lipnet-ko COMMAND --help' for a command's options.\n\n{EXIT_STATUS}",
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
    options = rest[: rest.index("--")] if "--" in rest else rest
    if not {"-v", "--verbose"} & set(options):
        os.environ.setdefault(TF_LOG_LEVEL_ENV, QUIET_TF_LOG_LEVEL)  # before the module (and TensorFlow) is imported
    module_name, help_ = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"lipnet-ko {name}", description=help_)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages (and TensorFlow's start-up log)")
    module.configure_parser(parser)
    args = parser.parse_args(rest)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"error: lipnet-ko {name} interrupted", file=sys.stderr)
        return 130
