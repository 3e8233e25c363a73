"""Model outputs -> decoded text -> corpus figures, for a list of preprocessed examples.

Used by training (validation each epoch, final metrics) and by ``lipnet-ko evaluate``. The model runs
through a ``Recognizer`` (``lipnet_ko.model.inference``), the one prediction path that transcription and
the benchmarks use too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lipnet_ko.data.batching import Example
from lipnet_ko.decoding.search import DecodingOptions, decode
from lipnet_ko.text.metrics import Scores, score_corpus

logger = logging.getLogger(__name__)


def decode_logits(logits: Sequence[np.ndarray], tokenizer, options: DecodingOptions) -> list[str]:
    """Texts for per-clip logits (one clip at a time: beam search is per utterance anyway)."""
    texts = []
    for item in logits:
        result = decode(item[None], np.array([len(item)]), tokenizer, options)[0]
        texts.append(result.text)
    return texts


@dataclass
class Evaluation:
    """Decoded texts and corpus figures of one set of examples under several decoders."""

    references: list[str]
    hypotheses: dict[str, list[str]]  # decoder name -> texts
    scores: dict[str, Scores]
    seconds: dict[str, float] = field(default_factory=dict)  # "model" and each decoder

    def to_dict(self) -> dict:
        """``{decoder: {syllable_cer, jamo_cer, viseme_cer, wer, swer, bleu, utterances}}``."""
        return {name: score_dict(s) for name, s in self.scores.items()}


def score_dict(s: Scores) -> dict:
    """Corpus figures as ``metrics.json`` stores them (rounded)."""
    return {"syllable_cer": round(s.cer, 5), "jamo_cer": round(s.jamo_cer, 5), "viseme_cer": round(s.viseme_cer, 5),
            "wer": round(s.wer, 5), "swer": round(s.swer, 5), "bleu": round(s.bleu, 3), "utterances": s.utterances}


def evaluate(
    recognizer,
    examples: Sequence[Example],
    decoders: Mapping[str, DecodingOptions],
    *,
    batch_size: int = 16,
    logits: Sequence[np.ndarray] | None = None,
) -> Evaluation:
    """Runs the model once and every decoder on its logits; scores against the examples' texts.

    Args:
        recognizer: a ``lipnet_ko.model.inference.Recognizer`` (its tokenizer decodes; its model runs unless
            ``logits`` are given).
        examples: the clips to score, with their reference texts.
        decoders: name -> decoding options, e.g. :func:`standard_decoders`.
        batch_size: clips per forward pass.
        logits: per-clip logits ``[T_i, V]`` already computed for ``examples`` (the model is then not run).
    """
    seconds = {}
    tokenizer = recognizer.tokenizer
    if logits is None:
        t0 = time.perf_counter()
        logits = recognizer.example_logits(examples, batch_size)
        seconds["model"] = time.perf_counter() - t0
    references = [e.text for e in examples]
    hypotheses, scores = {}, {}
    for name, options in decoders.items():
        t0 = time.perf_counter()
        hypotheses[name] = decode_logits(logits, tokenizer, options)
        seconds[name] = time.perf_counter() - t0
        scores[name] = score_corpus(references, hypotheses[name])
    return Evaluation(references, hypotheses, scores, {k: round(v, 3) for k, v in seconds.items()})


def standard_decoders(beam_width: int = 32, lm=None, lm_weight: float | None = None) -> dict[str, DecodingOptions]:
    """``greedy``, ``beam`` (Hangul-constrained, no LM) and, with an LM, ``beam_lm``."""
    decoders = {"greedy": DecodingOptions(beam_width=1), "beam": DecodingOptions(beam_width=beam_width)}
    if lm is not None:
        extra = {} if lm_weight is None else {"lm_weight": lm_weight}
        decoders["beam_lm"] = DecodingOptions(beam_width=beam_width, lm=lm, **extra)
    return decoders
