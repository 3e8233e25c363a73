"""Check the beam + LM decoder's weights on a trained run's val split (never a test split).

Decodes the run's ``val`` clips once through the model (``Recognizer.example_logits``, the one prediction
path), then with beam 32 and the default LM over a grid of ``lm_weight`` x ``insertion_bonus``, and prints
syllable and viseme CER and ms per utterance for each cell, the best cells, beam without LM, and the oracle
floor on the same sentences at the default and the best weights. BENCHMARKS.md, "Default language model and
the oracle floor", quotes it for ``runs/v4-a``. The LM is the default of the run's tokenizer (for a GRID run,
GRID's grammar); ``--split`` picks another split (reporting only: tune on val), ``--grid-lexicon`` adds beam
search with GRID's 51-word lexicon, alone and with the LM (BENCHMARKS.md, "Real speakers").

    .venv/bin/python benchmarks/tune_lm_weights.py runs/v4-a
    .venv/bin/python benchmarks/tune_lm_weights.py runs/grid-a --split seen --grid-lexicon
"""

from __future__ import annotations

import argparse
import itertools
import time

import lipnet_ko  # noqa: F401  (sets TensorFlow's CPU options first)
from lipnet_ko.decoding.lexicon import Lexicon
from lipnet_ko.decoding.lm import default_lm_for
from lipnet_ko.decoding.oracle import oracle_floor
from lipnet_ko.decoding.search import DecodingOptions
from lipnet_ko.model.inference import load_recognizer
from lipnet_ko.text.metrics import score_corpus
from lipnet_ko.text.tokenizer import JamoTokenizer
from lipnet_ko.training.config import TrainConfig
from lipnet_ko.training.evaluation import decode_logits
from lipnet_ko.training.run_data import prepare_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder (its config.json names the corpus and splits)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 0.8, 1.0, 1.3, 1.6, 2.0])
    parser.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0])
    parser.add_argument("--split", default="val", help="the split decoded (default val; the weights are tuned on val)")
    parser.add_argument("--grid-lexicon", action="store_true", help="also decode with GRID's word list")
    args = parser.parse_args()
    recognizer = load_recognizer(args.run)
    config = TrainConfig.from_json(f"{args.run}/config.json")
    val = prepare_data(config.data, recognizer.tokenizer, recognizer.preprocess, progress=False).splits[args.split]
    logits = recognizer.example_logits(val)
    references = [e.text for e in val]
    lm = default_lm_for(recognizer.tokenizer)
    rows = []
    for weight, bonus in itertools.product(args.weights, args.bonuses):
        t0 = time.perf_counter()
        options = DecodingOptions(beam_width=32, lm=lm, lm_weight=weight, insertion_bonus=bonus)
        scores = score_corpus(references, decode_logits(logits, recognizer.tokenizer, options))
        ms = (time.perf_counter() - t0) / len(val) * 1000
        rows.append((scores.cer, weight, bonus, scores.viseme_cer, ms))
        print(f"lm_weight={weight} insertion_bonus={bonus}: syllable CER {scores.cer:.4f}, viseme CER "
              f"{scores.viseme_cer:.4f}, WER {scores.wer:.4f}, {ms:.2f} ms/utt", flush=True)  # fmt: skip
    rows.sort()
    print("best:", [(round(c, 4), w, b) for c, w, b, _, _ in rows[:5]])
    plain = score_corpus(references, decode_logits(logits, recognizer.tokenizer, DecodingOptions(beam_width=32)))
    print(f"beam without LM: syllable CER {plain.cer:.4f}, viseme CER {plain.viseme_cer:.4f}, WER {plain.wer:.4f}")
    if args.grid_lexicon:
        from lipnet_ko.data.corpora import GRID_WORDS

        lexicon = Lexicon({w for slot in GRID_WORDS for w in slot.values()}, recognizer.tokenizer)
        for name, options in (("lexicon", DecodingOptions(beam_width=32, lexicon=lexicon)),
                              ("lexicon + LM", DecodingOptions(beam_width=32, lexicon=lexicon, lm=lm))):  # fmt: skip
            scores = score_corpus(references, decode_logits(logits, recognizer.tokenizer, options))
            print(f"beam with GRID's {len(lexicon.words)}-word {name}: CER {scores.cer:.4f}, WER {scores.wer:.4f}")
    if not isinstance(recognizer.tokenizer, JamoTokenizer):
        return  # the oracle floor is made of Korean viseme classes
    defaults = DecodingOptions()
    for weight, bonus in ((defaults.lm_weight, defaults.insertion_bonus), rows[0][1:3]):
        options = DecodingOptions(beam_width=32, lm=lm, lm_weight=weight, insertion_bonus=bonus)
        floor = oracle_floor(references, recognizer.tokenizer, {"beam_lm": options})["beam_lm"]
        print(f"oracle floor on the val sentences at ({weight}, {bonus}): syllable CER {floor.cer:.4f}")


if __name__ == "__main__":
    main()
