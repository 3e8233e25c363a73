"""Beam search speed: lipnet-ko's decoder against tf.nn.ctc_beam_search_decoder and pyctcdecode, side by side.

Every decoder gets the same utterances: 75 frames x the 69 jamo tokens, made by
``tests/synthetic_logits.py`` from the project's Korean sentences, in two styles:

* trained-like: blank-dominated frames and one clear token elsewhere (margin 12 over N(0, 1));
* flatter: the same alignments with a per-frame margin drawn from U(0.5, 4), so most tokens stay
  plausible and the argmax is often wrong.

lipnet-ko runs with the Hangul automaton and the shipped default jamo LM (``lipnet-ko``; ``DEFAULT_LM_PATHS``), and also plain
(no automaton, no LM: the same problem TF solves). TF and pyctcdecode run without an LM. pyctcdecode
pins numpy<2, so it runs in its own virtual environment (created on first use, see
``--pyctcdecode-venv``) in a subprocess that reads the same logits; if that fails, its column says why.

Run on one core, e.g.::

    flock /tmp/lipnet-bench.lock taskset -c 0 .venv/bin/python benchmarks/bench_decoding.py

Prints the median milliseconds per utterance and each baseline's time divided by lipnet-ko's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # synthetic_logits: simulated logits shared with the tests

from lipnet_ko.decoding.search import DecodingOptions, beam_search, log_softmax  # noqa: E402
from lipnet_ko.decoding.lm import load_default_lm  # noqa: E402
from lipnet_ko.text.sentences import load_free_sentences, load_grammar  # noqa: E402
from synthetic_logits import align, flatter, trained_like  # noqa: E402
from lipnet_ko.text.tokenizer import JamoTokenizer  # noqa: E402

NUM_FRAMES = 75  # 3 s of video at 25 fps, GRID's clip length

PYCTC_SCRIPT = r"""
import json, sys, time
import numpy as np
from pyctcdecode import build_ctcdecoder
data = np.load(sys.argv[1])
labels = json.loads(sys.argv[2])
beams = [int(b) for b in sys.argv[3].split(",")]
repeats = int(sys.argv[4])
decoder = build_ctcdecoder(labels)
out = {}
for kind in ("trained_like", "flatter"):
    logp = data[kind]
    for beam in beams:
        decoder.decode(logp[0], beam_width=beam)
        times = []
        for _ in range(repeats):
            for x in logp:
                t0 = time.perf_counter()
                decoder.decode(x, beam_width=beam)
                times.append(time.perf_counter() - t0)
        out[f"{kind}/{beam}"] = float(np.median(times) * 1000)
