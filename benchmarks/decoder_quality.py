"""Decoder quality: syllable CER of greedy vs beam search (+ LM, + lexicon) on viseme-confused logits.

Until a trained model exists, the logits are simulated (viseme_confused in tests/synthetic_logits.py):
on each token frame the jamo of the true jamo's viseme class (lipnet_ko.text.visemes) all lead, with noise,
and the true one leads them by only ``--true-edge``; blanks and spaces are clear. The video alone cannot
tell ㅂ from ㅁ or ㅐ from ㅔ there; the language model has to.

Two sets, both kept out of the default LM's training text except as the task itself:

* free: the held-out 20% of data/sentences/free.txt (split seed 0; the LM saw only the other 80%);
* grammar: fresh samples of the command grammar (seed 12345; the LM saw 3000 samples drawn with seed 0).

Run:  .venv/bin/python benchmarks/decoder_quality.py
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # synthetic_logits: simulated logits shared with the tests

from lipnet_ko.decoding.search import DecodingOptions, decode  # noqa: E402
from lipnet_ko.decoding.lexicon import Lexicon  # noqa: E402
from lipnet_ko.decoding.lm import load_default_lm  # noqa: E402
from lipnet_ko.text.metrics import cer  # noqa: E402
from lipnet_ko.text.sentences import load_free_sentences, load_grammar, split_free_sentences  # noqa: E402
from synthetic_logits import confused_utterances  # noqa: E402
from lipnet_ko.text.tokenizer import JamoTokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--true-edge", type=float, default=1.5, help="the true jamo's lead within its viseme class")
    parser.add_argument("--grammar-sentences", type=int, default=100)
    parser.add_argument("--beam", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tok = JamoTokenizer()
    lm = load_default_lm()
    grammar = load_grammar()
    _, free_test = split_free_sentences(load_free_sentences(), 0.2, seed=0)
    sets = {
        "free (held out)": free_test,
        "grammar": grammar.sample(random.Random(12345), args.grammar_sentences),
    }
    configs = {
        "greedy": DecodingOptions(beam_width=1),
        "beam + automaton": DecodingOptions(beam_width=args.beam),
        "beam + automaton + LM": DecodingOptions(beam_width=args.beam, lm=lm),
    }
    lexicon = Lexicon(grammar.lexicon(), tok)
    rng = np.random.default_rng(args.seed)
    print(f"viseme-confused logits, true edge {args.true_edge}; beam {args.beam}; LM {lm}")
    print(f"{'set':<17} {'n':>4} | {'decoder':<32} {'CER':>7} {'vs greedy':>10}")
    for name, sentences in sets.items():
        logits = confused_utterances(sentences, tok, rng, args.true_edge)
        runs = dict(configs)
        if name == "grammar":
            runs["beam + automaton + LM + lexicon"] = DecodingOptions(beam_width=args.beam, lm=lm, lexicon=lexicon)
        base = None
        for label, options in runs.items():
            hyps = [decode(x[None], None, tok, options)[0].text for x in logits]
            rate = cer(sentences, hyps)
            base = rate if base is None else base
            rel = "" if label == "greedy" else f"{100 * (1 - rate / base):9.1f}%"
            print(f"{name:<17} {len(sentences):>4} | {label:<32} {rate:7.4f} {rel:>10}")


if __name__ == "__main__":
    main()
