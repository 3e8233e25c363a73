"""The space-normalised WER re-spacing as it was before the banded alignment: the full Levenshtein table.

The oracle ``tests/text/test_metrics.py`` checks ``lipnet_ko.text.metrics.respace`` against, and the baseline
``benchmarks/bench_metrics.py`` times it against. Quadratic in memory: keep it to short lines.
"""

import random


def quadratic_respace(reference: str, hypothesis: str) -> str:
    """The implementation ``respace`` had before issue "every bad input": the full Levenshtein table (oracle)."""
    ref_words = reference.split()
    word_of = [i for i, word in enumerate(ref_words) for _ in word]
    ref, hyp = "".join(ref_words), hypothesis.replace(" ", "")
    n, m = len(ref), len(hyp)
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        dist[i][0] = i
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        row, prev = dist[i], dist[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (ref[i - 1] != hyp[j - 1]), prev[j] + 1, row[j - 1] + 1)
    owner = [-1] * m
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dist[i][j] == dist[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            owner[j - 1] = word_of[i - 1]
            i, j = i - 1, j - 1
        elif j > 0 and dist[i][j] == dist[i][j - 1] + 1:
            j -= 1
        else:
            i -= 1
    words = []
    current = -2
    for ch, w in zip(hyp, owner):
        if w == -1:
            w = current if current >= 0 else 0
        if w != current:
            words.append("")
            current = w
        words[-1] += ch
    return " ".join(words)


def corrupt(rng: random.Random, text: str, edits: int, alphabet: str = "가나다라마바 ") -> str:
    """``text`` with ``edits`` random deletions, insertions and substitutions drawn from ``alphabet``."""
    chars = list(text)
    for _ in range(edits):
        op, pos = rng.random(), rng.randrange(len(chars) + 1)
        if op < 0.33 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.66:
            chars.insert(pos, rng.choice(alphabet))
        elif chars:
            chars[min(pos, len(chars) - 1)] = rng.choice(alphabet.replace(" ", "") or "가")
    return "".join(chars)