print(json.dumps(out))
"""


def make_logits(num: int, seed: int) -> dict[str, list[np.ndarray]]:
    """``num`` utterances of each style, as float64 log-probabilities [75, 69]."""
    tok = JamoTokenizer()
    rng = np.random.default_rng(seed)
    pool = load_grammar().sample(random.Random(seed), num) + load_free_sentences()
    sentences = [s for s in pool if len(tok.encode(s)) <= NUM_FRAMES // 2]
    order = rng.permutation(len(sentences))[:num]
    out: dict[str, list[np.ndarray]] = {"trained_like": [], "flatter": []}
    for i in order.tolist():
        labels = align(tok.encode(sentences[i]), NUM_FRAMES, rng)
        out["trained_like"].append(log_softmax(trained_like(labels, tok.vocab_size, rng)))
        out["flatter"].append(log_softmax(flatter(labels, tok.vocab_size, rng)))
    return out


def median_ms(fn, inputs: list[np.ndarray], repeats: int) -> float:
    fn(inputs[0])  # warm-up (builds cached tables)
    times = []
    for _ in range(repeats):
        for x in inputs:
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def time_tf(logits: dict, beams: list[int], repeats: int) -> dict[str, float]:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    out = {}
    for kind, xs in logits.items():
        # TF wants [time, batch, classes] with the blank last; moving it is done before timing.
        moved = [np.concatenate([x[:, 1:], x[:, :1]], axis=1)[:, None, :].astype(np.float32) for x in xs]
        lengths = np.array([NUM_FRAMES], dtype=np.int32)
        for beam in beams:

            def run(x, beam=beam):
                tf.nn.ctc_beam_search_decoder(x, lengths, beam_width=beam, top_paths=1)

            out[f"{kind}/{beam}"] = median_ms(run, moved, repeats)
    return out


def time_pyctcdecode(logits: dict, beams: list[int], repeats: int, venv: Path) -> dict[str, float] | str:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with numpy<2 and pyctcdecode ...", file=sys.stderr)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "numpy<2", "pyctcdecode"], check=True, capture_output=True)
        except (subprocess.CalledProcessError, OSError) as e:
            return f"skipped: could not create the pyctcdecode venv ({e})"
    tok = JamoTokenizer()
    labels = [""] + list(tok.tokens[1:])  # pyctcdecode's blank is the empty label
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "logits.npz"
        np.savez(path, **{k: np.stack(v).astype(np.float32) for k, v in logits.items()})
        proc = subprocess.run(
            [str(python), "-c", PYCTC_SCRIPT, str(path), json.dumps(labels), ",".join(map(str, beams)), str(repeats)],
            capture_output=True, text=True,
        )
    if proc.returncode != 0:
        return f"skipped: pyctcdecode failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=40, help="utterances per logits style")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the utterances")
    parser.add_argument("--beams", type=int, nargs="+", default=[10, 32, 100])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tf", action="store_true")
    parser.add_argument("--skip-pyctcdecode", action="store_true")
    parser.add_argument("--pyctcdecode-venv", type=Path, default=Path(tempfile.gettempdir()) / "lipnet-pyctcdecode-venv")
    args = parser.parse_args()

    tok = JamoTokenizer()
    t0 = time.perf_counter()
    lm = load_default_lm()
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    beam_search(np.zeros((1, tok.vocab_size)), tok, DecodingOptions(beam_width=2, lm=lm))  # builds the joint tables
    space_s = time.perf_counter() - t0
    logits = make_logits(args.utterances, args.seed)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.utterances} utterances x {NUM_FRAMES} frames x {tok.vocab_size} tokens per style, "
          f"{args.repeats} passes, {affinity} CPU core(s) allowed; LM: {lm}\n"
          f"LM load {load_s:.2f} s (ARPA parse + token table) + {space_s:.2f} s (Hangul x LM joint tables, first decode)")

    ours, plain = {}, {}
    for kind, xs in logits.items():
        for beam in args.beams:
            full = DecodingOptions(beam_width=beam, lm=lm)
            bare = DecodingOptions(beam_width=beam, hangul_constraint=False)
            ours[f"{kind}/{beam}"] = median_ms(lambda x, o=full: beam_search(x, tok, o), xs, args.repeats)
            plain[f"{kind}/{beam}"] = median_ms(lambda x, o=bare: beam_search(x, tok, o), xs, args.repeats)
    tf_ms = "skipped (--skip-tf)" if args.skip_tf else time_tf(logits, args.beams, args.repeats)
    if args.skip_pyctcdecode:
        pyctc = "skipped (--skip-pyctcdecode)"
    else:
        pyctc = time_pyctcdecode(logits, args.beams, args.repeats, args.pyctcdecode_venv)

    def cell(table, key):
        if isinstance(table, str):
            return f"{'-':>8} {'':>7}"
        return f"{table[key]:8.2f} {table[key] / ours[key]:6.1f}x"

    print()
    print(f"{'logits':<13} {'beam':>4} | {'lipnet-ko':>9} {'plain':>7} | {'TF':>8} {'/ours':>7} | {'pyctcdec':>8} {'/ours':>7}")
    for kind in logits:
        for beam in args.beams:
            key = f"{kind}/{beam}"
            print(f"{kind:<13} {beam:>4} | {ours[key]:9.2f} {plain[key]:7.2f} | {cell(tf_ms, key)} | {cell(pyctc, key)}")
    print("\nmedian ms per utterance; lipnet-ko = Hangul automaton + the default jamo LM; plain = lipnet-ko without either;")
    print("TF and pyctcdecode run without an LM; '/ours' = baseline time / lipnet-ko time")
    for name, table in (("TF", tf_ms), ("pyctcdecode", pyctc)):
        if isinstance(table, str):
            print(f"{name}: {table}")


if __name__ == "__main__":
    main()
