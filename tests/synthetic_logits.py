"""Synthetic CTC logits for testing and benchmarking decoders before (or without) a trained model.

Owns three simulated output styles over a frame alignment of a known token sequence:

* ``trained_like``: blank-dominated frames and one clear token elsewhere (a well-trained model);
* ``flatter``: the same alignment with a small, random margin, so the argmax is often wrong;
* ``viseme_confused``: each token frame spreads its probability over the jamo that look the same on
  the lips (the viseme classes of :mod:`lipnet_ko.text.visemes`), the true one only slightly ahead: the
  confusion a lipreading model cannot resolve from the video alone.

All return ``float32 [T, V]`` logits with the blank at id 0. Plain numpy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lipnet_ko.text.tokenizer import BLANK_ID


def align(ids: Sequence[int], num_frames: int, rng: np.random.Generator, max_duration: int = 2) -> np.ndarray:
    """A random CTC alignment: each token held 1..``max_duration`` frames, blanks between and around.

    Args:
        ids: the label sequence (no blanks).
        num_frames: T; must be at least ``len(ids)`` plus one blank between each pair of equal neighbours.
        rng: the random generator.
        max_duration: the longest a token is held, in frames.

    Returns:
        ``int64 [T]`` frame labels that collapse back to ``ids``.
    """
    ids = list(ids)
    n = len(ids)
    need = n + sum(a == b for a, b in zip(ids, ids[1:]))
    if need > num_frames:
        raise ValueError(f"{n} tokens need at least {need} frames, got num_frames={num_frames}")
    durations = np.ones(n, dtype=np.int64)
    gaps = np.zeros(n + 1, dtype=np.int64)  # blanks before each token and after the last
    gaps[1:n][np.array([a == b for a, b in zip(ids, ids[1:])], dtype=bool)] = 1
    spare = num_frames - need
    # spend the spare frames on longer tokens and blank gaps, at random
    while spare > 0:
        if n and rng.random() < 0.4:
            k = int(rng.integers(n))
            if durations[k] < max_duration:
                durations[k] += 1
                spare -= 1
                continue
        gaps[int(rng.integers(n + 1))] += 1
        spare -= 1
    labels = []
    for k, tid in enumerate(ids):
        labels += [BLANK_ID] * int(gaps[k]) + [tid] * int(durations[k])
    labels += [BLANK_ID] * int(gaps[n])
    return np.array(labels, dtype=np.int64)


def trained_like(
    labels: np.ndarray, vocab_size: int, rng: np.random.Generator, margin: float = 12.0, noise: float = 1.0
) -> np.ndarray:
    """Logits where each frame's label leads the others (N(0, ``noise``)) by ``margin``."""
    t = len(labels)
    logits = rng.normal(0.0, noise, (t, vocab_size))
    logits[np.arange(t), labels] += margin
    return logits.astype(np.float32)


def flatter(
    labels: np.ndarray, vocab_size: int, rng: np.random.Generator, margin: tuple[float, float] = (0.5, 4.0), noise: float = 1.0
) -> np.ndarray:
    """Logits whose label leads by a margin drawn per frame from ``margin`` (low, high): often not the argmax."""
    t = len(labels)
    logits = rng.normal(0.0, noise, (t, vocab_size))
    logits[np.arange(t), labels] += rng.uniform(margin[0], margin[1], t)
    return logits.astype(np.float32)


def viseme_confused(
    labels: np.ndarray,
    tokenizer,
    rng: np.random.Generator,
    margin: float = 10.0,
    true_edge: float = 0.3,
    spread: float = 0.6,
    noise: float = 1.0,
) -> np.ndarray:
    """Logits that cannot tell look-alike jamo apart.

    On a token frame every jamo of the label's viseme class gets ``margin`` plus N(0, ``spread``)
    and the true jamo ``true_edge`` more; blank and space frames are as in :func:`trained_like`.

    Args:
        labels: ``int [T]`` frame labels from :func:`align`.
        tokenizer: a :class:`~lipnet_ko.text.tokenizer.JamoTokenizer`.
        rng: the random generator.
        margin: how far the class leads the other tokens.
        true_edge: the true jamo's small lead within its class.
        spread: noise on the class members, which makes the argmax within a class a lottery.
        noise: std of the other tokens' logits.
    """
    from lipnet_ko.text.visemes import token_viseme_classes

    classes = token_viseme_classes(tokenizer)
    members: dict[str, np.ndarray] = {}
    for tid, name in enumerate(classes):
        if name is not None:
            members.setdefault(name, [])
            members[name].append(tid)
    members = {k: np.array(v) for k, v in members.items()}
    t = len(labels)
    logits = rng.normal(0.0, noise, (t, tokenizer.vocab_size))
    for frame, tid in enumerate(labels.tolist()):
        name = classes[tid]
        if name is None:  # blank or space: unambiguous
            logits[frame, tid] += margin
            continue
        group = members[name]
        logits[frame, group] += margin + rng.normal(0.0, spread, group.size)
        logits[frame, tid] += true_edge
    return logits.astype(np.float32)


def confused_utterances(
    sentences: Sequence[str], tokenizer, rng: np.random.Generator, true_edge: float = 1.5
) -> list[np.ndarray]:
    """Viseme-confused logits (``float32 [T, V]`` each) for whole sentences, about two frames per token."""
    out = []
    for text in sentences:
        ids = tokenizer.encode(text)
        out.append(viseme_confused(align(ids, 2 * len(ids) + 6, rng), tokenizer, rng, true_edge=true_edge))
    return out
