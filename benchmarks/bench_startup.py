"""Start-up cost: how long a user waits for ``lipnet-ko`` commands, as wall seconds of fresh processes.

Each command runs ``--repeats`` times as a new subprocess (nothing warm but the OS file cache), the
commands interleaved so that all of them see the same machine load, and the median wall time of each is
printed:

1. ``lipnet-ko --help``, ``lipnet-ko transcribe --help``, ``lipnet-ko evaluate --help``: argument parsing
   only; none of them should import TensorFlow (each run also reports whether it did).
2. ``python -c "import lipnet_ko"``: the package itself.
3. ``lipnet-ko transcribe VIDEO`` with the default options (beam 32, the shipped jamo LM), txt/srt/vtt/json
   written to a temporary folder: everything a user waits for on one short clip, TensorFlow's import, the
   model, the face landmark model, the first trace of the network and the search included.

The clip is the first GRID sample (``../shared/data/grid/*.mpg`` beside the checkout, 3 s, 360x288, 25 fps)
when present, else a synthetic 3 s speaking face (``lipnet_ko.synth.corpus``, one sentence). The model is
``--model``, else ``runs/latest``, else an untrained ``small`` preset model with the jamo vocabulary saved to a
temporary run folder (weights do not change the cost, only the text). The script says which it used.

``--baseline DIR`` also times another version of the package, ``DIR/lipnet_ko`` (with its ``DIR/data``), in
the same run, alternating with this checkout, and prints the ratio; make one from a commit with
``git archive COMMIT lipnet_ko data | tar -x -C DIR``. Commands run from a temporary folder so that
``PYTHONPATH`` alone says which copy is imported.

Keep other benchmarks off the machine meanwhile:

    flock /tmp/lipnet-bench.lock .venv/bin/python benchmarks/bench_startup.py
    flock /tmp/lipnet-bench.lock .venv/bin/python benchmarks/bench_startup.py --baseline /tmp/base
    flock /tmp/lipnet-bench.lock .venv/bin/python benchmarks/bench_startup.py --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GRID = REPO_ROOT.parent / "shared" / "data" / "grid"
# Runs the CLI in-process (what the console script does), then says whether TensorFlow was imported.
PROBE = """\
import sys
from lipnet_ko.app.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
print("TF_IMPORTED" if "tensorflow" in sys.modules else "TF_NOT_IMPORTED", file=sys.stderr)
sys.exit(code or 0)
"""


def cli_command() -> list[str]:
    """The console script beside this interpreter (what users run), else ``python -m lipnet_ko``."""
    script = Path(sys.executable).with_name("lipnet-ko")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lipnet_ko"]


def pick_model(path: str | None, workdir: Path) -> tuple[Path, str]:
    if path is not None:
        return Path(path), f"--model {path}"
    from lipnet_ko.model.run_folder import RunFolder

    latest = RunFolder.latest().path
    if (latest / "model.keras").is_file() or (latest / "export.json").is_file():
        return latest, f"{latest} (trained)"
    # In a child process, so this process never imports TensorFlow and the timed runs start cold.
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_transcribe as b; " \
           f"b.untrained_run(__import__('pathlib').Path({str(workdir / 'run')!r}))"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return workdir / "run", "an untrained small preset model (no runs/latest)"


def pick_video(grid: Path, workdir: Path) -> tuple[Path, str]:
    clips = sorted(grid.glob("*.mpg")) if grid.is_dir() else []
    if clips:
        return clips[0], f"GRID sample {clips[0].name} (3 s, 360x288, 25 fps)"
    code = (
        "from lipnet_ko.synth.corpus import SynthConfig, generate_corpus; "
        f"generate_corpus({str(workdir / 'synth')!r}, SynthConfig(speakers=1, held_out_speakers=0, sentences=1, "
        "val_sentences=0, unseen_sentences=0, sentences_per_session=1, output='video'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    video = sorted((workdir / "synth").rglob("*.mp4"))[0]
    return video, f"synthetic clip {video.name} (one sentence, 160x160, 25 fps; no GRID sample at {grid})"


def timed(command: list[str], env: dict, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    return time.perf_counter() - t, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command; medians are reported")
    parser.add_argument("--model", help="model for the transcribe run (default runs/latest, else an untrained small model)")
    parser.add_argument("--video", type=Path, help="clip for the transcribe run (default: the first GRID sample)")
    parser.add_argument("--grid", type=Path, default=DEFAULT_GRID, help="folder of GRID .mpg clips")
    parser.add_argument("--baseline", type=Path, help="folder holding another lipnet_ko/ (and data/) to time alongside")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.baseline is not None and not (args.baseline / "lipnet_ko" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline} holds no lipnet_ko/ package")

    trees = {"this checkout": {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}}
    if args.baseline is not None:
        trees["baseline"] = dict(trees["this checkout"], PYTHONPATH=str(args.baseline.resolve()))
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        workdir = Path(tmp)
        model, model_note = pick_model(args.model, workdir)
        video, video_note = (args.video, str(args.video)) if args.video else pick_video(args.grid, workdir)
        out = workdir / "out"
        cli = cli_command()
        probe = [sys.executable, "-c", PROBE]
        commands = {
            "lipnet-ko --help": (probe + ["--help"], True),
            "lipnet-ko transcribe --help": (probe + ["transcribe", "--help"], True),
            "lipnet-ko evaluate --help": (probe + ["evaluate", "--help"], True),
            'python -c "import lipnet_ko"': ([sys.executable, "-c", "import lipnet_ko"], False),
            "lipnet-ko transcribe VIDEO": (cli + ["transcribe", str(video.resolve()), "--model", str(model.resolve()),
                                                  "--out", str(out)], False),
        }
        times = {(tree, name): [] for tree in trees for name in commands}
        notes: dict[tuple[str, str], str] = {}
        for _ in range(args.repeats):
            for name, (command, probed) in commands.items():
                for tree, env in trees.items():  # alternating, so both see the same machine load
                    shutil.rmtree(out, ignore_errors=True)
                    seconds, proc = timed(command, env, workdir)
                    if proc.returncode != 0:
                        sys.exit(f"{name} ({tree}) failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
                    times[tree, name].append(seconds)
                    if probed:
                        notes[tree, name] = "imports TensorFlow" if "TF_IMPORTED" in proc.stderr else "no TensorFlow"
                    elif name.endswith("VIDEO"):
                        lines = [line for line in proc.stderr.splitlines() if line.strip()]
                        notes[tree, name] = f"{len(lines)} stderr line(s)"

    print(f"lipnet-ko start-up, Python {platform.python_version()}, {os.cpu_count()} CPU(s), {platform.machine()}")
    print(f"console script: {' '.join(cli)}")
    print(f"transcribe: {video_note}; model: {model_note}; default options (beam 32, shipped jamo LM, 4 formats)")
    print(f"median wall seconds of {args.repeats} fresh process(es) each, interleaved"
          + (f"; baseline = {args.baseline}" if args.baseline else "") + ":\n")
    columns = [f"{tree} median s (min-max)" for tree in trees] + (["baseline / this"] if len(trees) > 1 else [])
    print("| command | " + " | ".join(columns) + " | note |")
    print("|---|" + "---:|" * len(columns) + "---|")
    for name in commands:
        cells = []
        for tree in trees:
            values = times[tree, name]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        if len(trees) > 1:
            cells.append(f"{statistics.median(times['baseline', name]) / statistics.median(times['this checkout', name]):.2f}x")
        note = "; ".join(f"{tree}: {notes[tree, name]}" for tree in trees if (tree, name) in notes) if len(trees) > 1 \
            else notes.get(("this checkout", name), "")
        print(f"| `{name}` | " + " | ".join(cells) + f" | {note} |")

if __name__ == "__main__":
    main()
