"""The oracle floor: how well a decoder can do from "perfect viseme" logits, the best a lipreading model can
see in principle.

A perfect lipreader knows, frame by frame, which viseme class (:mod:`lipnet_ko.text.visemes`) the mouth shows,
and nothing more: every jamo of that class gets exactly the same score, so the decoder's language model alone
chooses between 밤 and 맘, 게 and 개. Decoding such logits and scoring the result against the truth gives
the error rate no trained model can beat with that decoder; the default run prints it beside the model's own
figures.

Word boundaries are hidden. The synthetic speaker (``lipnet_ko.synth.articulation``) marks a space with a
50 ms pause whose target is the rest shape at dominance 0.15, so the neighbouring jamo's coarticulation nearly
cancels it: ``distinct_frames("가 나", "가나") == 1`` and three spaces in a sentence change about four
frames, below the one or two frames (40-80 ms at 25 fps) the articulation module calls nearly invisible.
So a space is not something the video shows: by default (``spaces="hidden"``) every gap between two
syllables scores a space and "nothing" (the blank) exactly equally, at true word boundaries and everywhere
else alike, and the LM has to put the spaces back. ``spaces="given"`` emits them as clear frames instead,
for a floor on the jamo choice alone. Syllable, jamo and viseme CER ignore spaces either way; WER does not.

Frame layout (a trained CTC model's peaky output): a blank frame, then each jamo for ``frames_per_token``
frames followed by one blank (or blank-or-space) frame. Plain numpy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from lipnet_ko.decoding.search import DecodingOptions, decode
from lipnet_ko.text.metrics import Scores, score_corpus
from lipnet_ko.text.tokenizer import BLANK_ID

log = logging.getLogger(__name__)

ON_LOGIT = 0.0  # the logit of every token a frame allows (all equal: no hint within a viseme class)
OFF_LOGIT = -1.0e4  # the logit of every other token: probability exp(-1e4), zero in float64
SPACE_MODES = ("hidden", "given")
Spaces = Literal["hidden", "given"]


def perfect_viseme_logits(
    text: str,
    tokenizer,
    *,
    spaces: Spaces = "hidden",
    frames_per_token: int = 1,
    classes: Sequence[str | None] | None = None,
) -> np.ndarray:
    """The logits of a lipreader that sees every viseme class and nothing else.

    Args:
        text: one normalised Korean sentence (Hangul syllables and single spaces).
        tokenizer: a :class:`~lipnet_ko.text.tokenizer.JamoTokenizer`.
        spaces: ``"hidden"`` (default): every gap between two syllables scores blank and space equally;
            ``"given"``: a space frame where the text has a space, and no space anywhere else.
            See the module docstring for why hidden is the default.
        frames_per_token: frames each jamo is held (at least 1).
        classes: the class of each token id (``None`` for the blank and the space); default
            :func:`lipnet_ko.text.visemes.token_viseme_classes`. A finer partition (each jamo its own class)
            makes every jamo unambiguous.

    Returns:
        ``float32 [T, V]`` logits, ``T = 1 + (frames_per_token + 1) * jamo`` (+ 2 per space when given).
        Every frame gives :data:`ON_LOGIT` to each token it allows and :data:`OFF_LOGIT` to the others.

    Raises:
        ValueError: for ``spaces`` or ``frames_per_token`` out of range, or text the tokenizer cannot encode.
    """
    if spaces not in SPACE_MODES:
        raise ValueError(f"spaces must be one of {', '.join(SPACE_MODES)}, got {spaces!r}")
    if frames_per_token < 1:
        raise ValueError(f"frames_per_token must be at least 1, got {frames_per_token}")
    if classes is None:
        from lipnet_ko.text.visemes import token_viseme_classes

        classes = token_viseme_classes(tokenizer)
    if len(classes) != tokenizer.vocab_size:
        raise ValueError(f"classes must name {tokenizer.vocab_size} token ids, got {len(classes)}")
    members: dict[str, list[int]] = {}
    for tid, name in enumerate(classes):
        if name is not None:
            members.setdefault(name, []).append(tid)
    space_id = tokenizer.space_id
    initials = frozenset(tokenizer.initial_ids)
    ids = list(tokenizer.encode(text))
    jamo = [tid for tid in ids if tid != space_id] if spaces == "hidden" else ids

    frames: list[list[int]] = [[BLANK_ID]]  # the tokens each frame allows
    for k, tid in enumerate(jamo):
        if tid == space_id:
            allowed = [space_id]
        elif classes[tid] is None:
            raise ValueError(f"token {tokenizer.tokens[tid]!r} (id {tid}) has no viseme class")
        else:
            allowed = members[classes[tid]]
        frames += [allowed] * frames_per_token
        # A syllable ends here when an initial comes next: in hidden mode that gap may hold a space.
        syllable_gap = k + 1 < len(jamo) and jamo[k + 1] in initials and tid not in initials
        frames.append([BLANK_ID, space_id] if spaces == "hidden" and syllable_gap else [BLANK_ID])
    logits = np.full((len(frames), tokenizer.vocab_size), OFF_LOGIT, dtype=np.float32)
    for t, allowed in enumerate(frames):
        logits[t, allowed] = ON_LOGIT
    return logits


def oracle_floor(
    sentences: Sequence[str],
    tokenizer,
    decoders: Mapping[str, DecodingOptions],
    *,
    spaces: Spaces = "hidden",
    frames_per_token: int = 1,
) -> dict[str, Scores]:
    """Decode every sentence's :func:`perfect_viseme_logits` with each decoder and score it against the sentence.

    Args:
        sentences: normalised reference sentences (e.g. the test split of the sentence pool).
        tokenizer: a :class:`~lipnet_ko.text.tokenizer.JamoTokenizer`.
        decoders: name -> options, e.g. ``lipnet_ko.training.evaluation.standard_decoders(...)``.
        spaces, frames_per_token: see :func:`perfect_viseme_logits`.

    Returns:
        name -> :class:`~lipnet_ko.text.metrics.Scores` (syllable/jamo/viseme CER, WER, ...): the floor each
        decoder puts under any model's figures on these sentences.
    """
    if not sentences:
        raise ValueError("oracle_floor needs at least one sentence")
    logits = [perfect_viseme_logits(s, tokenizer, spaces=spaces, frames_per_token=frames_per_token) for s in sentences]
    out = {}
    for name, options in decoders.items():
        hypotheses = [decode(x[None], None, tokenizer, options)[0].text for x in logits]
        out[name] = score_corpus(sentences, hypotheses)
        log.info("oracle floor (%s spaces), %s: syllable CER %.4f over %d sentences", spaces, name, out[name].cer, len(sentences))
    return out
