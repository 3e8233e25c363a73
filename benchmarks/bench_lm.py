"""Language models for the oracle floor: which jamo n-gram resolves look-alike jamo best, and at what cost.

For each LM variant (none; the shipped model; jamo n-grams of several orders, optionally pruned, trained on
``sentence_pool.lm_text()``), this tunes ``lm_weight`` and ``insertion_bonus`` on VAL sentences and then
reports, on TEST sentences (at most ``--max-syllables`` syllables, as in the synthetic corpus), the syllable
CER of the beam search on

* perfect-viseme logits (``lipnet_ko.decoding.oracle``: the oracle floor, spaces hidden), and
* viseme-confused logits (``tests/synthetic_logits.py``) whose true jamo leads its class by ``--true-edge``,

with build time, ARPA size, load time (ARPA parse + decoder table), decoder states and the median ms per
utterance at beam ``--beam``. Until the sentence pool ships its files, a stand-in split of
data/sentences/free.txt (60/20/20, seed 0) is used and the output says so.

Run:  taskset -c 0 .venv/bin/python benchmarks/bench_lm.py --orders 5 6 7 8 9
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # synthetic_logits: simulated logits shared with the tests

from lipnet_ko.decoding.lm import NGramLM, load_default_lm, text_to_units, train_kneser_ney  # noqa: E402
from lipnet_ko.decoding.oracle import perfect_viseme_logits  # noqa: E402
from lipnet_ko.decoding.search import DecodingOptions, _search_space, beam_search, log_softmax  # noqa: E402
from lipnet_ko.text.metrics import cer  # noqa: E402
from lipnet_ko.text.tokenizer import JamoTokenizer  # noqa: E402
from synthetic_logits import align, viseme_confused  # noqa: E402

TOK = JamoTokenizer()


def load_splits(folder: str | None = None) -> tuple[dict[str, list[str]], list[str], str]:
    """(train/val/test sentences, LM text, where they came from); ``folder``: a copy of the pool files."""
    try:
        from lipnet_ko.text.sentence_pool import POOL_DIR, lm_text, load_pool

        folder = folder or POOL_DIR
        return {s: load_pool(s, folder) for s in ("train", "val", "test")}, lm_text(folder), f"sentence_pool ({folder})"
    except (NotImplementedError, FileNotFoundError, ImportError, OSError) as error:
        from lipnet_ko.text.sentences import load_free_sentences

        free = load_free_sentences()
        random.Random(0).shuffle(free)
        a, b = int(0.6 * len(free)), int(0.8 * len(free))
        splits = {"train": free[:a], "val": free[a:b], "test": free[b:]}
        return splits, splits["train"], f"STAND-IN (data/sentences/free.txt 60/20/20; sentence_pool: {error!r})"


def _rows(folder: str | None) -> tuple:
    try:
        from lipnet_ko.text.sentence_pool import POOL_DIR, read_rows

        return read_rows(folder or POOL_DIR)
    except (NotImplementedError, FileNotFoundError, ImportError, OSError, ValueError):
        return ()


def syllables(text: str) -> int:
    return len(text.replace(" ", ""))


def decode_all(logps, options) -> tuple[list[str], float]:
    texts, times = [], []
    for x in logps:
        t0 = time.perf_counter()
        texts.append(beam_search(x, TOK, options).text)
        times.append(time.perf_counter() - t0)
    return texts, 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[5, 6, 7, 8, 9])
    parser.add_argument("--prune-from", type=int, nargs="+", default=[0],
                        help="drop n-grams seen once at this order and above (0 = no pruning); several = one variant each")
    parser.add_argument("--pool", default=None, help="folder of sentence-pool files (default: the shipped data/sentences/open)")
    parser.add_argument("--no-shipped", action="store_true", help="leave out the shipped LM")
    parser.add_argument("--beam", type=int, default=32)
    parser.add_argument("--test", type=int, default=300, help="test sentences")
    parser.add_argument("--val", type=int, default=100, help="val sentences for tuning")
    parser.add_argument("--max-syllables", type=int, default=20)
    parser.add_argument("--true-edge", type=float, default=0.3)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.6, 1.0, 1.5, 2.0])
    parser.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    splits, text, source = load_splits(args.pool)
    rng = np.random.default_rng(args.seed)

    def pick(sentences, n):
        short = [s for s in sentences if syllables(s) <= args.max_syllables]
        return [short[i] for i in sorted(rng.permutation(len(short))[:n].tolist())]

    val, test = pick(splits["val"], args.val), pick(splits["test"], args.test)
    print(f"sentences: {source}; LM text {len(text)} lines; val {len(val)}, test {len(test)} (<= {args.max_syllables} syll.)")
    perfect = {name: [log_softmax(perfect_viseme_logits(s, TOK)) for s in sents]
               for name, sents in (("val", val), ("test", test))}
    confused = []
    for s in test:
        ids = TOK.encode(s)
        confused.append(log_softmax(viseme_confused(align(ids, 2 * len(ids) + 6, rng), TOK, rng, true_edge=args.true_edge)))

    source_of = {text: source for _, source, text in _rows(args.pool)}
    print(f"beam {args.beam}; tuned on val (perfect logits) over lm_weight {args.weights} x insertion_bonus {args.bonuses}")
    print(f"{'LM':<24} {'alpha':>5} {'beta':>4} | {'val':>6} {'floor':>6} {'ms':>6} | {'conf':>6} {'ms':>6} | "
          "states  joint    kB  load_s space_s build_s  rss_MB | floor by source")

    def evaluate(name: str, lm: NGramLM | None, info: dict) -> None:
        grid = [(1.0, 0.0)] if lm is None else [(w, b) for w in args.weights for b in args.bonuses]
        best = None
        for w, b in grid:
            opts = DecodingOptions(beam_width=args.beam, lm=lm, lm_weight=w, insertion_bonus=b)
            rate = cer(val, decode_all(perfect["val"], opts)[0])
            if best is None or rate < best[0]:
                best = (rate, w, b)
        _, w, b = best
        opts = DecodingOptions(beam_width=args.beam, lm=lm, lm_weight=w, insertion_bonus=b)
        floor_hyp, floor_ms = decode_all(perfect["test"], opts)
        conf_hyp, conf_ms = decode_all(confused, opts)
        _search_space.cache_clear()  # each grid point's joint tables: hundreds of MB for a large LM
        extra = "" if not info else (f"{info['states']:>6} {info['joint']:>6} {info['kb']:>5.0f} {info['load_s']:6.2f} "
                                     f"{info['space_s']:6.2f} {info['build_s']:7.1f} {info['rss_mb']:7.0f}")
        by_source = {}
        for ref, hyp in zip(test, floor_hyp):
            by_source.setdefault(source_of.get(ref, "?"), ([], []))
            by_source[source_of.get(ref, "?")][0].append(ref)
            by_source[source_of.get(ref, "?")][1].append(hyp)
        per = " ".join(f"{k}={cer(r, h):.3f}({len(r)})" for k, (r, h) in sorted(by_source.items()))
        print(f"{name:<24} {w:5.2f} {b:4.1f} | {best[0]:6.3f} {cer(test, floor_hyp):6.3f} {floor_ms:6.2f} | "
              f"{cer(test, conf_hyp):6.3f} {conf_ms:6.2f} | {extra} | {per}", flush=True)

    evaluate("no LM", None, {})
    if not args.no_shipped:
        evaluate("shipped", load_default_lm(), {})
    units = [text_to_units(s, "jamo") for s in text]
    with tempfile.TemporaryDirectory() as tmp:
        for order in args.orders:
            for prune_from in args.prune_from:
                if prune_from > order:
                    continue
                t0 = time.perf_counter()
                min_counts = None
                if prune_from:
                    min_counts = [0 if n < prune_from else 2 for n in range(1, order + 1)]
                lm = train_kneser_ney(units, order=order, min_counts=min_counts)
                build_s = time.perf_counter() - t0
                path = Path(tmp) / f"o{order}p{prune_from}.arpa.gz"
                lm.write_arpa(path)
                del lm
                t0 = time.perf_counter()
                lm = NGramLM.read_arpa(path)
                parse_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                states = lm.token_table(TOK).rows.shape[0]
                table_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                joint = _search_space(TOK, True, None, lm, 1.0, 0.0)
                space_s = time.perf_counter() - t0
                info = {"build_s": build_s, "load_s": parse_s + table_s, "space_s": space_s, "kb": path.stat().st_size / 1024,
                        "states": states, "joint": joint.rows.shape[0],
                        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
                del joint
                _search_space.cache_clear()
                evaluate(f"jamo {order}-gram" + (f" prune>={prune_from}" if prune_from else ""), lm, info)
                del lm
    print("val/floor = syllable CER on perfect-viseme logits (spaces hidden); conf = viseme-confused logits, "
          f"true edge {args.true_edge}; ms = median per utterance over the test set (the tuning pass built the tables); "
          "load_s = ARPA parse + LM token table; space_s = the joint Hangul x LM tables; rss_MB = peak so far")


if __name__ == "__main__":
    main()
