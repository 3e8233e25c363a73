"""Error rates and BLEU for Korean (and English) transcripts. Plain Python, no TensorFlow.

Conventions (the README has the same table):

* Both sides go through one normaliser first (:func:`lipnet_ko.text.normalize.normalize_for_metrics` by default).
* ``cer``: syllable (character) error rate with spaces removed; denominator = reference characters.
* ``jamo_cer``: the same on conjoining jamo (the NFD form), spaces removed.
* ``wer``: over eojeol (space-separated words).
* ``swer``: space-normalised WER: the hypothesis is re-spaced to the reference's word boundaries
  through a character alignment, so errors of spacing alone are forgiven.
* ``bleu``: word (eojeol) 4-gram BLEU on a 0-100 scale with the brevity penalty; corpus level with
  ``exp`` smoothing for orders without matches, sentence level also with effective order.
* Corpus figures divide the summed edits by the summed reference lengths. ``average="utterance"``
  gives the mean of per-utterance ratios instead. An empty reference counts as length 1 in a
  ratio's denominator, so an empty hypothesis scores 0 and each inserted unit costs 1.

Every function takes two strings (one utterance) or two equally long lists (a corpus).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Callable, Literal, Sequence

import editdistance

from lipnet_ko.text.normalize import normalize_for_metrics
from lipnet_ko.text.hangul import to_jamo

Texts = str | Sequence[str]
Normalizer = Callable[[str], str] | None
Average = Literal["corpus", "utterance"]


def _pair(references: Texts, hypotheses: Texts, normalizer: Normalizer) -> tuple[list[str], list[str]]:
    if isinstance(references, str) != isinstance(hypotheses, str):
        raise TypeError("pass two strings or two lists of strings, not one of each")
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(refs)} references but {len(hyps)} hypotheses")
    if normalizer is not None:
        refs = [normalizer(r) for r in refs]
        hyps = [normalizer(h) for h in hyps]
    return refs, hyps


def _rate(pairs: list[tuple[Sequence, Sequence]], average: Average) -> float:
    if average not in ("corpus", "utterance"):
        raise ValueError(f"average must be 'corpus' or 'utterance', got {average!r}")
    if not pairs:
        raise ValueError("no utterances to score")
    edits = [editdistance.eval(r, h) for r, h in pairs]
    if average == "utterance":
        return sum(e / max(len(r), 1) for e, (r, _) in zip(edits, pairs)) / len(pairs)
    return sum(edits) / max(sum(len(r) for r, _ in pairs), 1)


def _chars(text: str) -> str:
    return text.replace(" ", "")


def cer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Syllable (character) error rate, spaces removed: edits / reference characters (a fraction, not %)."""
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(_chars(r), _chars(h)) for r, h in zip(refs, hyps)], average)


def jamo_cer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Jamo error rate: CER on the conjoining-jamo (NFD) form, spaces removed."""
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(to_jamo(_chars(r)), to_jamo(_chars(h))) for r, h in zip(refs, hyps)], average)


def wer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Word error rate over eojeol (space-separated words)."""
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(r.split(), h.split()) for r, h in zip(refs, hyps)], average)


