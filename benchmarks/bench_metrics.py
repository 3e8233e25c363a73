"""Benchmark for the space-normalised WER's re-spacing (issue "every command, every flag, every bad input").

``lipnet_ko.text.metrics.respace`` aligns the hypothesis's characters to the reference's to move its spaces.
It used to fill the whole Levenshtein table in Python lists: on one 36,000-character line that is
1.3 billion cells (past 15 GB). It now computes only the band of diagonals an optimal path can use, keeps
one row in sqrt(n) and recomputes a block at a time in the backtrace (same alignment, same figures).

Measures, side by side in one run, the old full-table implementation (copied below as the baseline) and
``respace``: time (median of repeats) and the resident memory each pass adds (each in a forked process), on

1. the project's 370 free sentences with 0-4 random edits each (typical utterances, per call);
2. long lines cut from the free sentences joined, with 10% of the characters edited (realistic output on a
   long recording), and with an unrelated hypothesis (the worst case: the band is the whole table).
   The baseline runs only up to 3,000 characters; above that its table does not fit in reasonable memory.

    flock /tmp/lipnet-bench.lock taskset -c 0 .venv/bin/python benchmarks/bench_metrics.py
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import random
import statistics
import resource
import sys
import time
from pathlib import Path

from lipnet_ko.text.metrics import respace
from lipnet_ko.text.sentences import load_free_sentences

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the baseline, shared with the tests
from respace_oracle import corrupt, quadratic_respace  # noqa: E402


def long_line(rng: random.Random, sentences: list[str], length: int) -> str:
    text = ""
    while len(text) < length:
        text += rng.choice(sentences) + " "
    return text[:length].strip()


def _run(function, pairs, queue) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    outputs = [function(ref, hyp) for ref, hyp in pairs]
    seconds = time.perf_counter() - start
    queue.put((seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, outputs))


def measure(function, pairs, repeats: int) -> tuple[float, float, list[str]]:
    """Median seconds for one pass over ``pairs``, the most resident memory it added (MB), and its outputs.

    Each pass runs in a forked process of its own, so that one pass's peak memory is not hidden by an earlier one's.
    """
    context = multiprocessing.get_context("fork")
    runs = []
    for _ in range(repeats):
        queue = context.Queue()
        process = context.Process(target=_run, args=(function, pairs, queue))
        process.start()
        runs.append(queue.get())
        process.join()
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="1000,3000,36000", help="long-line lengths in characters")
    parser.add_argument("--baseline-max", type=int, default=3000, help="longest line the full-table baseline is run on")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (one for lines above --baseline-max)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}; median of {args.repeats} runs")
    rng = random.Random(0)
    sentences = load_free_sentences()

    pairs = [(s, corrupt(rng, s, rng.randint(0, 4))) for s in sentences]
    (old, _, old_out), (new, _, new_out) = (measure(f, pairs, args.repeats) for f in (quadratic_respace, respace))
    assert old_out == new_out
    old, new = old / len(pairs) * 1e6, new / len(pairs) * 1e6
    print(f"\n{len(pairs)} free sentences, 0-4 edits: full table {old:.1f} us, respace {new:.1f} us per call"
          f" (full / respace {old / new:.2f}x)")

    print("\nMB: resident memory a pass adds.")
    print("| line | characters | full table s | full table MB | respace s | respace MB | time ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for length in (int(x) for x in args.lengths.split(",")):
        ref = long_line(rng, sentences, length)
        for kind, hyp in (("10% edited", corrupt(rng, ref, length // 10)), ("unrelated", long_line(rng, sentences, length))):
            case = [(ref, hyp)]
            baseline = length <= args.baseline_max
            new_s, new_mb, new_out = measure(respace, case, args.repeats if baseline else 1)
            if baseline:
                old_s, old_mb, old_out = measure(quadratic_respace, case, 1)
                assert old_out == new_out
                old_cols = f"{old_s:.2f} | {old_mb:.0f} | "
                ratio = f"{old_s / new_s:.1f}x"
            else:
                cells = (length + 1) ** 2
                old_cols = f"- | > {cells * 8 / 2**20:,.0f} (its list slots alone) | "
                ratio = "-"
            print(f"| {kind} | {length:,} | {old_cols}{new_s:.2f} | {new_mb:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
