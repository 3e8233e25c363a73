"""Model outputs -> decoded text -> corpus figures, for a list of preprocessed examples.

Used by training (validation each epoch, final metrics) and by ``lipnet-ko evaluate``. The model is
anything callable as ``model((crops, crop_lengths))`` returning logits ``[B, T, V]``; crops are fed
as float32 in [0, 1] like the training pipeline makes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lipnet_ko.data import Example
from lipnet_ko.decoding import DecodingOptions, decode
from lipnet_ko.metrics import Scores, score_corpus
from lipnet_ko.model import TEMPORAL_STRIDE

logger = logging.getLogger(__name__)


def _batches(examples: Sequence[Example], batch_size: int):
    """Index batches in length order (less padding), each padded to its longest clip."""
    order = sorted(range(len(examples)), key=lambda i: examples[i].num_frames)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        clips = [examples[i].load() for i in indices]
        lengths = np.array([len(c) for c in clips], dtype=np.int32)
        crops = np.zeros((len(clips), lengths.max(), *clips[0].shape[1:]), dtype=np.float32)
        for row, clip in enumerate(clips):
            np.multiply(clip, np.float32(1 / 255), out=crops[row, : len(clip)], casting="unsafe")
        yield indices, crops, lengths


def predict_logits(predict, examples: Sequence[Example], batch_size: int = 16) -> list[np.ndarray]:
    """Per-clip logits ``[T_i, V]`` (padding removed), in the order of ``examples``.

    ``predict`` maps ``(crops, crop_lengths)`` to logits, e.g. ``model.predict_on_batch``.
    """
    out: list[np.ndarray | None] = [None] * len(examples)
    for indices, crops, lengths in _batches(examples, batch_size):
        logits = np.asarray(predict((crops, lengths)))
        for row, index in enumerate(indices):
            out[index] = logits[row, : lengths[row] // TEMPORAL_STRIDE]
    return out  # type: ignore[return-value]


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
        """``{decoder: {syllable_cer, jamo_cer, wer, swer, bleu, utterances}}``."""
        return {
            name: {
                "syllable_cer": round(s.cer, 5),
                "jamo_cer": round(s.jamo_cer, 5),
                "wer": round(s.wer, 5),
                "swer": round(s.swer, 5),
                "bleu": round(s.bleu, 3),
                "utterances": s.utterances,
            }
            for name, s in self.scores.items()
        }


def evaluate(
    predict,
    examples: Sequence[Example],
    tokenizer,
    decoders: Mapping[str, DecodingOptions],
    *,
    batch_size: int = 16,
    logits: Sequence[np.ndarray] | None = None,
) -> Evaluation:
    """Runs the model once and every decoder on its logits; scores against the examples' texts."""
    seconds = {}
    if logits is None:
        t0 = time.perf_counter()
        logits = predict_logits(predict, examples, batch_size)
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