def respace(reference: str, hypothesis: str) -> str:
    """Re-space ``hypothesis`` to the word boundaries of ``reference`` through a character alignment.

    Each hypothesis character aligned to a reference character (match or substitution) joins that
    character's word; an inserted character joins the word of the character before it (the first
    word when there is none). Characters, and so CER, are unchanged; only spaces move.
    """
    ref_words = reference.split()
    word_of = [i for i, word in enumerate(ref_words) for _ in word]
    ref, hyp = "".join(ref_words), _chars(hypothesis)
    n, m = len(ref), len(hyp)
    # Levenshtein table, then a backtrace that prefers diagonal moves (match/substitution).
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        dist[i][0] = i
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        row, prev = dist[i], dist[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (ref[i - 1] != hyp[j - 1]), prev[j] + 1, row[j - 1] + 1)
    owner = [-1] * m  # reference word of each hypothesis character; -1 for insertions
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dist[i][j] == dist[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            owner[j - 1] = word_of[i - 1]
            i, j = i - 1, j - 1
        elif j > 0 and dist[i][j] == dist[i][j - 1] + 1:
            j -= 1
        else:
            i -= 1
    words: list[str] = []
    current = -2
    for ch, w in zip(hyp, owner):
        if w == -1:
            w = current if current >= 0 else 0
        if w != current:
            words.append("")
            current = w
        words[-1] += ch
    return " ".join(words)


def swer(
    references: Texts, hypotheses: Texts, *, normalizer: Normalizer = normalize_for_metrics, average: Average = "corpus"
) -> float:
    """Space-normalised WER: WER after :func:`respace` (spacing-only errors forgiven)."""
    refs, hyps = _pair(references, hypotheses, normalizer)
    return _rate([(r.split(), respace(r, h).split()) for r, h in zip(refs, hyps)], average)


def _ngrams(words: list[str], max_order: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for n in range(1, max_order + 1) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class BLEUStats:
    """Sufficient statistics of BLEU: clipped n-gram matches and totals per order, and lengths."""

    matches: tuple[int, ...]
    totals: tuple[int, ...]
    hyp_len: int
    ref_len: int


def bleu_stats(references: Sequence[str], hypotheses: Sequence[str], max_order: int = 4) -> BLEUStats:
    """Accumulate BLEU statistics over already-normalised, space-tokenised texts."""
    matches, totals = [0] * max_order, [0] * max_order
    hyp_len = ref_len = 0
    for ref, hyp in zip(references, hypotheses):
        r, h = ref.split(), hyp.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        ref_counts = _ngrams(r, max_order)
        for gram, count in _ngrams(h, max_order).items():
            matches[len(gram) - 1] += min(count, ref_counts[gram])
            totals[len(gram) - 1] += count
    return BLEUStats(tuple(matches), tuple(totals), hyp_len, ref_len)


def bleu_from_stats(stats: BLEUStats, *, smooth: Literal["exp", "none"] = "exp", effective_order: bool = False) -> float:
    """BLEU (0-100) from statistics.

    ``smooth="exp"``: an order with no match gets precision 1 / (2^k * total), k counting such
    orders (the NIST geometric smoothing; Chen & Cherry 2014, method 3). ``effective_order`` stops the
    geometric mean at the highest order the hypothesis has n-grams for (sentence-level BLEU).
    """
    if smooth not in ("exp", "none"):
        raise ValueError(f"smooth must be 'exp' or 'none', got {smooth!r}")
    if stats.hyp_len == 0:
        return 0.0
    log_precisions = []
    halvings = 1.0
    for matched, total in zip(stats.matches, stats.totals):
        if total == 0:
            break
        if matched:
            log_precisions.append(math.log(matched / total))
        elif smooth == "exp":
            halvings *= 2
            log_precisions.append(math.log(1.0 / (halvings * total)))
        else:
            return 0.0
    order = len(log_precisions) if effective_order else len(stats.matches)
    if order == 0:
        return 0.0
    # Orders the hypothesis is too short for count as zero precision unless effective_order is on.
    if len(log_precisions) < order:
        return 0.0
    brevity = 1.0 if stats.hyp_len >= stats.ref_len else math.exp(1 - stats.ref_len / stats.hyp_len)
    return 100.0 * brevity * math.exp(sum(log_precisions) / order)


def bleu(
    references: Texts,
    hypotheses: Texts,
    *,
    normalizer: Normalizer = normalize_for_metrics,
    max_order: int = 4,
    smooth: Literal["exp", "none"] = "exp",
) -> float:
    """Word-level BLEU on a 0-100 scale.

    Two lists give corpus BLEU (statistics summed over utterances, then one score). Two strings give
    sentence BLEU, which also uses the effective order so that short sentences are not zeroed.
    """
    refs, hyps = _pair(references, hypotheses, normalizer)
    sentence = isinstance(references, str)
    return bleu_from_stats(bleu_stats(refs, hyps, max_order), smooth=smooth, effective_order=sentence)


@dataclass(frozen=True)
class Scores:
    """Corpus figures for one system; error rates are fractions, BLEU is 0-100."""

    utterances: int
    cer: float
    jamo_cer: float
    wer: float
    swer: float
    bleu: float
    cer_utterance_mean: float  # mean of per-utterance syllable CERs, for readers who want that view
    wer_utterance_mean: float

    def to_dict(self) -> dict:
        return asdict(self)


def score_corpus(
    references: Sequence[str], hypotheses: Sequence[str], *, normalizer: Normalizer = normalize_for_metrics
) -> Scores:
    """Every metric at once, normalising each text only once."""
    refs, hyps = _pair(list(references), list(hypotheses), normalizer)
    return Scores(
        utterances=len(refs),
        cer=cer(refs, hyps, normalizer=None),
        jamo_cer=jamo_cer(refs, hyps, normalizer=None),
        wer=wer(refs, hyps, normalizer=None),
        swer=swer(refs, hyps, normalizer=None),
        bleu=bleu(refs, hyps, normalizer=None),
        cer_utterance_mean=cer(refs, hyps, normalizer=None, average="utterance"),
        wer_utterance_mean=wer(refs, hyps, normalizer=None, average="utterance"),
    )


def configure_parser(parser) -> None:
    parser.add_argument("references", help="text file of references, one utterance a line")
    parser.add_argument("hypotheses", help="text file of hypotheses, same number of lines")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    """``lipnet-ko score REF HYP``: corpus figures for two line-aligned text files."""
    with open(args.references, encoding="utf-8") as f:
        refs = f.read().splitlines()
    with open(args.hypotheses, encoding="utf-8") as f:
        hyps = f.read().splitlines()
    if len(refs) != len(hyps):
        print(f"error: {args.references} has {len(refs)} lines but {args.hypotheses} has {len(hyps)}", file=sys.stderr)
        return 2
    scores = score_corpus(refs, hyps)
    if args.json:
        print(json.dumps(scores.to_dict(), indent=1))
    else:
        for key, value in scores.to_dict().items():
            shown = f"{value}" if key == "utterances" else (f"{value:.2f}" if key == "bleu" else f"{100 * value:.2f}%")
            print(f"{key:<20} {shown}")
    return 0
